"""``SubmitAction`` and friends: from a queue message to the bus.

A destination is

- a service id (``"readgpio_py"``, any case; the built-ins ``logger``, ``orchestrator``,
  ``com``): the message goes to ``service:<id>/<action>`` on the bus as a
  :class:`QueueMessage`;
- ``"*"``: every service whose action ``action`` is accepted (the sender included);
- a bus address, recognised by its ``":"``: ``"node:n1"`` with action ``"0"`` goes to
  ``node:n1/0``, ``"device:12"`` with action ``""`` (or a channel, ``"1"``) goes to
  ``device:12`` (or ``device:12/1``). The payload itself (``message``) is sent, e.g. a
  Node-BLUE message dict to a node, a dict of values to a device.

Everything that keeps a message from arriving (unknown destination, missing or refused
action, a stopped service, a full mailbox, the destination's own error for a bus address)
is reported back to the sender as a warning through the ``logger`` service, and logged.
A handler of a service that raises is the receiver's failure: the receiver reports it.

Reactor thread only.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from hadaemon.bus import Address, Bus, BusError, InvalidAddress, QueueFull
from hadaemon.services.errors import Undeliverable
from hadaemon.services.message import QueueMessage
from hadaemon.services.reporting import Reporter

if TYPE_CHECKING:
    from hadaemon.services.mailbox import Mailbox
    from hadaemon.services.pip import PipInstaller

LOGGER = "logger"
_POLL_FIRST, _POLL_MAX = 0.001, 0.05  # waiting for room at a bus address: poll delays


class Router:
    """Routes queue messages for the services of one plugin (see the module docstring)."""

    def __init__(
        self,
        bus: Bus,
        targets: Mapping[str, Mailbox],
        loop: asyncio.AbstractEventLoop,
        reporter: Reporter,
        *,
        overflow: str = "wait",
        overflow_timeout: float = 10.0,
    ) -> None:
        self._bus = bus
        self._targets = targets
        self._loop = loop
        self._reporter = reporter
        self.overflow = overflow
        self.overflow_timeout = overflow_timeout
        # Per foreign endpoint that refused a message: the sends waiting for room there,
        # in order (each a future done once it went).
        self._lines: dict[str, deque[asyncio.Future[None]]] = {}

    def route(self, qm: QueueMessage, *, wait: bool = True) -> Awaitable[None] | None:
        """Send ``qm``; returns something to await only when waiting for room.

        ``wait=False``: a full mailbox drops the message (a warning), whatever the policy.
        """
        destination = qm.destination
        target = self._targets.get(destination) if type(destination) is str else None
        if target is None:
            if destination == "*":
                return self._broadcast(qm, wait)
            if not isinstance(destination, str) or not destination:
                self.warn_sender(qm.source, f"invalid destination {destination!r}")
                return None
            if ":" in destination:
                return self._to_address(qm, wait)
            target = self._targets.get(destination.lower())
            if target is None:
                known = ", ".join(sorted(self._targets))
                self.warn_sender(
                    qm.source, f"no service {destination!r} to send {qm.action!r} to "
                    f"(services: {known})",
                )
                return None
            qm = QueueMessage(qm.source, target.id, qm.action, *qm.message)
        address = target.accept(qm.action)
        if type(address) is not Address:
            self.warn_sender(qm.source, str(address))
            return None
        return self._send(target, address, qm, wait)

    # -- the three kinds of destinations ---------------------------------------------------

    def _send(
        self, target: Mailbox, address: Address, qm: QueueMessage, wait: bool
    ) -> Awaitable[None] | None:
        # bus.deliver, not send: no Deferred per message on this hot path
        # (benchmarks/shortcuts.py: ~1.6 us a message saved, 3.4-8.1 against 5.0-10.8 us).
        try:
            self._bus.deliver(address, qm, partial(self._outcome, qm.source, address))
        except QueueFull:
            return self._overflow(qm, address, target.wait_for_room, wait)
        except BusError as exc:
            self.warn_sender(qm.source, f"{address} not delivered: {exc}")
        return None

    def _outcome(self, source: str, address: Address, result: object) -> None:
        if isinstance(result, Failure):
            self._service_failed(result, source, address)

    def _broadcast(self, qm: QueueMessage, wait: bool) -> Awaitable[None] | None:
        recipients = [t for t in self._targets.values() if t.in_broadcast(qm.action)]
        if not recipients:
            self.warn_sender(qm.source, f"no running service has an action {qm.action!r} "
                             "(broadcast \"*\")")
            return None
        waits = []
        for target in recipients:
            copy = QueueMessage(qm.source, target.id, qm.action, *qm.message)
            waiting = self._send(target, target.address(qm.action), copy, wait)
            if waiting is not None:
                waits.append(waiting)
        return _all(waits) if waits else None

    def _to_address(self, qm: QueueMessage, wait: bool) -> Awaitable[None] | None:
        text = f"{qm.destination}/{qm.action}" if qm.action else qm.destination
        try:
            address = Address.parse(text)
        except InvalidAddress as exc:
            self.warn_sender(qm.source, f"invalid destination {qm.destination!r}: {exc}")
            return None
        if address.kind == "service":
            # A service reached by its address obeys the same rules as by its id.
            return self.route(
                QueueMessage(qm.source, address.id, address.path, *qm.message), wait=wait
            )
        payload = qm.message[0] if len(qm.message) == 1 else list(qm.message)
        return self._send_foreign(address, payload, qm.source, wait)

    def _send_foreign(
        self, address: Address, payload: Any, source: str, wait: bool
    ) -> Awaitable[None] | None:
        line = self._lines.get(address.endpoint)
        if line is not None and wait:  # others wait for room there: behind them, in order
            return self._wait_in_line(line, address, payload, source)
        d = self._bus.send(address, payload)
        if d.called:
            failure = _failure_of(d)
            if failure is None:
                return None
            if failure.check(QueueFull):
                return self._overflow_foreign(address, payload, source, wait)
            self.warn_sender(source, f"{address} not delivered: {failure.getErrorMessage()}")
            return None
        d.addErrback(self._foreign_failed, source, address)
        return None

    # -- failures and full mailboxes -------------------------------------------------------

    def _service_failed(self, failure: Failure, source: str, address: Address) -> None:
        # A handler's own exception was reported by the receiving service already.
        if failure.check(Undeliverable, BusError):
            self.warn_sender(source, f"{address} not delivered: {failure.getErrorMessage()}")

    def _foreign_failed(self, failure: Failure, source: str, address: Address) -> None:
        self.warn_sender(source, f"{address} failed: {failure.getErrorMessage()}")

    def _overflow(
        self, qm: QueueMessage, address: Address,
        wait_for_room: Callable[[float], Awaitable[bool]], wait: bool,
    ) -> Awaitable[None] | None:
        if not wait or self.overflow == "drop" or self.overflow_timeout <= 0:
            self.warn_sender(qm.source, f"mailbox of {address.endpoint} is full; message "
                             f"{address.path!r} dropped")
            return None
        return self._wait_and_send(qm, address, wait_for_room)

    async def _wait_and_send(
        self, qm: QueueMessage, address: Address,
        wait_for_room: Callable[[float], Awaitable[bool]],
    ) -> None:
        deadline = self._loop.time() + self.overflow_timeout
        while True:
            remaining = deadline - self._loop.time()
            if remaining <= 0 or not await wait_for_room(remaining):
                self.warn_sender(
                    qm.source, f"mailbox of {address.endpoint} stayed full for "
                    f"{self.overflow_timeout}s; message {address.path!r} dropped",
                )
                return
            d = self._bus.send(address, qm)
            failure = _failure_of(d) if d.called else None
            if failure is not None and failure.check(QueueFull):
                continue  # another sender took the room first
            if failure is not None:
                self.warn_sender(qm.source, f"{address} not delivered: "
                                 f"{failure.getErrorMessage()}")
            elif not d.called:
                d.addErrback(self._service_failed, qm.source, address)
            return

    def _overflow_foreign(
        self, address: Address, payload: Any, source: str, wait: bool
    ) -> Awaitable[None] | None:
        if not wait or self.overflow == "drop" or self.overflow_timeout <= 0:
            self.warn_sender(source, f"queue of {address.endpoint} is full; message dropped")
            return None
        # The first to wait opens the endpoint's line: later sends to it (from any
        # service) queue behind, so a handler that finds room first cannot overtake one
        # that waits (order, as a node's own queue keeps it).
        line: deque[asyncio.Future[None]] = deque()
        self._lines[address.endpoint] = line
        return self._wait_in_line(line, address, payload, source)

    async def _wait_in_line(
        self, line: deque[asyncio.Future[None]], address: Address, payload: Any, source: str
    ) -> None:
        """Send once every earlier message in the endpoint's line went (or was dropped)."""
        previous = line[-1] if line else None
        turn: asyncio.Future[None] = self._loop.create_future()
        line.append(turn)
        try:
            if previous is not None:
                await asyncio.shield(previous)
            # The first waits before its retry (it was just refused); the others try
            # at once: the one before them just went.
            await self._poll_and_send(address, payload, source, at_once=previous is not None)
        finally:
            turn.set_result(None)
            line.remove(turn)
            if not line and self._lines.get(address.endpoint) is line:
                del self._lines[address.endpoint]

    async def _poll_and_send(
        self, address: Address, payload: Any, source: str, at_once: bool = False
    ) -> None:
        # Another plugin's endpoint tells nobody when it has room: poll, briefly.
        deadline = self._loop.time() + self.overflow_timeout
        delay = _POLL_FIRST
        while self._loop.time() < deadline:
            if not at_once:
                await asyncio.sleep(min(delay, max(deadline - self._loop.time(), 0)))
                delay = min(delay * 2, _POLL_MAX)
            at_once = False
            d = self._bus.send(address, payload)
            failure = _failure_of(d) if d.called else None
            if failure is not None and failure.check(QueueFull):
                continue
            if failure is not None:
                self.warn_sender(source, f"{address} not delivered: {failure.getErrorMessage()}")
            elif not d.called:
                d.addErrback(self._foreign_failed, source, address)
            return
        self.warn_sender(source, f"queue of {address.endpoint} stayed full for "
                         f"{self.overflow_timeout}s; message dropped")

    def warn_sender(self, source: str, text: str) -> None:
        """Report a message that did not arrive to its sender, through its ``logger``."""
        shown, held = self._reporter.throttled((source, text))
        if not shown:
            return
        if held:
            text = f"{text} (and {held} more like it in the last second)"
        logger = self._targets.get(LOGGER)
        if logger is not None and logger.registration is not None:
            d = self._bus.send(logger.address("_warning"), QueueMessage(
                source, LOGGER, "_warning", text))
            if not d.called:
                d.addErrback(lambda _: None)
                return
            _failure_of(d)
        # The logger cannot take it (full, or gone at shutdown): log it directly.
        self._reporter.service_log(source).warn("{text}", text=text, service=source)


