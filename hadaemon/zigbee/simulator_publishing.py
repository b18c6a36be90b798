"""What the zigbee2mqtt simulator publishes (retained bridge topics, availability, each
device's state), and the calls that drive it from tests and demos (reports, joins,
leaves, renames). A half of :class:`hadaemon.zigbee.simulator.Zigbee2MqttSimulator`,
which sets the state declared here. Reactor thread only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from hadaemon.mqtt import MqttConnection
from hadaemon.zigbee.model import parse_devices
from hadaemon.zigbee.simulated_device import SimulatedDevice

ONLINE = json.dumps({"state": "online"})
OFFLINE = json.dumps({"state": "offline"})


class Publishing:
    """Publishes as zigbee2mqtt does; ``Zigbee2MqttSimulator.__init__`` sets the state."""

    reactor: Any
    connection: MqttConnection
    base: str
    availability: bool
    latency: float
    version: str
    log: Logger
    permit_join: bool
    devices: dict[str, SimulatedDevice]
    order: list[str]
    coordinator: dict[str, Any] | None
    groups: list[dict[str, Any]]
    warnings: list[str]
    _pending: list[Deferred[Any]]

    # -- what zigbee2mqtt publishes ----------------------------------------------------------

    def _publish(self, topic: str, payload: Any, *, retain: bool = False) -> Deferred[None]:
        data = payload if isinstance(payload, str | bytes) else json.dumps(payload)
        d = self.connection.publish(f"{self.base}/{topic}", data, qos=1, retain=retain)
        d.addErrback(lambda f: self.log.warn("simulator: publish failed: {e}",
                                             e=f.getErrorMessage()))
        self._pending = [p for p in self._pending if not p.called] + [d]
        return d

    def _publish_info(self) -> None:
        self._publish("bridge/info", {
            "version": self.version, "commit": "simulator", "permit_join": self.permit_join,
            "coordinator": {"type": "simulated", "ieee_address":
                            (self.coordinator or {}).get("ieee_address", "0x0")},
            "config": {"mqtt": {"base_topic": self.base}}, "restart_required": False,
        }, retain=True)

    def _publish_devices(self) -> None:
        payload = ([self.coordinator] if self.coordinator else []) + [
            self.devices[name].raw for name in self.order
        ]
        self._publish("bridge/devices", payload, retain=True)

    def _publish_groups(self) -> None:
        self._publish("bridge/groups", self.groups, retain=True)

    def _publish_availability(self, device: SimulatedDevice) -> None:
        self._publish(f"{device.name}/availability",
                      ONLINE if device.available else OFFLINE, retain=True)

    def publish_state(self, device: SimulatedDevice, extra: Mapping[str, Any] | None = None
                      ) -> None:
        """The device's whole state (keys sorted, as zigbee2mqtt sends it)."""
        state = dict(device.state)
        if extra:
            state.update(extra)
        payload = json.dumps(dict(sorted(state.items())))
        if self.latency > 0:
            self.reactor.callLater(self.latency, self._publish, device.name, payload)
        else:
            self._publish(device.name, payload)

    # -- driving it (tests, demos) -------------------------------------------------------------

    def report(self, name: str, values: Mapping[str, Any]) -> None:
        """The device reports ``values`` (events like ``action`` are not kept in state)."""
        device = self.devices[name]
        events = {}
        for key, value in values.items():
            feature = device.features.get(key)
            if feature is not None and feature.is_event:
                events[key] = value
            else:
                device.state[key] = value
        self.publish_state(device, events)

    def set_available(self, name: str, available: bool) -> None:
        device = self.devices[name]
        device.available = available
        self._publish_availability(device)

    def set_bridge_online(self, online: bool) -> None:
        self._publish("bridge/state", ONLINE if online else OFFLINE, retain=True)

    def join(self, raw: Mapping[str, Any]) -> None:
        """A device joins: ``bridge/event`` (joined, interview), then ``bridge/devices``."""
        parsed = parse_devices([raw])
        if not parsed.devices:
            raise ValueError(f"cannot join: {parsed.problems}")
        info = parsed.devices[0]
        event_data = {"friendly_name": info.friendly_name, "ieee_address": info.ieee_address}
        self._publish("bridge/event", {"type": "device_joined", "data": event_data})
        self._publish("bridge/event", {"type": "device_interview",
                                       "data": {**event_data, "status": "started"}})
        device = SimulatedDevice(raw, info)
        self.devices[info.friendly_name] = device
        self.order.append(info.friendly_name)
        self._publish("bridge/event", {"type": "device_interview", "data": {
            **event_data, "status": "successful", "supported": True,
            "definition": raw.get("definition"),
        }})
        self._publish_devices()
        if self.availability:
            self._publish_availability(device)

    def leave(self, name: str) -> None:
        device = self.devices.pop(name)
        self.order.remove(name)
        self._publish("bridge/event", {"type": "device_leave", "data": {
            "friendly_name": name, "ieee_address": device.info.ieee_address}})
        self._publish(f"{name}/availability", b"", retain=True)
        self._publish_devices()

    def rename(self, old: str, new: str) -> None:
        if new in self.devices:
            raise ValueError(f"friendly name {new!r} is already in use")
        device = self.devices.pop(old)
        device.name = new
        device.raw["friendly_name"] = new
        self.devices[new] = device
        self.order[self.order.index(old)] = new
        if self.availability:
            self._publish(f"{old}/availability", b"", retain=True)  # clear the old retained
            self._publish_availability(device)
        self._publish_devices()

    def _warn(self, message: str) -> None:
        self.warnings.append(message)
        self.log.warn("simulator: {message}", message=message)



__all__ = ["OFFLINE", "ONLINE", "Publishing"]
