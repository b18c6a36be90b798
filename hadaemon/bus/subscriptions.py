"""The bus's events half: subscriptions by topic pattern, and synchronous dispatch.

``publish(event)`` delivers synchronously to every subscription whose pattern matches the
topic, in subscription order; events published while dispatching are queued, so every
subscriber sees events in publish order. A subscriber that raises is logged with its name
and disturbs neither the others nor the publisher. :class:`hadaemon.bus.Bus` inherits
:class:`EventDispatch`, so ``bus.publish`` is this very method, without a call between.
"""

from __future__ import annotations

import inspect
import threading
from collections import deque
from collections.abc import Callable

from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure

from hadaemon.aio import as_deferred
from hadaemon.bus.events import Event
from hadaemon.bus.thread import ReactorThreadOnly
from hadaemon.bus.topics import matcher
from hadaemon.usercode import failure_of
from hadaemon.watchdog import Watchdog

Subscriber = Callable[[Event], object]

_TOPIC_CACHE_LIMIT = 4096


class Subscription:
    """An active subscription; ``cancel()`` is safe during dispatch."""

    __slots__ = ("_bus", "active", "callback", "event_type", "match", "name", "pattern")

    def __init__(
        self,
        bus: EventDispatch,
        pattern: str,
        callback: Subscriber,
        name: str,
        event_type: type[Event] | None,
    ) -> None:
        self._bus = bus
        self.pattern = pattern
        self.match = matcher(pattern)
        self.callback = callback
        self.name = name
        self.event_type = event_type
        self.active = True

    def cancel(self) -> None:
        if self.active:
            self.active = False
            self._bus._remove_subscription(self)


class EventDispatch(ReactorThreadOnly):
    """Subscribe and publish; the bus sets ``_watchdog`` and ``_log`` before use."""

    _watchdog: Watchdog | None
    _log: Logger

    def __init__(self) -> None:
        super().__init__()
        self._subscriptions: list[Subscription] = []
        self._topic_cache: dict[str, list[Subscription]] = {}
        self._pending_events: deque[tuple[Event, str]] = deque()
        self._dispatching = False
        self.events_published = 0

    def subscribe(
        self,
        pattern: str,
        callback: Subscriber,
        *,
        name: str | None = None,
        event_type: type[Event] | None = None,
    ) -> Subscription:
        """Receive events whose topic matches ``pattern`` (and type, if given)."""
        self._check_thread("subscribe")
        label = name or str(getattr(callback, "__qualname__", None) or repr(callback))
        sub = Subscription(self, pattern, callback, label, event_type)
        self._subscriptions.append(sub)
        self._topic_cache.clear()
        return sub

    def _remove_subscription(self, sub: Subscription) -> None:
        try:
            self._subscriptions.remove(sub)
        except ValueError:
            return
        self._topic_cache.clear()

    def publish(self, event: Event, *, topic: str | None = None) -> None:
        """Deliver ``event`` to every matching subscription (see the ordering rule).

        ``topic`` is ``event.topic`` when the caller already has it (the registry keeps
        each variable's): building it is a third of a small event's cost.
        """
        if threading.get_ident() != self._thread:
            self._check_thread("publish")
        self.events_published += 1
        self._pending_events.append((event, event.topic if topic is None else topic))
        if self._dispatching:
            return
        self._dispatching = True
        try:
            while self._pending_events:
                self._dispatch(*self._pending_events.popleft())
        finally:
            self._dispatching = False

    def has_subscribers(self, topic: str) -> bool:
        """Whether a subscription matches ``topic`` now, so that a publisher may skip
        building an event nobody would receive (the registry, for every report)."""
        subs = self._topic_cache.get(topic)
        if subs is None:
            subs = self._subscribers_of(topic)
        return bool(subs)

    def _subscribers_of(self, topic: str) -> list[Subscription]:
        subs = [s for s in self._subscriptions if s.match(topic)]
        if len(self._topic_cache) >= _TOPIC_CACHE_LIMIT:
            self._topic_cache.clear()
        self._topic_cache[topic] = subs
        return subs

    def _dispatch(self, event: Event, topic: str) -> None:
        subs = self._topic_cache.get(topic)
        if subs is None:
            subs = self._subscribers_of(topic)
        for sub in subs:
            if not sub.active or (sub.event_type is not None and
                                  not isinstance(event, sub.event_type)):
                continue
            try:
                if self._watchdog is not None:
                    result = self._watchdog.track(sub.name, sub.callback, event)
                else:
                    result = sub.callback(event)
            except BaseException as exc:
                self._subscriber_failed(failure_of(exc), sub, topic)
                continue
            if result is not None and inspect.isawaitable(result):
                # Not awaited (no backpressure on publishers); a failure is still logged.
                as_deferred(result, name=sub.name).addErrback(
                    self._subscriber_failed, sub, topic
                )

    def _subscriber_failed(self, failure: Failure, sub: Subscription, topic: str) -> None:
        self._log.failure(
            "subscriber {subscriber} failed on event {topic}",
            failure=failure,
            level=LogLevel.error,
            subscriber=sub.name,
            topic=topic,
        )
