"""The in-process bus: point-to-point messages to addresses, and events by topic.

Contract (see docs/architecture.md):

- Reactor thread only (asserted). Other threads go through the embedding bridge.
- ``send(address, message)`` queues the message at the address's endpoint and returns a
  Deferred with the handler's result. It fails with :class:`UnknownDestination` or
  :class:`QueueFull` at once, and with the handler's exception if it raises.
- Every message travels as one :class:`BusMessage` (address, payload, sender, reply):
  ``hand_on(message)`` queues one a sender made; ``send``/``post``/``deliver`` make it.
  A handler gets ``(address, payload)``, or with ``typed=True`` the message itself.
- Each endpoint has a bounded queue and gets its messages in order, one at a time unless
  it registered with more concurrency. Delivery always happens in a later reactor turn
  (one scheduled call drains every ready endpoint), so a sender never runs a receiver's
  code in its own stack.
- ``publish(event)`` delivers synchronously to every subscription whose pattern matches
  the topic, in subscription order; events published while dispatching are queued, so
  every subscriber sees events in publish order. That half lives in
  :mod:`hadaemon.bus.subscriptions` (the Bus inherits it: no call between).
- Figures for metrics are kept per endpoint as plain counters (a few attribute updates
  per message, no lookups) and summed by kind only when asked (:meth:`Bus.stats`). The
  handlers' time is sampled, one message in 16: reading the clock twice per message
  cost 6 to 11% of the bare bus path, the sample at most 4% (docs/metrics.md).
- An address whose endpoint is not registered here may be claimed by the *gateway*
  (:meth:`Bus.set_gateway`: the federation's, for ``node:<id>@<host>/...`` and ids on
  other hosts): it names the endpoint that takes the message on, or refuses at once
  (e.g. :class:`HostOffline`). Only the miss path asks it: local delivery costs nothing more.
- A handler or subscriber that raises (any ``BaseException``: ``SystemExit`` and
  ``KeyboardInterrupt`` become :class:`hadaemon.usercode.UserCodeEscape`) is logged with
  its name and disturbs neither the others, nor the sender, nor the reactor.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
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
from hadaemon.bus.completion import Completion
from hadaemon.bus.endpoint import Endpoint, Registration
from hadaemon.bus.errors import (
    BusError,
    DestinationGone,
    EndpointExists,
    QueueFull,
    UnknownDestination,
)
from hadaemon.bus.message import BusMessage, Reply, tell
from hadaemon.bus.stats import KindStats
from hadaemon.bus.subscriptions import EventDispatch, Subscriber, Subscription
from hadaemon.logs import get_logger
from hadaemon.soon import call_soon_of
from hadaemon.usercode import failure_of
from hadaemon.watchdog import Watchdog

Handler = Callable[[Address, Any], object]
"""A destination's handler: gets the full address and the message; may return a value,
a :class:`Completion`, a Deferred, an asyncio future (a task it started) or a coroutine
(run as an asyncio task when an asyncio loop runs)."""

Gateway = Callable[[Address], str | None]
"""Asked for an address whose endpoint is not registered: the endpoint (registered) that
takes the message on, or None (:class:`UnknownDestination`); it may raise a
:class:`BusError` of its own to refuse at once (:class:`HostOffline`)."""

MessageHandler = Callable[[BusMessage], object]
"""A destination registered with ``typed=True``: gets the :class:`BusMessage` itself (its
sender, to answer; the payload as it was handed on); may return what a Handler may."""

__all__ = [  # Completion, KindStats, Registration, Subscriber, Subscription: re-exported
    "Bus",
    "Completion",
    "Gateway",
    "Handler",
    "KindStats",
    "MessageHandler",
    "Registration",
    "Subscriber",
    "Subscription",
]

_now = time.perf_counter  # a module global: the cheapest clock lookup on the hot path
_SAMPLE_MASK = 15  # time the messages an endpoint gets while its handled count % 16 == 0


class Bus(EventDispatch):
    """One bus per daemon; see the module docstring for the contract."""

    def __init__(
        self,
        reactor: IReactorTime,
        *,
        watchdog: Watchdog | None = None,
        log: Logger | None = None,
        default_queue_size: int = 1000,
    ) -> None:
        super().__init__()
        self._reactor = reactor
        self._watchdog = watchdog
        self._log = log or get_logger("hadaemon.bus")
        self.default_queue_size = default_queue_size
        self._endpoints: dict[str, Endpoint] = {}
        self._ready: deque[Endpoint] = deque()
        self._drain_scheduled = False
        self._draining: Endpoint | None = None
        # One drain per reactor turn: it matters for request/reply latency, where every
        # message needs a drain of its own.
        self._call_soon = call_soon_of(reactor)
        self._drain_hooks: list[Callable[[], object]] = []
        self._retired: dict[str, KindStats] = {}  # counters of unregistered endpoints
        self._unknown: dict[str, int] = {}  # messages to no endpoint, by kind
        self._gateway: Gateway | None = None

    # -- point-to-point --------------------------------------------------------------

    def register(
        self,
        endpoint: str,
        handler: Handler | MessageHandler,
        *,
        queue_size: int | None = None,
        concurrency: int = 1,
        name: str | None = None,
        typed: bool = False,
    ) -> Registration:
        """Register the destination ``kind:id`` (no path): all its addresses come here.

        The handler is called ``handler(address, payload)``, or with ``typed=True``
        ``handler(message)`` with the :class:`BusMessage` as the sender handed it on.
        """
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
        ep = Endpoint(key, handler, size, concurrency, name or key, typed)
        self._endpoints[key] = ep
        return Registration(self, ep)

    def set_gateway(self, gateway: Gateway | None) -> None:
        """Route addresses with no local endpoint through ``gateway`` (None: no more).

        One gateway per bus (the federation's); a second one is a programming error.
        """
        self._check_thread("set_gateway")
        if gateway is not None and self._gateway is not None:
            raise RuntimeError("the bus already has a gateway")
        self._gateway = gateway

    @property
    def gateway(self) -> Gateway | None:
        """The gateway addresses with no local endpoint go to, if any."""
        return self._gateway

    def has_endpoint(self, address: str | Address) -> bool:
        return Address.parse(address).endpoint in self._endpoints

    def endpoints(self, kind: str | None = None) -> list[str]:
        """Registered endpoints, optionally of one kind, sorted."""
        prefix = f"{kind}:" if kind else ""
        return sorted(k for k in self._endpoints if k.startswith(prefix))

    def send(
        self, address: str | Address, message: Any, *, sender: str | Address | None = None
    ) -> Deferred[Any]:
        """Queue ``message`` for ``address``; the Deferred fires with the handler's result.

        ``sender``: the address an answer may be sent to (a typed handler sees it).
        """
        self._check_thread("send")
        d: Deferred[Any] = Deferred()
        try:
            self.deliver(address, message, d, sender=sender)
        except BusError as exc:
            d.errback(exc)
        return d

    def post(
        self, address: str | Address, message: Any, *, sender: str | Address | None = None
    ) -> None:
        """Fire and forget: like ``send``, but problems are only logged."""
        self._check_thread("post")
        try:
            self.deliver(address, message, None, sender=sender)
        except BusError as exc:
            self._log.warn("message to {address} not delivered: {error}",
                           address=str(address), error=str(exc))
        # A handler's failure is logged by the bus with the handler's name.

    def deliver(
        self,
        address: str | Address,
        message: Any,
        reply: Reply | None = None,
        *,
        sender: str | Address | None = None,
    ) -> None:
        """The low-level send: refusals raise here, at once; the outcome goes to ``reply``.

        ``reply`` is a Deferred (fired with the result or the Failure), a callable (called
        with the result or the Failure), or None. Adapters on hot paths use this to avoid
        a Deferred per message (``benchmarks/shortcuts.py``: one message through a plain
        handler in 3.4-8.1 us against 5.0-10.8 us with ``send``, ~1.6 us saved), or
        :meth:`hand_on` with a message they made.
        """
        if threading.get_ident() != self._thread:
            self._check_thread("deliver")
        addr = address if type(address) is Address else Address.parse(address)
        if sender is not None and type(sender) is not Address:
            sender = Address.parse(sender)
        self._enqueue(BusMessage(addr, message, sender, reply))

    def hand_on(self, message: BusMessage) -> None:
        """Queue ``message`` as it is (its payload is not copied; nothing is re-made).

        Refusals raise here, at once (:class:`UnknownDestination`, :class:`QueueFull`);
        the outcome goes to ``message.reply``.
        """
        if threading.get_ident() != self._thread:
            self._check_thread("hand_on")
        self._enqueue(message)

    def _enqueue(self, message: BusMessage) -> None:
        # deliver's and hand_on's one queueing step (inlining it into deliver saved ~25 ns
        # a message, ~0.6% of the daemon's CPU per message: not worth a second copy).
        address = message.address
        ep = self._endpoints.get(address.endpoint)
        if ep is None:
            ep = self._elsewhere(address)
        if len(ep.queue) >= ep.maxsize:
            ep.full += 1
            raise QueueFull(str(address), ep.maxsize)
        ep.queue.append(message)
        if ep.in_flight < ep.concurrency and not ep.ready and ep is not self._draining:
            self._mark_ready(ep)

    def _elsewhere(self, address: Address) -> Endpoint:
        """The endpoint the gateway names for an address not registered here; refusals
        (the gateway's own, or none at all: :class:`UnknownDestination`) raise."""
        gateway = self._gateway
        if gateway is not None:
            key = gateway(address)
            if key is not None:
                ep = self._endpoints.get(key)
                if ep is not None:
                    return ep
        self._unknown[address.kind] = self._unknown.get(address.kind, 0) + 1
        raise UnknownDestination(str(address))

    def _mark_ready(self, ep: Endpoint) -> None:
        ep.ready = True
        self._ready.append(ep)
        if not self._drain_scheduled:
            self._drain_scheduled = True
            self._call_soon(self._drain)

    def flush(self) -> None:
        """Deliver now what the drain scheduled for the next reactor turn would.

        For adapters at the end of a read (``mqtt``, ``nodes``): what the read posted is
        delivered in the same turn instead of the next, whose loop iteration (and the
        drain hooks' writes) cost a message's latency ~10-30 us each time: see
        ``benchmarks/nodes_vs_nodered.py`` (docs/nodes.md, "Performance").
        """
        if self._drain_scheduled and self._draining is None:
            self._drain()

    def after_drain(self, hook: Callable[[], object]) -> Callable[[], None]:
        """Call ``hook()`` at the end of every drain (an adapter writes what the drain's
        deliveries queued: one write for them all, in the same turn); returns a remover."""
        self._drain_hooks.append(hook)
        return lambda: self._drain_hooks.remove(hook) if hook in self._drain_hooks else None

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
                    ep.in_flight += 1
                    self._deliver(ep, ep.queue.popleft())
            finally:
                self._draining = None
            if ep.queue and not ep.closed and ep.in_flight < ep.concurrency and not ep.ready:
                self._mark_ready(ep)
        for hook in self._drain_hooks:
            try:
                hook()
            except Exception:
                self._log.failure("bus: after-drain hook {name} failed", failure=Failure(),
                                  name=getattr(hook, "__qualname__", repr(hook)))

    def _deliver(self, ep: Endpoint, message: BusMessage) -> None:
        # The hot path: a plain result completes at once and a coroutine becomes a task
        # with a done-callback, without a Deferred per message. Where the outcome goes is
        # taken now: a typed handler may hand the message on again meanwhile.
        addr, reply = message.address, message.reply
        watchdog = self._watchdog
        start = 0.0 if ep.handled & _SAMPLE_MASK else _now()
        try:
            if ep.typed:
                if watchdog is not None:
                    result = watchdog.track(ep.name, ep.handler, message)
                else:
                    result = ep.handler(message)
            elif watchdog is not None:
                result = watchdog.track(ep.name, ep.handler, addr, message.payload)
            else:
                result = ep.handler(addr, message.payload)
        except BaseException as exc:
            result = failure_of(exc)
        # Cheapest check first: Deferred is an ABC (Awaitable), its isinstance is slow
        # (benchmarks/shortcuts.py: a Completion found in 39-70 ns, 162-252 ns after
        # the Deferred check).
        if isinstance(result, Completion):
            result.when_done(self._done, ep, addr, reply, start)
        elif isinstance(result, Deferred):
            result.addBoth(self._done, ep, addr, reply, start)
        elif isinstance(result, asyncio.Future):  # a task the handler started itself
            result.add_done_callback(partial(self._task_done, ep, addr, reply, start))
        elif inspect.iscoroutine(result) and running_loop() is not None:
            task = create_task(result, name=ep.name)
            task.add_done_callback(partial(self._task_done, ep, addr, reply, start))
        elif isinstance(result, Failure) or not inspect.isawaitable(result):
            self._done(result, ep, addr, reply, start)
        else:
            as_deferred(result).addBoth(self._done, ep, addr, reply, start)

    def _task_done(
        self, ep: Endpoint, addr: Address, reply: Reply | None, start: float,
        task: asyncio.Task[Any],
    ) -> None:
        if task.cancelled():
            outcome: object = Failure(CancelledError(f"the handler of {addr} was cancelled"))
        else:
            exc = task.exception()
            outcome = task.result() if exc is None else failure_of(exc)
        self._done(outcome, ep, addr, reply, start)

    def _done(
        self, result: object, ep: Endpoint, addr: Address, reply: Reply | None, start: float
    ) -> None:
        ep.in_flight -= 1
        ep.handled += 1
        if start:
            ep.timed += 1
            ep.busy += _now() - start
        if isinstance(result, Failure):
            ep.failed += 1
            self._log.failure(
                "handler {handler} failed on a message to {address}",
                failure=result,
                level=LogLevel.error,
                handler=ep.name,
                address=str(addr),
            )
        if reply is not None:
            tell(reply, result)
        if (
            ep.queue
            and not ep.closed
            and not ep.ready
            and ep is not self._draining
            and ep.in_flight < ep.concurrency
        ):
            self._mark_ready(ep)

    def _unregister(self, ep: Endpoint) -> None:
        if self._endpoints.get(ep.endpoint) is not ep:
            return
        del self._endpoints[ep.endpoint]
        ep.closed = True
        self._retired.setdefault(ep.kind, KindStats()).add_counters(ep.counters())
        while ep.queue:
            message = ep.queue.popleft()
            tell(message.reply, Failure(DestinationGone(str(message.address))))

    # -- figures ---------------------------------------------------------------------

    def stats(self) -> dict[str, KindStats]:
        """Figures by endpoint kind, for metrics and status (reactor thread; one pass over
        the endpoints). A kind seen once stays, with zero endpoints, after its last left."""
        self._check_thread("stats")
        out = {kind: KindStats() for kind in (*self._retired, *self._unknown)}
        for kind, retired in self._retired.items():
            out[kind].add_counters(retired)
        for kind, count in self._unknown.items():
            out[kind].unknown_destination = count
        for ep in self._endpoints.values():  # (thousands of devices: no object per one)
            kind_stats = out.get(ep.kind)
            if kind_stats is None:
                kind_stats = out[ep.kind] = KindStats()
            kind_stats.endpoints += 1
            kind_stats.queued += len(ep.queue)
            kind_stats.in_flight += ep.in_flight
            kind_stats.handled += ep.handled
            kind_stats.failed += ep.failed
            kind_stats.timed += ep.timed
            kind_stats.handler_seconds += ep.busy
            kind_stats.queue_full += ep.full
        return out
