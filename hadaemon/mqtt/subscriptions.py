"""Subscriptions to the broker and the delivery of what it sends to them.

A subscription survives reconnects (the connection subscribes its filters again); a
retained message is given once to each subscription (not again when someone else
subscribes to an overlapping filter), and again after a reconnect. Received messages
are matched to subscriptions through a per-topic cache, and each callback's error is
logged with its name without disturbing the others. :class:`MqttConnection
<hadaemon.mqtt.connection.MqttConnection>` inherits :class:`MessageDispatch`, so the
session calls ``_on_message`` directly, without a call between.

Reactor thread only.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from hadaemon.aio import as_deferred
from hadaemon.bus import Bus
from hadaemon.bus.topics import matcher, validate_filter
from hadaemon.watchdog import Watchdog

_TOPIC_CACHE_LIMIT = 4096


@dataclass(frozen=True, slots=True)
class Message:
    """A message received from the broker."""

    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False

    def text(self) -> str:
        """The payload as text (invalid UTF-8 replaced, never an exception)."""
        return self.payload.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The payload parsed as JSON; raises ValueError if it is not JSON."""
        return json.loads(self.payload)


MessageCallback = Callable[[Message], object]


@dataclass(eq=False)
class MqttSubscription:
    """A subscription made with :meth:`MessageDispatch.subscribe`; ``cancel()`` ends it."""

    pattern: str
    callback: MessageCallback
    qos: int
    name: str
    _owner: MessageDispatch | None = field(repr=False, default=None)
    active: bool = True
    seen_retained: set[str] = field(default_factory=set, repr=False)

    def cancel(self) -> None:
        """Stop receiving; safe inside a callback (no other subscription is skipped)."""
        if self.active:
            self.active = False
            if self._owner is not None:
                self._owner._remove(self)


class MessageDispatch:
    """Subscribe, and deliver what the broker sends; the connection sets the attributes
    below in its ``__init__`` and owns the session."""

    component: str
    log: Logger
    watchdog: Watchdog | None
    messages_received: int
    _session: Any
    _subs: list[MqttSubscription]
    _broker_filters: dict[str, int]
    _topic_cache: dict[str, list[MqttSubscription]]
    _read_hooks: list[Callable[[], object]]
    bus: Bus | None

    if TYPE_CHECKING:
        @property
        def connected(self) -> bool: ...

    def after_read(self, callback: Callable[[], object]) -> Callable[[], None]:
        """Call ``callback()`` each time the messages read in one wake-up have all been
        delivered; returns a remover.

        For a subscriber that gathers what those messages cause and answers once (the
        zigbee2mqtt adapter's collated ``/set``): answering here rather than in a
        ``callLater(0)`` saves a reactor turn, and what it publishes is written at once.
        """
        self._read_hooks.append(callback)
        return lambda: self._read_hooks.remove(callback) if callback in self._read_hooks else None

    def subscribe(
        self, pattern: str, callback: MessageCallback, *, qos: int = 1, name: str | None = None
    ) -> MqttSubscription:
        """Receive messages on topics matching ``pattern`` until ``cancel()``.

        Raises InvalidTopic (a ValueError) for a malformed filter. The callback runs on
        the reactor thread; if it raises, the error is logged with ``name`` and the other
        subscriptions still get the message.
        """
        validate_filter(pattern)
        if qos not in (0, 1):
            raise ValueError(f"qos must be 0 or 1, got {qos!r}")
        label = name or str(getattr(callback, "__qualname__", None) or repr(callback))
        sub = MqttSubscription(pattern, callback, qos, label, self)
        self._subs.append(sub)
        self._topic_cache.clear()
        self._broker_filters[pattern] = max(qos, self._broker_filters.get(pattern, 0))
        if self.connected:
            # Sent even when the filter is already subscribed: the broker then sends
            # the retained messages again, which the new subscription wants.
            self._session.subscribe([(pattern, self._broker_filters[pattern])])
        return sub


    # -- receiving ---------------------------------------------------------------------

    def _on_message(self, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        self.messages_received += 1
        message = Message(topic, payload, qos, retain)
        subs = self._topic_cache.get(topic)
        if subs is None:
            subs = [s for s in self._subs if matcher(s.pattern)(topic)]
            if len(self._topic_cache) >= _TOPIC_CACHE_LIMIT:
                self._topic_cache.clear()
            self._topic_cache[topic] = subs
        for sub in subs:
            if not sub.active:
                continue
            if message.retain:
                if topic in sub.seen_retained:
                    continue  # already had it: someone re-subscribed an overlapping filter
                sub.seen_retained.add(topic)
            self._deliver(sub, message)

    def _read_done(self) -> None:
        for hook in tuple(self._read_hooks):
            try:
                hook()
            except Exception:
                self.log.failure("{component}: after-read callback {name} failed",
                                 failure=Failure(), component=self.component,
                                 name=getattr(hook, "__qualname__", repr(hook)))
        bus = self.bus
        if bus is not None:
            bus.flush()  # what the messages posted, delivered in this turn

    def _deliver(self, sub: MqttSubscription, message: Message) -> None:
        try:
            if self.watchdog is not None:
                result = self.watchdog.track(sub.name, sub.callback, message)
            else:
                result = sub.callback(message)
        except Exception:
            self.log.failure(
                "{component}: subscriber {name} failed on {topic}", failure=Failure(),
                component=self.component, name=sub.name, topic=message.topic,
            )
            return
        if result is not None and (isinstance(result, Deferred) or inspect.isawaitable(result)):
            as_deferred(result).addErrback(
                lambda f: self.log.failure(
                    "{component}: subscriber {name} failed on {topic}", failure=f,
                    component=self.component, name=sub.name, topic=message.topic,
                )
            )

    def _remove(self, sub: MqttSubscription) -> None:
        try:
            self._subs.remove(sub)
        except ValueError:
            return
        self._topic_cache.clear()
        remaining = [s.qos for s in self._subs if s.pattern == sub.pattern]
        if remaining:
            self._broker_filters[sub.pattern] = max(remaining)
            return
        self._broker_filters.pop(sub.pattern, None)
        if self.connected:
            self._session.unsubscribe([sub.pattern])



__all__ = ["Message", "MessageCallback", "MessageDispatch", "MqttSubscription"]
