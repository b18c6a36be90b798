"""zigbee2mqtt's messages as the network reads them: each device's state and
availability, and the bridge's topics (``state``, ``info``, ``event``, ``devices``,
``groups``, ``response/*``). Malformed payloads (too big, not JSON, wrong types, unknown
devices) are ignored with a warning (each kind of problem once a minute at most per
device), never with an exception. Reactor thread only.
"""

from __future__ import annotations

import json
from typing import Any

from hadaemon.bus import StatusUpdate
from hadaemon.mqtt import Message
from hadaemon.zigbee.live import LiveTarget
from hadaemon.zigbee.roster import Roster

EARLY_MESSAGES = 10000  # topics of names whose messages came before the device list


class Incoming(Roster):
    """Reads and dispatches zigbee2mqtt's messages (a half of ``Network``)."""

    # -- incoming messages -------------------------------------------------------------------

    def _on_message(self, message: Message) -> None:
        self.messages_received += 1
        if self._remove_read_hook is not None:
            self.collator.hold()  # _flush_after_read flushes what the message causes
        rest = message.topic[len(self.base_topic) + 1:]
        size = len(message.payload)
        if size > self._smallest_limit:
            key, limit = (("max_devices_payload", self.settings.max_devices_payload)
                          if rest in ("bridge/devices", "bridge/groups")
                          else ("max_payload", self.settings.max_payload))
            if size > limit:
                self.warn_once(f"{message.topic}: {size} bytes, more than the {limit} "
                               f"allowed ([zigbee2mqtt].{key}); ignored", key=("size", rest))
                return
        if self._to_target(rest, message):
            return
        if rest.startswith("bridge/"):
            self._on_bridge(rest[7:], message)
            return
        if self._keep_early(rest, message):
            return
        if not message.payload:
            return  # a retained message being cleared
        self.warn_once(f"{message.topic}: message for an unknown device ignored",
                       key=("unknown", rest))

    def _to_target(self, rest: str, message: Message) -> bool:
        """A device's or group's state or availability, if ``rest`` names a known one."""
        target = self._by_name.get(rest)
        if target is not None:
            payload = self._json(message)
            if isinstance(payload, dict):
                target.apply_state(payload)
            elif payload is not None:
                self.warn_once(f"{message.topic}: expected a JSON object, got "
                               f"{_short(message.payload)}", key=("shape", rest))
            return True
        if rest.endswith("/availability") and not rest.startswith("bridge/"):
            found = self._by_name.get(rest[: -len("/availability")])
            if found is not None:
                self._on_availability(found, message)
                return True
        return False

    def _json(self, message: Message) -> Any:
        try:
            try:
                # zigbee2mqtt writes UTF-8: decoding it ourselves skips json.loads' encoding
                # detection and call layers, ~0.6 of its 1.3 us per message (timeit, a
                # one-value report); anything else gets json.loads' own reading.
                return _DECODE(message.payload.decode())
            except ValueError:
                return json.loads(message.payload)
        except ValueError:
            self.warn_once(f"{message.topic}: not JSON ({_short(message.payload)}); ignored",
                           key=("json", message.topic))
            return None

    def _keep_early(self, rest: str, message: Message) -> bool:
        """A state or availability for a name not known yet, kept until the device list
        names it.

        The broker sends retained messages in the order of the filters of a SUBSCRIBE,
        not of their publishing, and ``<base>/+`` and ``<base>/+/availability`` sort
        before ``<base>/bridge/devices``: at a connect, every device's retained
        availability (and state, where zigbee2mqtt retains it) may come before the list
        that makes the devices known, and was lost until the device changed it (the
        real-broker test of availability lost it about 1 run in 12). Kept only until
        the device and group lists are both in (:meth:`_apply_early`), at most
        ``EARLY_MESSAGES`` topics.
        """
        if self.devices_payload is not None and self.groups_payload is not None:
            return False  # the lists are in: the name is unknown
        early = self._early
        if not message.payload:
            early.pop(rest, None)  # a retained message being cleared
            return True
        if rest in early or len(early) < EARLY_MESSAGES:
            early[rest] = message
            return True
        return False

    def _apply_early(self) -> None:
        """What came before the device list, for the targets now known; once both lists
        are in, what is left is for unknown names (warned about, dropped)."""
        early = self._early
        for rest, message in list(early.items()):
            if self._to_target(rest, message):
                del early[rest]
        if early and self.devices_payload is not None and self.groups_payload is not None:
            for rest, message in early.items():
                self.warn_once(f"{message.topic}: message for an unknown device ignored",
                               key=("unknown", rest))
            early.clear()

    def _on_availability(self, target: LiveTarget, message: Message) -> None:
        state = _state_word(message.payload)
        if state in ("online", "offline"):
            target.set_available(state == "online")
        elif message.payload:
            self.warn_once(f"{message.topic}: unexpected availability "
                           f"{_short(message.payload)}", key=("avail", message.topic))

    def _on_bridge(self, what: str, message: Message) -> None:
        if what == "state":
            state = _state_word(message.payload)
            if state in ("online", "offline"):
                self._set_bridge_online(state == "online")
            return
        if what.startswith("response/"):
            payload = self._json(message)
            self.requests.response(what[9:], payload)
            return
        if what not in ("devices", "groups", "info", "event") or not message.payload:
            return
        payload = self._json(message)
        if payload is None:
            return
        if what == "devices":
            self.devices_payload = payload
            self._update_devices(payload)
        elif what == "groups":
            self.groups_payload = payload
            self._update_groups(payload)
        elif what == "info":
            self._update_info(payload)
        else:
            self._bridge_event(payload)

    def _set_bridge_online(self, online: bool) -> None:
        was = self.bridge_online
        if was is online:
            return
        self.bridge_online = online
        self._bridge_queries(online, restarted=was is False)
        log = self.log.info if online else self.log.warn
        log("{source}: bridge {state}", source=self.source,
            state="online" if online else "offline")
        if self.bridge_device is not None:
            self.registry.report(self.bridge_device.peer_id, 0, "online", online)
        self.bus.publish(StatusUpdate(self.source, "bridge",
                                      {"state": "online" if online else "offline"}))

    def _update_info(self, payload: Any) -> None:
        if not isinstance(payload, dict):
            self.warn_once("bridge/info is not an object", key="info")
            return
        self.bridge_info = payload
        if self.bridge_device is None:
            return
        peer = self.bridge_device.peer_id
        if isinstance(payload.get("permit_join"), bool):
            self.registry.report(peer, 0, "permit_join", payload["permit_join"])
        if isinstance(payload.get("version"), str):
            self.registry.report(peer, 0, "version", payload["version"])

    def _bridge_event(self, payload: Any) -> None:
        if not isinstance(payload, dict):
            self.warn_once("bridge/event is not an object", key="event")
            return
        data: dict[str, Any] = payload["data"] if isinstance(payload.get("data"), dict) else {}
        self.log.info("{source}: bridge event {type} {name}", source=self.source,
                      type=payload.get("type"), name=data.get("friendly_name", ""))
        if self.bridge_device is not None:
            self.registry.report(self.bridge_device.peer_id, 0, "event", payload)
        for observer in list(self._observers):
            observer.bridge_event(payload)


_DECODE = json.JSONDecoder().decode


def _state_word(payload: bytes) -> str | None:
    """``{"state": "online"}`` (zigbee2mqtt 2.x) or plain ``online`` (1.x)."""
    text = payload.decode("utf-8", errors="replace").strip()
    if text in ("online", "offline"):
        return text
    try:
        data = json.loads(text)
    except ValueError:
        return None
    state = data.get("state") if isinstance(data, dict) else None
    return state if isinstance(state, str) else None


def _short(payload: bytes, limit: int = 60) -> str:
    text = payload.decode("utf-8", errors="replace")
    return repr(text if len(text) <= limit else text[:limit] + "...")


__all__ = ["Incoming"]
