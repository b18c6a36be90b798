"""In-memory stand-ins a replay runs the real adapter on: a clock-driven reactor, a broker
connection with the ``mqtt`` plugin's public face, and a key-value store."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock

from hadaemon.bus import Bus, Lifecycle
from hadaemon.mqtt import Message, MqttSubscription, matches
from hadaemon.zigbee.traffic_log import parse_payload


class ReplayReactor(Clock):
    """``task.Clock`` plus ``callFromThread`` (as a next-turn call), for automations."""

    def callFromThread(self, f: Any, *args: Any, **kwargs: Any) -> None:
        self.callLater(0, f, *args, **kwargs)


class FakeConnection:
    """An in-memory broker connection with the ``mqtt`` plugin's public face
    (:class:`hadaemon.mqtt.MqttClient`). ``deliver`` hands over one message;
    ``read_done`` ends a batch, as the end of one wake-up's reading does."""

    def __init__(self, clock: Clock, bus: Bus, component: str = "mqtt") -> None:
        self.clock = clock
        self.bus = bus
        self.component = component
        self.connected = False
        self.sent: list[tuple[float, str, Any]] = []
        self._subs: list[MqttSubscription] = []
        self._read_hooks: list[Callable[[], object]] = []
        self._ever = False

    def connect(self) -> None:
        self.connected = True
        self.bus.publish(Lifecycle(self.component, "reconnected" if self._ever else "connected"))
        self._ever = True

    def disconnect(self) -> None:
        self.connected = False
        self.bus.publish(Lifecycle(self.component, "disconnected"))

    def publish(self, topic: str, payload: bytes | str, *, qos: int = 1,
                retain: bool = False) -> Deferred[None]:
        data = payload.encode() if isinstance(payload, str) else payload
        self.sent.append((self.clock.seconds(), topic, parse_payload(data)))
        return succeed(None)

    def subscribe(self, pattern: str, callback: Any, *, qos: int = 1,
                  name: str | None = None) -> MqttSubscription:
        sub = MqttSubscription(pattern, callback, qos, name or "replay")
        self._subs.append(sub)
        return sub

    def after_read(self, callback: Callable[[], object]) -> Callable[[], None]:
        self._read_hooks.append(callback)
        return lambda: self._read_hooks.remove(callback) if callback in self._read_hooks else None

    def read_done(self) -> None:
        """The messages delivered so far were one read: run the ``after_read`` callbacks."""
        for hook in tuple(self._read_hooks):
            hook()

    def deliver(self, topic: str, payload: Any, retain: bool = False) -> None:
        if payload is None:
            data = b""
        elif isinstance(payload, str):
            data = payload.encode()
        else:
            data = json.dumps(payload).encode()
        message = Message(topic, data, 1, retain)
        for sub in list(self._subs):
            if sub.active and matches(sub.pattern, topic):
                sub.callback(message)


class _MemoryStore:
    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def put(self, key: str, value: Any) -> None:
        self.data[key] = value

    def put_many(self, items: Any) -> None:
        self.data.update(items)

    def delete(self, key: str) -> None:
        self.data.pop(key, None)

    def items(self, prefix: str = "") -> list[tuple[str, Any]]:
        return [(k, v) for k, v in sorted(self.data.items()) if k.startswith(prefix)]


__all__ = ["FakeConnection", "ReplayReactor", "_MemoryStore"]