class ServiceQueue:
    """The ``queue`` every service's constructor gets: its way into the orchestrator.

    ``await queue.put(QueueMessage(source, destination, action, payload))`` routes like
    ``SubmitAction``; nothing reads from it (messages arrive as method calls).
    """

    def __init__(
        self,
        router: Router,
        settings: Callable[[], dict[str, Any]],
        pip: PipInstaller,
    ) -> None:
        self._router = router
        self._settings = settings
        self._pip = pip
        self.route = router.route  # type: ignore[method-assign]  # one call less per message

    def route(self, qm: QueueMessage) -> Awaitable[None] | None:
        """Send ``qm`` (see :meth:`Router.route`)."""
        return self._router.route(qm)

    async def put(self, item: QueueMessage) -> None:
        if not isinstance(item, QueueMessage):
            raise TypeError(f"put() takes a QueueMessage, got {type(item).__name__}")
        pending = self._router.route(item)
        if pending is not None:
            await pending

    def put_nowait(self, item: QueueMessage) -> None:
        """Route ``item`` without waiting: if the mailbox is full it is dropped (a warning)."""
        if not isinstance(item, QueueMessage):
            raise TypeError(f"put_nowait() takes a QueueMessage, got {type(item).__name__}")
        self._router.route(item, wait=False)

    def get_nowait(self) -> QueueMessage:
        raise RuntimeError(
            "hadaemon delivers messages as calls of your service's methods; its queue "
            "cannot be read"
        )

    async def get(self) -> QueueMessage:
        return self.get_nowait()

    def settings(self) -> dict[str, Any]:
        return self._settings()

    def add_pip_package(self, package: str, module: str, name: str) -> Any:
        return self._pip.add_pip_package(package, module, name)


def _failure_of(d: Deferred[Any]) -> Failure | None:
    """The Failure of an already-fired Deferred (consumed), or None if it succeeded."""
    box: list[object] = []
    d.addBoth(box.append)
    result = box[0] if box else None
    return result if isinstance(result, Failure) else None


async def _all(waits: list[Awaitable[None]]) -> None:
    for waiting in waits:
        await waiting


__all__ = ["Router", "ServiceQueue"]
