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
state and the value checks in :mod:`hadaemon.zigbee.simulated_device` (both re-exported).
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable, Mapping
from typing import Any

from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger

from hadaemon.logs import get_logger
from hadaemon.mqtt import Message, MqttConnection
from hadaemon.zigbee.exposes import Feature
from hadaemon.zigbee.model import parse_devices
from hadaemon.zigbee.samples import load_json_file, sample_devices, sample_groups
from hadaemon.zigbee.simulated_device import SimulatedDevice, check_wire, initial_value

ONLINE = json.dumps({"state": "online"})
OFFLINE = json.dumps({"state": "offline"})


class Zigbee2MqttSimulator:
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

    # -- what zigbee2mqtt receives ----------------------------------------------------------------

    def _on_message(self, message: Message) -> None:
        rest = message.topic[len(self.base) + 1:]
        if rest.startswith("bridge/request/"):
            self._on_request(rest[len("bridge/request/"):], message)
            return
        for verb in ("set", "get"):
            target, attribute = _split_command(rest, verb)
            if target is None:
                continue
            self.commands.append((message.topic, message.payload))
            try:
                payload = json.loads(message.payload)
            except ValueError:
                if attribute is None:
                    self._warn(f"{message.topic}: invalid JSON {message.payload!r}")
                    return
                payload = message.payload.decode("utf-8", errors="replace")
            if attribute is not None:
                payload = {attribute: payload}
            if not isinstance(payload, dict):
                self._warn(f"{message.topic}: expected a JSON object")
                return
            if verb == "set":
                self._on_set(target, payload)
            else:
                self._on_get(target, payload)
            return

    def _split_target(self, name: str) -> tuple[str, str | None]:
        # "<name>/<endpoint>/set" addresses an endpoint of <name>.
        if name in self.devices or any(g["friendly_name"] == name for g in self.groups):
            return name, None
        head, _, endpoint = name.rpartition("/")
        return head, endpoint or None

    def _on_set(self, target: str, payload: dict[str, Any]) -> None:
        name, endpoint = self._split_target(target)
        group = next((g for g in self.groups if g.get("friendly_name") == name), None)
        if group is not None:
            members = {m.get("ieee_address") for m in group.get("members", [])}
            for device in self.devices.values():
                if device.info.ieee_address in members:
                    self._apply(device, payload, None, group=True)
            return
        found = self.devices.get(name)
        if found is None:
            self._warn(f"set for unknown device {target!r}")
            return
        self._apply(found, payload, endpoint)

    def _apply(self, device: SimulatedDevice, payload: dict[str, Any], endpoint: str | None,
               group: bool = False) -> None:
        changed = False
        for key, value in payload.items():
            prop = f"{key}_{endpoint}" if endpoint else key
            feature = device.features.get(prop)
            if feature is None and group:
                feature = next((f for f in device.features.values() if f.base_name == key),
                               None)
                prop = feature.property if feature is not None else prop
            if feature is None:
                if not group:
                    self._warn(f"{device.name}: no converter for {prop!r}")
                continue
            if not feature.settable:
                self._warn(f"{device.name}: {prop!r} is not settable (access {feature.access})")
                continue
            problem = check_wire(feature, value)
            if problem:
                self._warn(f"{device.name}: {prop}: {problem}")
                continue
            if not feature.readable:
                continue  # write-only (identify, effect): accepted, not in the state
            new = value
            if feature.kind == "binary" and feature.value_toggle is not None and \
                    value == feature.value_toggle:
                current = device.state.get(prop, feature.value_off)
                new = feature.value_off if current == feature.value_on else feature.value_on
            if feature.kind == "composite":
                old = device.state.get(prop)
                new = {**(old if isinstance(old, dict) else {}), **value}
            device.state[prop] = copy.deepcopy(new)
            changed = True
        if changed:
            self.publish_state(device)

    def _on_get(self, target: str, payload: dict[str, Any]) -> None:
        name, _endpoint = self._split_target(target)
        found = self.devices.get(name)
        if found is None:
            return
        device = found
        if self.sleepy_battery_devices and device.sleepy:
            return  # asleep: a real battery device does not answer
        if any((f := device.features.get(key)) is not None and f.queryable for key in payload):
            self.publish_state(device)

    def _on_request(self, path: str, message: Message) -> None:
        try:
            request = json.loads(message.payload) if message.payload else {}
        except ValueError:
            request = {}
        if not isinstance(request, dict):
            request = {"value": request}
        transaction = request.get("transaction")
        status, error = "ok", None
        data: dict[str, Any] = {}
        try:
            if path == "health_check":
                data = {"healthy": True}
            elif path == "permit_join":
                seconds = request.get("time", request.get("value", 0))
                if isinstance(seconds, bool):
                    seconds = 254 if seconds else 0
                if not isinstance(seconds, int) or not 0 <= seconds <= 254:
                    raise ValueError(f"invalid time {seconds!r}")
                self._permit(seconds)
                data = {"time": seconds}
            elif path == "device/rename":
                old, new = request.get("from"), request.get("to")
                if old not in self.devices:
                    raise ValueError(f"Device '{old}' does not exist")
                if not isinstance(new, str) or not new:
                    raise ValueError("invalid new name")
                self.rename(str(old), new)
                data = {"from": old, "to": new, "homeassistant_rename": False}
            elif path == "device/options":
                ident = request.get("id")
                if ident not in self.devices:
                    raise ValueError(f"Device '{ident}' does not exist")
                data = {"id": ident, "from": {}, "to": request.get("options", {}),
                        "restart_required": False}
            else:
                raise ValueError(f"Request '{path}' is not supported by the simulator")
        except ValueError as exc:
            status, error, data = "error", str(exc), {}
        response: dict[str, Any] = {"data": data, "status": status}
        if error is not None:
            response["error"] = error
        if transaction is not None:
            response["transaction"] = transaction
        self._publish(f"bridge/response/{path}", response)

    def _permit(self, seconds: int) -> None:
        if self._permit_call is not None and self._permit_call.active():
            self._permit_call.cancel()
        self.permit_join = seconds > 0
        self._publish_info()
        if seconds:
            self._permit_call = self.reactor.callLater(seconds, self._permit, 0)

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

    def _warn(self, message: str) -> None:
        self.warnings.append(message)
        self.log.warn("simulator: {message}", message=message)


def _bounded(feature: Feature, value: float) -> float:
    if feature.value_min is not None:
        value = max(feature.value_min, value)
    if feature.value_max is not None:
        value = min(feature.value_max, value)
    return int(value) if feature.integer else round(value, 2)


def _split_command(rest: str, verb: str) -> tuple[str | None, str | None]:
    """``<name>/set`` -> (name, None); ``<name>/set/<attr>`` -> (name, attr)."""
    if rest.endswith(f"/{verb}"):
        return rest[: -len(verb) - 1], None
    marker = f"/{verb}/"
    if marker in rest:
        head, _, attribute = rest.rpartition(marker)
        if "/" not in attribute and attribute:
            return head, attribute
    return None, None


__all__ = [
    "OFFLINE", "ONLINE", "SimulatedDevice", "Zigbee2MqttSimulator", "check_wire",
    "initial_value", "load_json_file", "sample_devices", "sample_groups",
]
