"""consoleload: a big, busy house for the console benchmark (``benchmarks/console.py``).

``devices`` devices ("Bench 0" ...) of five float variables, changed round-robin, and a
"Bench clock" device whose ``clock`` variable is set on every tick to the daemon's wall
clock in milliseconds (modulo 10,000,000, so it stays a short integer on screen): a
browser showing it can tell how far behind it is by comparing it with its own clock
(same machine). ``rate`` changes a second in total, the clock's included; the clock's
writable ``rate`` variable changes it while the daemon runs (the benchmark measures the
pages of an idle house first, then the Devices page under load).

Enable it with ``plugin_dirs = [".../benchmarks/console_load"]`` and
``plugins = [..., "consoleload", "web"]``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import LoopingCall

from hadaemon.config import Float, Int, Section
from hadaemon.plugin import Plugin
from hadaemon.registry import Access, ChannelSpec, Device, ValueType, VariableSpec

SOURCE = "consoleload"
CLOCK_MODULO = 10_000_000  # ms: wraps every 2.8 hours
NAMES = ("power", "energy", "voltage", "current", "temperature")
UNITS = ("W", "kWh", "V", "A", "°C")

CLOCK = [
    ChannelSpec(
        0,
        [
            VariableSpec("clock", ValueType.INT, Access.READ, unit="ms"),
            VariableSpec("rate", ValueType.INT, Access.ALL, minimum=0, maximum=20000,
                         unit="/s"),
        ],
        name="clock",
    )
]
METER = [
    ChannelSpec(
        0,
        [VariableSpec(n, ValueType.FLOAT, Access.READ, unit=u)
         for n, u in zip(NAMES, UNITS, strict=True)],
        name="meter",
    )
]


class ConsoleLoad(Plugin):
    """Bench devices and a steady stream of changes to them."""

    name = "consoleload"
    description = "benchmark load: many devices, many changes a second, a clock device"
    schema: ClassVar[Section] = Section({
        "devices": Int(default=1000, min=0, doc="Bench devices (5 variables each)."),
        "rate": Int(default=2000, min=0, doc="Changes a second in total, the clock's too."),
        "tick": Float(default=0.01, min=0.001, doc="Seconds between two batches."),
    })

    _loop: LoopingCall | None = None

    def start(self) -> None:
        self.rate = int(self.config["rate"])
        self.clock = self.registry.add_device(SOURCE, "clock", "Bench clock", CLOCK, self,
                                              type_name="clock")
        self.clock_var = self.clock.variable(0, "clock")
        self.registry.report(self.clock.peer_id, 0, "rate", self.rate)
        self.variables: list[Any] = []
        for n in range(self.config["devices"]):
            device = self.registry.add_device(SOURCE, f"d{n}", f"Bench {n}", METER, None,
                                              type_name="meter")
            self.variables.extend(device.channels[0].variables.values())
        self.next = 0
        self.value = 0.0
        self.owed = 0.0
        self.last = self.reactor.seconds()
        self._loop = LoopingCall(self._tick)
        self._loop.clock = self.reactor
        self._loop.start(self.config["tick"])

    def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()

    def _tick(self) -> None:
        # As many changes as the time since the last tick asks for (a late tick catches
        # up), the clock first.
        now = self.reactor.seconds()
        self.owed += (now - self.last) * self.rate
        self.last = now
        count = int(self.owed)
        if count < 1:
            return
        self.owed -= count
        self.registry.report_to(self.clock_var, int(now * 1000) % CLOCK_MODULO)
        variables = self.variables
        if not variables:
            return
        for _ in range(count - 1):
            self.value += 0.1
            self.registry.report_to(variables[self.next], round(self.value, 1))
            self.next = (self.next + 1) % len(variables)

    # -- DeviceOwner: the clock's rate is writable -------------------------------------

    def write_values(
        self, device: Device, channel: int, values: Mapping[str, Any]
    ) -> Deferred[None]:
        if device.peer_id != self.clock.peer_id or set(values) != {"rate"}:
            raise ValueError(f"{device.name}: only the clock's rate can be written")
        self.rate = int(values["rate"])
        self.owed = 0.0
        self.registry.report(device.peer_id, channel, "rate", self.rate)
        return succeed(None)

    def query_values(
        self, device: Device, channel: int, names: Sequence[str]
    ) -> Deferred[None]:
        current = device.values()[channel]
        self.registry.report_many(device.peer_id, channel, {n: current[n] for n in names})
        return succeed(None)
