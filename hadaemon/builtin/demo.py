"""demo: simulated devices, so a fresh install shows something with no hardware.

A thermometer that reports a slowly drifting temperature, a lamp that accepts writes and
confirms them like a real device (after a short delay), and a button that fires events.
The lamp follows the thermometer when ``follow`` is on: it turns on below ``threshold``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import LoopingCall

from hadaemon.bus import Subscription, VariableChanged
from hadaemon.config import Bool, Float, Section
from hadaemon.plugin import Plugin
from hadaemon.registry import Access, ChannelSpec, Device, ValueType, VariableSpec

SOURCE = "demo"

THERMOMETER = [
    ChannelSpec(
        0,
        [
            VariableSpec("temperature", ValueType.FLOAT, Access.READ, unit="°C"),
            VariableSpec("humidity", ValueType.FLOAT, Access.READ, unit="%", minimum=0,
                         maximum=100),
        ],
        name="sensor",
    )
]
LAMP = [
    ChannelSpec(
        0,
        [
            VariableSpec("state", ValueType.BOOL, Access.ALL),
            VariableSpec("brightness", ValueType.INT, Access.ALL, minimum=0, maximum=254),
        ],
        name="light",
    )
]
BUTTON = [
    ChannelSpec(
        0,
        [VariableSpec("action", ValueType.ENUM, Access.READ, values=("single", "double"),
                      is_event=True)],
        name="button",
    )
]


class DemoDevices(Plugin):
    """Three simulated devices in the registry."""

    name = "demo"
    description = "simulated thermometer, lamp and button"
    schema = Section(
        {
            "interval": Float(default=5.0, min=0.05, doc="Seconds between sensor reports."),
            "follow": Bool(default=True, doc="Turn the lamp on when it gets cold."),
            "threshold": Float(default=20.0, doc="Temperature below which the lamp is on."),
            "latency": Float(default=0.05, min=0.0, doc="Simulated device response time."),
        }
    )

    _loop: LoopingCall | None = None
    _sub: Subscription | None = None

    def start(self) -> None:
        self._tick = 0
        self.thermometer = self.registry.add_device(
            SOURCE, "thermometer", "Demo thermometer", THERMOMETER, self, type_name="sensor"
        )
        self.lamp = self.registry.add_device(
            SOURCE, "lamp", "Demo lamp", LAMP, self, type_name="light"
        )
        self.button = self.registry.add_device(
            SOURCE, "button", "Demo button", BUTTON, self, type_name="remote"
        )
        self.registry.report_many(self.lamp.peer_id, 0, {"state": False, "brightness": 0})
        if self.config["follow"]:
            self._sub = self.registry.subscribe(
                self._follow, peer_id=self.thermometer.peer_id, name="temperature",
                subscriber="demo: lamp follows temperature",
            )
        self._loop = LoopingCall(self._report)
        self._loop.clock = self.reactor
        self._loop.start(self.config["interval"], now=True)

    def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        if self._sub is not None:
            self._sub.cancel()

    def _report(self) -> None:
        self._tick += 1
        # A deterministic drift around the threshold, so the lamp switches now and then.
        temperature = round(self.config["threshold"] + 2.5 * math.sin(self._tick / 4 - 1), 2)
        humidity = round(50 + 10 * math.cos(self._tick / 7), 1)
        self.registry.report_many(
            self.thermometer.peer_id, 0, {"temperature": temperature, "humidity": humidity}
        )
        if self._tick % 6 == 0:
            self.registry.report(self.button.peer_id, 0, "action", "single")

    def _follow(self, event: VariableChanged) -> None:
        cold = bool(event.value < self.config["threshold"])
        if self.registry.get_value(self.lamp.peer_id, 0, "state") is not cold:
            self.registry.put_values(
                self.lamp.peer_id, 0, {"state": cold, "brightness": 200 if cold else 0}
            )

    # -- DeviceOwner ---------------------------------------------------------------------

    def write_values(
        self, device: Device, channel: int, values: Mapping[str, Any]
    ) -> Deferred[None]:
        """Accept at once; the simulated device confirms after ``latency`` seconds."""
        if device.peer_id != self.lamp.peer_id:
            raise ValueError(f"{device.name} cannot be written")
        self.reactor.callLater(
            self.config["latency"], self.registry.report_many, device.peer_id, channel,
            dict(values),
        )
        return succeed(None)

    def query_values(
        self, device: Device, channel: int, names: Sequence[str]
    ) -> Deferred[None]:
        values = device.values()[channel]
        self.reactor.callLater(
            self.config["latency"], self.registry.report_many, device.peer_id, channel,
            {n: values[n] for n in names},
        )
        return succeed(None)
