"""``SubmitAction`` and friends: from a queue message to the bus.

A destination is

- a service id (``"readgpio_py"``, any case; the built-ins ``logger``, ``orchestrator``,
  ``com``): the message goes to ``service:<id>/<action>`` on the bus as a
  :class:`QueueMessage`;
- ``"<id>@<host>"``, or an id no service here has while the bus has a gateway (a
  federated site, docs/federation.md): ``service:<id>@<host>/<action>`` (or
  ``service:<id>/<action>``) on the bus, which forwards it to the service on that host;
- ``"*"``: every service whose action ``action`` is accepted (the sender included);
- a bus address, recognised by its ``":"``: ``"node:n1"`` with action ``"0"`` goes to
  ``node:n1/0``, ``"device:12"`` with action ``""`` (or a channel, ``"1"``) goes to
  ``device:12`` (or ``device:12/1``). The payload itself (``message``) is sent, e.g. a
  Node-BLUE message dict to a node, a dict of values to a device (several values as
  a list).

The :class:`QueueMessage` is the bus message itself (a :class:`hadaemon.bus.BusMessage`):
the router sets its address (resolved once per action, or parsed once per bus address
string and action), its sender (the sending service's address) and its reply (where a
failure to deliver is reported), and hands it on as it is: nothing is wrapped, unwrapped
or copied, except for ``"*"``, where each recipient after the first gets a message and a
payload of its own (:func:`hadaemon.values.copy`). A message already sent once is copied
before it goes again: the bus may still hold it.

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

from twisted.python.failure import Failure

from hadaemon.bus import (
    HOST_SEPARATOR,
    SERVICE,
    Address,
    Bus,
    BusError,
    InvalidAddress,
    QueueFull,
)
from hadaemon.services.errors import Undeliverable
from hadaemon.services.message import QueueMessage
from hadaemon.services.reporting import Reporter
from hadaemon.values import copy

if TYPE_CHECKING:
    from hadaemon.services.mailbox import Mailbox
    from hadaemon.services.pip import PipInstaller

LOGGER = "logger"
Outcome = Callable[[str, Address, object], None]  # (sender, address, result or Failure)
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
        # (destination, action) -> its bus address, or why it is none: parsed once.
        self._foreign: dict[tuple[str, str], Address | str] = {}

    def route(self, qm: QueueMessage, *, wait: bool = True) -> Awaitable[None] | None:
        """Send ``qm``; returns something to await only when waiting for room.

        ``wait=False``: a full mailbox drops the message (a warning), whatever the policy.
        The message itself goes on the bus; one that went before (the same object sent
        again) is copied first, as the bus may still hold it.
        """
        if qm.reply is not None:
            qm = _again(qm)
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
                if HOST_SEPARATOR in destination or self._bus.gateway is not None:
                    return self._to_remote(qm, destination, wait)
                known = ", ".join(sorted(self._targets))
                self.warn_sender(
                    qm.source, f"no service {destination!r} to send {qm.action!r} to "
                    f"(services: {known})",
                )
                return None
            qm.destination = target.id
        address = target.accept(qm.action)
        if type(address) is not Address:
            self.warn_sender(qm.source, str(address))
            return None
        return self._send(target, address, qm, wait)

    # -- the three kinds of destinations ---------------------------------------------------

    def _address(self, qm: QueueMessage, address: Address, outcome: Outcome) -> None:
        """Make ``qm`` the bus message to ``address`` (its sender: the sending service)."""
        qm.address = address
        source = qm.source
        try:
            sender = self._targets.get(source)
        except TypeError:  # a source that is no string (put by hand): no sender
            sender = None
        qm.sender = None if sender is None else sender.sender
        qm.reply = partial(outcome, source, address)

    def _send(
        self, target: Mailbox, address: Address, qm: QueueMessage, wait: bool
    ) -> Awaitable[None] | None:
        self._address(qm, address, self._outcome)
        try:
            self._bus.hand_on(qm)  # no Deferred per message on this hot path
        except QueueFull:
            return self._overflow(qm, target.wait_for_room, wait)
        except BusError as exc:
            self.warn_sender(qm.source, f"{address} not delivered: {exc}")
        return None

    def _outcome(self, source: str, address: Address, result: object) -> None:
        # A handler's own exception was reported by the receiving service already.
        if isinstance(result, Failure) and result.check(Undeliverable, BusError):
            self.warn_sender(source, f"{address} not delivered: {result.getErrorMessage()}")

    def _broadcast(self, qm: QueueMessage, wait: bool) -> Awaitable[None] | None:
        recipients = [t for t in self._targets.values() if t.in_broadcast(qm.action)]
        if not recipients:
            self.warn_sender(qm.source, f"no running service has an action {qm.action!r} "
                             "(broadcast \"*\")")
            return None
        waits = []
        for index, target in enumerate(recipients):
            if index == 0:  # the first takes the message as it is, the others copies
                qm.destination = target.id
                each = qm
            else:
                each = QueueMessage(qm.source, target.id, qm.action, *copy(qm.message))
            waiting = self._send(target, target.address(qm.action), each, wait)
            if waiting is not None:
                waits.append(waiting)
        return _all(waits) if waits else None

    def _to_address(self, qm: QueueMessage, wait: bool) -> Awaitable[None] | None:
        action = qm.action or ""
        if type(action) is not str:
            self.warn_sender(qm.source, f"invalid action {action!r} for {qm.destination!r}")
            return None
        address = self._foreign_address(qm.destination, action)
        if type(address) is not Address:
            self.warn_sender(qm.source, str(address))
            return None
        if address.kind == SERVICE:
            # A service reached by its address obeys the same rules as by its id.
            return self.route(
                QueueMessage(qm.source, address.id, address.path, *qm.message), wait=wait
            )
        if len(qm.message) != 1:
            qm.payload = list(qm.message)
        self._address(qm, address, self._foreign_outcome)
        return self._send_foreign(qm, wait)

    def _to_remote(self, qm: QueueMessage, destination: str, wait: bool
                   ) -> Awaitable[None] | None:
        """A service of another host (``id@host``, or an id only another host has): over
        the bus, whose gateway forwards it; refusals (an offline host) are the sender's
        warnings, as for any bus address."""
        action = qm.action or ""
        ident, sep, host = destination.rpartition(HOST_SEPARATOR)
        try:
            if type(action) is not str:
                raise InvalidAddress(f"invalid action {action!r}")
            address = Address(SERVICE, f"{ident.lower()}{sep}{host}" if sep
                              else destination.lower(), action)
        except InvalidAddress as exc:
            self.warn_sender(qm.source, f"invalid destination {destination!r}: {exc}")
            return None
        self._address(qm, address, self._outcome)
        return self._send_foreign(qm, wait)

    def _foreign_address(self, destination: str, action: str) -> Address | str:
        """``destination`` (``kind:id[/path]``) with ``action`` as (more) path, parsed once."""
        key = (destination, action)
        address = self._foreign.get(key)
        if address is None:
            try:
                base = Address.parse(destination)
                path = f"{base.path}/{action}" if base.path and action else base.path or action
                address = Address(base.kind, base.id, path)
            except InvalidAddress as exc:
                address = f"invalid destination {destination!r}: {exc}"
            if len(self._foreign) < 1024:
                self._foreign[key] = address
        return address

    def _send_foreign(self, qm: QueueMessage, wait: bool) -> Awaitable[None] | None:
        line = self._lines.get(qm.address.endpoint)
        if line is not None and wait:  # others wait for room there: behind them, in order
            return self._wait_in_line(line, qm)
        try:
            self._bus.hand_on(qm)
        except QueueFull:
            return self._overflow_foreign(qm, wait)
        except BusError as exc:
            self.warn_sender(qm.source, f"{qm.address} not delivered: {exc}")
        return None

    def _foreign_outcome(self, source: str, address: Address, result: object) -> None:
        if isinstance(result, Failure):
            self.warn_sender(source, f"{address} failed: {result.getErrorMessage()}")

    # -- full mailboxes ----------------------------------------------------------------------

    def _overflow(
        self, qm: QueueMessage, wait_for_room: Callable[[float], Awaitable[bool]], wait: bool,
    ) -> Awaitable[None] | None:
        if not wait or self.overflow == "drop" or self.overflow_timeout <= 0:
            self.warn_sender(qm.source, f"mailbox of {qm.address.endpoint} is full; message "
                             f"{qm.address.path!r} dropped")
            return None
        return self._wait_and_send(qm, wait_for_room)

    async def _wait_and_send(
        self, qm: QueueMessage, wait_for_room: Callable[[float], Awaitable[bool]],
    ) -> None:
        address = qm.address
        deadline = self._loop.time() + self.overflow_timeout
        while True:
            remaining = deadline - self._loop.time()
            if remaining <= 0 or not await wait_for_room(remaining):
                self.warn_sender(
                    qm.source, f"mailbox of {address.endpoint} stayed full for "
                    f"{self.overflow_timeout}s; message {address.path!r} dropped",
                )
                return
            try:
                self._bus.hand_on(qm)
            except QueueFull:
                continue  # another sender took the room first
            except BusError as exc:
                self.warn_sender(qm.source, f"{address} not delivered: {exc}")
            return

    def _overflow_foreign(self, qm: QueueMessage, wait: bool) -> Awaitable[None] | None:
        endpoint = qm.address.endpoint
        if not wait or self.overflow == "drop" or self.overflow_timeout <= 0:
            self.warn_sender(qm.source, f"queue of {endpoint} is full; message dropped")
            return None
        # The first to wait opens the endpoint's line: later sends to it (from any
        # service) queue behind, so a handler that finds room first cannot overtake one
        # that waits (order, as a node's own queue keeps it).
        line: deque[asyncio.Future[None]] = deque()
        self._lines[endpoint] = line
        return self._wait_in_line(line, qm)

    async def _wait_in_line(self, line: deque[asyncio.Future[None]], qm: QueueMessage) -> None:
        """Send once every earlier message in the endpoint's line went (or was dropped)."""
        previous = line[-1] if line else None
        turn: asyncio.Future[None] = self._loop.create_future()
        line.append(turn)
        try:
            if previous is not None:
                await asyncio.shield(previous)
            # The first waits before its retry (it was just refused); the others try
            # at once: the one before them just went.
            await self._poll_and_send(qm, at_once=previous is not None)
        finally:
            turn.set_result(None)
            line.remove(turn)
            endpoint = qm.address.endpoint
            if not line and self._lines.get(endpoint) is line:
                del self._lines[endpoint]

    async def _poll_and_send(self, qm: QueueMessage, at_once: bool = False) -> None:
        # Another plugin's endpoint tells nobody when it has room: poll, briefly.
        deadline = self._loop.time() + self.overflow_timeout
        delay = _POLL_FIRST
        while self._loop.time() < deadline:
            if not at_once:
                await asyncio.sleep(min(delay, max(deadline - self._loop.time(), 0)))
                delay = min(delay * 2, _POLL_MAX)
            at_once = False
            try:
                self._bus.hand_on(qm)
            except QueueFull:
                continue
            except BusError as exc:
                self.warn_sender(qm.source, f"{qm.address} not delivered: {exc}")
            return
        self.warn_sender(qm.source, f"queue of {qm.address.endpoint} stayed full for "
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
            warning = QueueMessage(source, LOGGER, "_warning", text)
            self._address(warning, logger.address("_warning"), _ignore)
            try:
                self._bus.hand_on(warning)
                return
            except BusError:
                pass
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


def _again(qm: QueueMessage) -> QueueMessage:
    """A message sent once more: a new one (the bus may still hold the first)."""
    return QueueMessage(qm.source, qm.destination, qm.action, *qm.message)


def _ignore(source: str, address: Address, result: object) -> None:
    """The outcome of a warning: the bus logs the logger's own failure."""


async def _all(waits: list[Awaitable[None]]) -> None:
    for waiting in waits:
        await waiting


__all__ = ["Router", "ServiceQueue"]
