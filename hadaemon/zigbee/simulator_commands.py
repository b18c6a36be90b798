"""What the zigbee2mqtt simulator answers: ``/set`` echoed into the state as a device
would (access bits and value types checked), ``/get`` (battery devices sleep), and
``bridge/request`` (``health_check``, ``permit_join``, ``device/rename``,
``device/options``) with the caller's transaction. A half of
:class:`hadaemon.zigbee.simulator.Zigbee2MqttSimulator`. Reactor thread only.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from twisted.internet.interfaces import IDelayedCall

from hadaemon.mqtt import Message
from hadaemon.zigbee.simulated_device import SimulatedDevice, check_wire
from hadaemon.zigbee.simulator_publishing import Publishing


class Commands(Publishing):
    """Answers commands and bridge requests (a half of ``Zigbee2MqttSimulator``)."""

    sleepy_battery_devices: bool
    commands: list[tuple[str, Any]]
    _permit_call: IDelayedCall | None

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


__all__ = ["Commands"]
