"""The in-process bus: point-to-point messages to addresses, and events by topic.

Contract (see docs/architecture.md):

- Reactor thread only (asserted). Other threads go through the embedding bridge.
- ``send(address, message)`` queues the message at the address's endpoint and returns a
  Deferred with the handler's result. It fails with :class:`UnknownDestination` or
  :class:`QueueFull` at once, and with the handler's exception if it raises.
- Each endpoint has a bounded queue and gets its messages in order, one at a time unless
  it registered with more concurrency. Delivery always happens in a later reactor turn
  (one scheduled call drains every ready endpoint), so a sender never runs a receiver's
  code in its own stack.
- ``publish(event)`` delivers synchronously to every subscription whose pattern matches
  the topic, in subscription order; events published while dispatching are queued, so
  every subscriber sees events in publish order.
- A handler or subscriber that raises (``SystemExit`` included) is logged with its name
  and disturbs neither the others, nor the sender, nor the reactor.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, fail
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from hadaemon.aio import call_as_deferred
from hadaemon.bus.address import Address, InvalidAddress
from hadaemon.bus.errors import (
    DestinationGone,
    EndpointExists,
    QueueFull,
    UnknownDestination,
    WrongThread,
)
from hadaemon.bus.events import Event
from hadaemon.bus.topics import compile_pattern
from hadaemon.logs import get_logger
from hadaemon.watchdog import Watchdog

Handler = Callable[[Address, Any], object]
"""A destination's handler: gets the full address and the message; may return a value,
a Deferred or a coroutine (run as an asyncio task when an asyncio loop runs)."""

Subscriber = Callable[[Event], object]

_TOPIC_CACHE_LIMIT = 4096


class Registration:
    """A registered endpoint; ``unregister()`` removes it and fails what is queued."""

    def __init__(self, bus: Bus, endpoint: _Endpoint) -> None:
        self._bus = bus
        self._endpoint = endpoint

    @property
    def endpoint(self) -> str:
        return self._endpoint.endpoint

    @property
    def queued(self) -> int:
        """Messages waiting (not counting those being handled)."""
        return len(self._endpoint.queue)

    @property
    def in_flight(self) -> int:
        return self._endpoint.in_flight

    def unregister(self) -> None:
        self._bus._unregister(self._endpoint)


class Subscription:
    """An active subscription; ``cancel()`` is safe during dispatch."""

    __slots__ = ("_bus", "active", "callback", "event_type", "match", "name", "pattern")

    def __init__(
        self,
        bus: Bus,
        pattern: str,
        callback: Subscriber,
        name: str,
        event_type: type[Event] | None,
    ) -> None:
        self._bus = bus
        self.pattern = pattern
        self.match = compile_pattern(pattern)
        self.callback = callback
        self.name = name
        self.event_type = event_type
        self.active = True

    def cancel(self) -> None:
        if self.active:
            self.active = False
            self._bus._remove_subscription(self)


class _Endpoint:
    __slots__ = (
        "closed",
        "concurrency",
        "endpoint",
        "handler",
        "in_flight",
        "maxsize",
        "name",
        "queue",
        "ready",
    )

    def __init__(
        self, endpoint: str, handler: Handler, maxsize: int, concurrency: int, name: str
    ) -> None:
        self.endpoint = endpoint
        self.handler = handler
        self.maxsize = maxsize
        self.concurrency = concurrency
        self.name = name
        self.queue: deque[tuple[Address, Any, Deferred[Any]]] = deque()
        self.in_flight = 0
        self.closed = False
        self.ready = False


class Bus:
    """One bus per daemon; see the module docstring for the contract."""

    def __init__(
        self,
        reactor: IReactorTime,
        *,
        watchdog: Watchdog | None = None,
        log: Logger | None = None,
        default_queue_size: int = 1000,
    ) -> None:
        self._reactor = reactor
        self._watchdog = watchdog
        self._log = log or get_logger("hadaemon.bus")
        self.default_queue_size = default_queue_size
        self._thread = threading.get_ident()
        self._endpoints: dict[str, _Endpoint] = {}
        self._ready: deque[_Endpoint] = deque()
        self._drain_call: IDelayedCall | None = None
        self._draining: _Endpoint | None = None
        self._subscriptions: list[Subscription] = []
        self._topic_cache: dict[str, list[Subscription]] = {}
        self._pending_events: deque[Event] = deque()
        self._dispatching = False

    # -- threads ---------------------------------------------------------------------

    def bind_thread(self) -> None:
        """Make the calling thread the bus's thread (the daemon calls it in the reactor)."""
        self._thread = threading.get_ident()

    def _check_thread(self, what: str) -> None:
        if threading.get_ident() != self._thread:
            raise WrongThread(
                f"Bus.{what} called from thread {threading.current_thread().name!r}: the "
                "bus is used on the reactor thread only; from other threads go through "
                "the embedding bridge (handle.call / reactor.callFromThread)"
            )

    # -- point-to-point --------------------------------------------------------------

    def register(
        self,
        endpoint: str,
        handler: Handler,
        *,
        queue_size: int | None = None,
        concurrency: int = 1,
        name: str | None = None,
    ) -> Registration:
        """Register the destination ``kind:id`` (no path): all its addresses come here."""
        self._check_thread("register")
        address = Address.parse(endpoint)
        if address.path:
            raise InvalidAddress(f"register an endpoint 'kind:id', not an address: {endpoint!r}")
        key = address.endpoint
        if key in self._endpoints:
            raise EndpointExists(f"{key} is already registered")
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        size = self.default_queue_size if queue_size is None else queue_size
        ep = _Endpoint(key, handler, size, concurrency, name or key)
        self._endpoints[key] = ep
        return Registration(self, ep)

    def has_endpoint(self, address: str | Address) -> bool:
        return Address.parse(address).endpoint in self._endpoints

    def endpoints(self, kind: str | None = None) -> list[str]:
        """Registered endpoints, optionally of one kind, sorted."""
        prefix = f"{kind}:" if kind else ""
        return sorted(k for k in self._endpoints if k.startswith(prefix))

    def send(self, address: str | Address, message: Any) -> Deferred[Any]:
        """Queue ``message`` for ``address``; the Deferred fires with the handler's result."""
        self._check_thread("send")
        try:
            addr = Address.parse(address)
        except InvalidAddress as exc:
            return fail(exc)
        ep = self._endpoints.get(addr.endpoint)
        if ep is None:
            return fail(UnknownDestination(str(addr)))
        if len(ep.queue) >= ep.maxsize:
            return fail(QueueFull(str(addr), ep.maxsize))
        d: Deferred[Any] = Deferred()
        ep.queue.append((addr, message, d))
        if ep.in_flight < ep.concurrency and not ep.ready and ep is not self._draining:
            self._mark_ready(ep)
        return d

    def post(self, address: str | Address, message: Any) -> None:
        """Fire and forget: like ``send``, but problems are only logged."""
        self.send(address, message).addErrback(self._log_post_failure, str(address))

    def _log_post_failure(self, failure: Failure, address: str) -> None:
        if failure.check(UnknownDestination, QueueFull, DestinationGone, InvalidAddress):
            self._log.warn("message to {address} not delivered: {error}", address=address,
                           error=failure.getErrorMessage())
        # Handler failures were already logged by the bus with the handler's name.

    def _mark_ready(self, ep: _Endpoint) -> None:
        ep.ready = True
        self._ready.append(ep)
        if self._drain_call is None:
            self._drain_call = self._reactor.callLater(0, self._drain)

    def _drain(self) -> None:
        self._drain_call = None
        # Only what is ready now; endpoints that become ready meanwhile get a new turn,
        # so a busy destination cannot starve the reactor.
        for _ in range(len(self._ready)):
            ep = self._ready.popleft()
            ep.ready = False
            self._draining = ep
            try:
                # Bounded by the queue size: messages sent meanwhile wait for a new turn.
                for _ in range(len(ep.queue)):
                    if ep.in_flight >= ep.concurrency or ep.closed:
                        break
                    addr, message, d = ep.queue.popleft()
                    ep.in_flight += 1
                    self._deliver(ep, addr, message, d)
            finally:
                self._draining = None
            if ep.queue and not ep.closed and ep.in_flight < ep.concurrency and not ep.ready:
                self._mark_ready(ep)

    def _deliver(self, ep: _Endpoint, addr: Address, message: Any, d: Deferred[Any]) -> None:
        if self._watchdog is not None:
            result = self._watchdog.track(ep.name, call_as_deferred, ep.handler, addr, message)
        else:
            result = call_as_deferred(ep.handler, addr, message)
        if result.called:
            # Synchronous handlers complete here: no extra Deferred callbacks per message.
            self._done(result_value(result), ep, addr, d)
        else:
            result.addBoth(self._done, ep, addr, d)

    def _done(self, result: object, ep: _Endpoint, addr: Address, d: Deferred[Any]) -> None:
        ep.in_flight -= 1
        if isinstance(result, Failure):
            self._log.failure(
                "handler {handler} failed on a message to {address}",
                failure=result,
                handler=ep.name,
                address=str(addr),
            )
            d.errback(result)
        else:
            d.callback(result)
        if (
            ep.queue
            and not ep.closed
            and not ep.ready
            and ep is not self._draining
            and ep.in_flight < ep.concurrency
        ):
            self._mark_ready(ep)

    def _unregister(self, ep: _Endpoint) -> None:
        if self._endpoints.get(ep.endpoint) is not ep:
            return
        del self._endpoints[ep.endpoint]
        ep.closed = True
        while ep.queue:
            addr, _message, d = ep.queue.popleft()
            d.errback(DestinationGone(str(addr)))

    # -- events ----------------------------------------------------------------------

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

    def publish(self, event: Event) -> None:
        """Deliver ``event`` to every matching subscription (see the ordering rule)."""
        self._check_thread("publish")
        self._pending_events.append(event)
        if self._dispatching:
            return
        self._dispatching = True
        try:
            while self._pending_events:
                self._dispatch(self._pending_events.popleft())
        finally:
            self._dispatching = False

    def _dispatch(self, event: Event) -> None:
        topic = event.topic
        subs = self._topic_cache.get(topic)
        if subs is None:
            subs = [s for s in self._subscriptions if s.match(topic)]
            if len(self._topic_cache) >= _TOPIC_CACHE_LIMIT:
                self._topic_cache.clear()
            self._topic_cache[topic] = subs
        for sub in subs:
            if not sub.active or (sub.event_type is not None and
                                  not isinstance(event, sub.event_type)):
                continue
            if self._watchdog is not None:
                result = self._watchdog.track(sub.name, call_as_deferred, sub.callback, event)
            else:
                result = call_as_deferred(sub.callback, event)
            if result.called:
                value = result_value(result)
                if isinstance(value, Failure):
                    self._subscriber_failed(value, sub, topic)
            else:
                result.addErrback(self._subscriber_failed, sub, topic)

    def _subscriber_failed(self, failure: Failure, sub: Subscription, topic: str) -> None:
        self._log.failure(
            "subscriber {subscriber} failed on event {topic}",
            failure=failure,
            subscriber=sub.name,
            topic=topic,
        )


def result_value(d: Deferred[Any]) -> object:
    """The result of an already-fired Deferred (a Failure is consumed, not re-raised)."""
    box: list[object] = []
    d.addBoth(box.append)
    return box[0]
