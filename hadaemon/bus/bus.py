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
- A handler or subscriber that raises (any ``BaseException``: ``SystemExit`` and
  ``KeyboardInterrupt`` become :class:`hadaemon.usercode.UserCodeEscape`) is logged with
  its name and disturbs neither the others, nor the sender, nor the reactor.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import Any

from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure

from hadaemon.aio import as_deferred, create_task, running_loop
from hadaemon.bus.address import Address, InvalidAddress
from hadaemon.bus.errors import (
    BusError,
    DestinationGone,
    EndpointExists,
    QueueFull,
    UnknownDestination,
    WrongThread,
)
from hadaemon.bus.events import Event
from hadaemon.bus.topics import matcher
from hadaemon.logs import get_logger
from hadaemon.usercode import failure_of
from hadaemon.watchdog import Watchdog

Handler = Callable[[Address, Any], object]
"""A destination's handler: gets the full address and the message; may return a value,
a :class:`Completion`, a Deferred, an asyncio future (a task it started) or a coroutine
(run as an asyncio task when an asyncio loop runs)."""

Subscriber = Callable[[Event], object]

Reply = Deferred[Any] | Callable[[object], object]
"""Where a message's outcome goes: a Deferred, or a callable given the result or Failure."""

_TOPIC_CACHE_LIMIT = 4096


