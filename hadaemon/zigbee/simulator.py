"""A zigbee2mqtt stand-in over a real broker, serving a network from a ``bridge/devices``
file: for tests, demos and the example config (zigbee devices without hardware).

It publishes what zigbee2mqtt publishes (retained ``bridge/state``, ``bridge/info``,
``bridge/devices``, ``bridge/groups``, ``<name>/availability``; each device's state), echoes
``/set`` into the state as a device would (respecting access bits and value types: a set
of a read-only or unknown property, or of a value of the wrong type, is refused with a
warning and changes nothing), answers ``/get`` (battery devices sleep and do not answer,
like real ones), sends ``bridge/event`` for a join, and answers ``bridge/request``
``health_check``, ``permit_join``, ``device/rename`` and ``device/options`` with the
caller's transaction. Reactor thread only.

The sample network and saved payloads are in :mod:`hadaemon.zigbee.samples`, a device's
state and the value checks in :mod:`hadaemon.zigbee.simulated_device` (both re-exported);
the class inherits what it publishes and how it is driven
(:mod:`~hadaemon.zigbee.simulator_publishing`) and what it answers
(:mod:`~hadaemon.zigbee.simulator_commands`), and keeps setup and simulated life.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger

from hadaemon.logs import get_logger
from hadaemon.mqtt import MqttConnection
from hadaemon.zigbee.exposes import Feature
from hadaemon.zigbee.model import parse_devices
from hadaemon.zigbee.samples import load_json_file, sample_devices, sample_groups
from hadaemon.zigbee.simulated_device import SimulatedDevice, check_wire, initial_value
from hadaemon.zigbee.simulator_commands import Commands
from hadaemon.zigbee.simulator_publishing import OFFLINE, ONLINE


class Zigbee2MqttSimulator(Commands):
    """Serves a network over ``connection`` (a client of its own, as zigbee2mqtt is)."""

    def __init__(
        self,
        reactor: Any,
        connection: MqttConnection,
        devices: list[Any],
        *,
        groups: list[Any] | None = None,
        base_topic: str = "zigbee2mqtt",
        availability: bool = True,
        sleepy_battery_devices: bool = True,
        latency: float = 0.0,
        report_interval: float = 0.0,
        seed: int = 1,
        version: str = "2.14.1-hadaemon-simulator",
        log: Logger | None = None,
    ) -> None:
        self.reactor = reactor
        self.connection = connection
        self.base = base_topic.rstrip("/")
        self.availability = availability
        self.sleepy_battery_devices = sleepy_battery_devices
        self.latency = latency
        self.report_interval = report_interval
        self.version = version
        self.log = log or get_logger("hadaemon.zigbee.simulator")
        self.random = random.Random(seed)
        self.permit_join = False
        self.devices: dict[str, SimulatedDevice] = {}
        self.order: list[str] = []
        self.coordinator: dict[str, Any] | None = None
        self.groups: list[dict[str, Any]] = [dict(g) for g in (groups or [])]
        self.commands: list[tuple[str, Any]] = []
        self.warnings: list[str] = []
        self._pending: list[Deferred[Any]] = []
        self._permit_call: IDelayedCall | None = None
        self._tick_call: IDelayedCall | None = None
        self._subscription: Any = None
        self._remove_listener: Callable[[], None] | None = None
        self.load(devices)

    # -- setup -------------------------------------------------------------------------

    def load(self, devices: list[Any]) -> None:
        parsed = parse_devices(devices)
        for problem in parsed.problems:
            self.log.warn("simulator: {problem}", problem=problem)
        raw_by_ieee = {d.get("ieee_address"): d for d in devices if isinstance(d, dict)}
        self.devices.clear()
        self.order.clear()
        for info in parsed.devices:
            if info.is_coordinator:
                self.coordinator = raw_by_ieee[info.ieee_address]
                continue
            self.devices[info.friendly_name] = SimulatedDevice(raw_by_ieee[info.ieee_address],
                                                               info)
            self.order.append(info.friendly_name)

    def start(self) -> None:
        self._subscription = self.connection.subscribe(f"{self.base}/#", self._on_message,
                                                       name="zigbee2mqtt simulator")
        self._remove_listener = self.connection.add_listener(self._on_connection)
        if self.connection.connected:
            self._announce()
        if self.report_interval > 0:
            self._tick_call = self.reactor.callLater(self.report_interval, self._tick)

    def stop(self) -> Deferred[Any]:
        """Say offline (as zigbee2mqtt does on a clean shutdown) and stop publishing."""
        for call in (self._tick_call, self._permit_call):
            if call is not None and call.active():
                call.cancel()
        if self._remove_listener is not None:
            self._remove_listener()
        if self._subscription is not None:
            self._subscription.cancel()
        if self.connection.connected:
            self._publish("bridge/state", OFFLINE, retain=True)
        return DeferredList(self._pending, consumeErrors=True)

    def _on_connection(self, event: str) -> None:
        if event in ("connected", "reconnected"):
            self._announce()

    def _announce(self) -> None:
        self._publish("bridge/state", ONLINE, retain=True)
        self._publish_info()
        self._publish_devices()
        self._publish_groups()
        if self.availability:
            for device in self.devices.values():
                self._publish_availability(device)

    # -- simulated life ------------------------------------------------------------------------

    def _tick(self) -> None:
        self._tick_call = self.reactor.callLater(self.report_interval, self._tick)
        sensors = [d for d in self.devices.values()
                   if any(f.readable and not f.settable for f in d.features.values())]
        if not sensors:
            return
        device = self.random.choice(sensors)
        values: dict[str, Any] = {}
        for feature in device.features.values():
            if not feature.readable or feature.settable:
                continue
            if feature.is_event and feature.values and self.random.random() < 0.5:
                values[feature.property] = self.random.choice(feature.values)
            elif feature.kind == "numeric" and feature.property in (
                    "temperature", "humidity", "illuminance", "power", "pressure",
                    "local_temperature", "linkquality"):
                current = device.state.get(feature.property, 0)
                if isinstance(current, int | float) and not isinstance(current, bool):
                    drift = self.random.uniform(-0.5, 0.5) if not feature.integer else \
                        self.random.randint(-2, 2)
                    values[feature.property] = _bounded(feature, current + drift)
            elif feature.kind == "binary" and feature.property in ("occupancy", "contact"):
                values[feature.property] = (feature.value_on if self.random.random() < 0.3
                                            else feature.value_off)
        if values:
            self.report(device.name, values)


def _bounded(feature: Feature, value: float) -> float:
    if feature.value_min is not None:
        value = max(feature.value_min, value)
    if feature.value_max is not None:
        value = min(feature.value_max, value)
    return int(value) if feature.integer else round(value, 2)


__all__ = [
    "OFFLINE", "ONLINE", "SimulatedDevice", "Zigbee2MqttSimulator", "check_wire",
    "initial_value", "load_json_file", "sample_devices", "sample_groups",
]