class Completion:
    """A handler's outcome still to come, cheaper than a Deferred: one listener, told once.

    For hot paths (a service's action, one per message): the bus learns the result or the
    Failure in the very step that produced it, without a Deferred's callback machinery or
    a future's done-callback scheduled for a later loop iteration. A plain class, not an
    ABC, so that the bus's ``isinstance`` check stays cheap.
    """

    __slots__ = ()

    def when_done(self, callback: Callable[..., object], *args: Any) -> None:
        """Call ``callback(result or Failure, *args)`` once, when the outcome is known.

        Called by the bus as soon as the handler returned, before the outcome can exist.
        """
        raise NotImplementedError


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
        self.match = matcher(pattern)
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
        self.queue: deque[tuple[Address, Any, Reply | None]] = deque()
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
        self._drain_scheduled = False
        self._draining: _Endpoint | None = None
        # One drain per reactor turn. On the asyncio reactor the loop's call_soon is far
        # cheaper than callLater(0) (no DelayedCall, no timer heap): it matters for
        # request/reply latency, where every message needs a drain of its own.
        loop = getattr(reactor, "_asyncioEventloop", None)
        self._call_soon: Callable[[Callable[[], None]], object] = (
            loop.call_soon if loop is not None else partial(reactor.callLater, 0)
        )
        self._subscriptions: list[Subscription] = []
        self._topic_cache: dict[str, list[Subscription]] = {}
        self._pending_events: deque[tuple[Event, str]] = deque()
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
        d: Deferred[Any] = Deferred()
        try:
            self.deliver(address, message, d)
        except BusError as exc:
            d.errback(exc)
        return d

    def post(self, address: str | Address, message: Any) -> None:
        """Fire and forget: like ``send``, but problems are only logged."""
        self._check_thread("post")
        try:
            self.deliver(address, message, None)
        except BusError as exc:
            self._log.warn("message to {address} not delivered: {error}",
                           address=str(address), error=str(exc))
        # A handler's failure is logged by the bus with the handler's name.

    def deliver(
        self, address: str | Address, message: Any, reply: Reply | None = None
    ) -> None:
        """The low-level send: refusals raise here, at once; the outcome goes to ``reply``.

        ``reply`` is a Deferred (fired with the result or the Failure), a callable (called
        with the result or the Failure), or None. Adapters on hot paths use this to avoid
        a Deferred per message: ``benchmarks/shortcuts.py``, one message through a plain
        handler in 3.4-8.1 us against 5.0-10.8 us with ``send``, ~1.6 us saved.
        """
        if threading.get_ident() != self._thread:
            self._check_thread("deliver")
        addr = address if type(address) is Address else Address.parse(address)
        ep = self._endpoints.get(addr.endpoint)
        if ep is None:
            raise UnknownDestination(str(addr))
        if len(ep.queue) >= ep.maxsize:
            raise QueueFull(str(addr), ep.maxsize)
        ep.queue.append((addr, message, reply))
        if ep.in_flight < ep.concurrency and not ep.ready and ep is not self._draining:
            self._mark_ready(ep)

    def _mark_ready(self, ep: _Endpoint) -> None:
        ep.ready = True
        self._ready.append(ep)
        if not self._drain_scheduled:
            self._drain_scheduled = True
            self._call_soon(self._drain)

    def _drain(self) -> None:
        self._drain_scheduled = False
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
                    addr, message, reply = ep.queue.popleft()
                    ep.in_flight += 1
                    self._deliver(ep, addr, message, reply)
            finally:
                self._draining = None
            if ep.queue and not ep.closed and ep.in_flight < ep.concurrency and not ep.ready:
                self._mark_ready(ep)

    def _deliver(self, ep: _Endpoint, addr: Address, message: Any, reply: Reply | None) -> None:
        # The hot path: a plain result completes at once and a coroutine becomes a task
        # with a done-callback, without a Deferred per message.
        try:
            if self._watchdog is not None:
                result = self._watchdog.track(ep.name, ep.handler, addr, message)
            else:
                result = ep.handler(addr, message)
        except BaseException as exc:
            result = failure_of(exc)
        # Cheapest check first: Deferred is an ABC (Awaitable), its isinstance is slow
        # (benchmarks/shortcuts.py: a Completion found in 39-70 ns, 162-252 ns after
        # the Deferred check).
        if isinstance(result, Completion):
            result.when_done(self._done, ep, addr, reply)
        elif isinstance(result, Deferred):
            result.addBoth(self._done, ep, addr, reply)
        elif isinstance(result, asyncio.Future):  # a task the handler started itself
            result.add_done_callback(partial(self._task_done, ep, addr, reply))
        elif inspect.iscoroutine(result) and running_loop() is not None:
            task = create_task(result, name=ep.name)
            task.add_done_callback(partial(self._task_done, ep, addr, reply))
        elif isinstance(result, Failure) or not inspect.isawaitable(result):
            self._done(result, ep, addr, reply)
        else:
            as_deferred(result).addBoth(self._done, ep, addr, reply)

    def _task_done(
        self, ep: _Endpoint, addr: Address, reply: Reply | None, task: asyncio.Task[Any]
    ) -> None:
        if task.cancelled():
            outcome: object = Failure(CancelledError(f"the handler of {addr} was cancelled"))
        else:
            exc = task.exception()
            outcome = task.result() if exc is None else failure_of(exc)
        self._done(outcome, ep, addr, reply)

    def _done(self, result: object, ep: _Endpoint, addr: Address, reply: Reply | None) -> None:
        ep.in_flight -= 1
        if isinstance(result, Failure):
            self._log.failure(
                "handler {handler} failed on a message to {address}",
                failure=result,
                level=LogLevel.error,
                handler=ep.name,
                address=str(addr),
            )
        if reply is not None:
            if callable(reply):  # not isinstance(reply, Deferred): an ABC, slow
                reply(result)
            elif isinstance(result, Failure):
                reply.errback(result)
            else:
                reply.callback(result)
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
            addr, _message, reply = ep.queue.popleft()
            gone = Failure(DestinationGone(str(addr)))
            if isinstance(reply, Deferred):
                reply.errback(gone)
            elif reply is not None:
                reply(gone)

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

    def publish(self, event: Event, *, topic: str | None = None) -> None:
        """Deliver ``event`` to every matching subscription (see the ordering rule).

        ``topic`` is ``event.topic`` when the caller already has it (the registry keeps
        each variable's): building it is a third of a small event's cost.
        """
        if threading.get_ident() != self._thread:
            self._check_thread("publish")
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

