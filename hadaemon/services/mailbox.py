"""A service's mailbox: its bus endpoint ``service:<id>``, bounded, with room waiters.

The bus's bounded queue of the endpoint *is* the mailbox: ``mailbox_size`` messages wait
there, up to ``concurrency`` handlers run at once (started in arrival order). A sender
that finds it full may wait for room: the endpoint's handler is called each time the bus
takes a message out of the queue, so that is when one waiting sender is woken.

Reactor thread only.
"""

from __future__ import annotations

import asyncio
from collections import deque
from enum import StrEnum

from hadaemon.bus import SERVICE, Address, Bus, BusMessage, Registration


class ServiceState(StrEnum):
    """Where a service is in its life; messages wait only while it is ``starting``."""

    DISABLED = "disabled"  # configured with enabled = false: never started nor stopped
    STARTING = "starting"  # Start not called yet, or waiting to be restarted
    RUNNING = "running"  # Start was called (it may still run, or have returned)
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"  # Start raised and the restart policy is "never"


ACCEPTING = frozenset({ServiceState.STARTING, ServiceState.RUNNING})


class Mailbox:
    """The endpoint side shared by user services and the built-ins."""

    state: ServiceState = ServiceState.RUNNING

    def __init__(
        self,
        service_id: str,
        bus: Bus,
        loop: asyncio.AbstractEventLoop,
        *,
        mailbox_size: int,
        concurrency: int,
    ) -> None:
        self.id = service_id
        self.endpoint = f"service:{service_id}"
        self.sender = Address(SERVICE, service_id)  # its messages' sender, made once
        self.mailbox_size = mailbox_size
        self.concurrency = concurrency
        self._bus = bus
        self._loop = loop
        self._addresses: dict[str, Address] = {}
        # Actions refusal() let through (it only depends on the action: cached for good).
        self._accepted: dict[str, Address] = {}
        self._room_waiters: deque[asyncio.Future[bool]] = deque()
        self.registration: Registration | None = None

    # -- the endpoint ------------------------------------------------------------------

    def register(self) -> None:
        self.registration = self._bus.register(
            self.endpoint, self.receive, queue_size=self.mailbox_size,
            concurrency=self.concurrency, name=f"service {self.id}", typed=True,
        )

    def unregister(self) -> None:
        """Remove the endpoint: messages still waiting fail with ``DestinationGone``."""
        if self.registration is not None:
            self.registration.unregister()
            self.registration = None
        while self._room_waiters:
            waiter = self._room_waiters.popleft()
            if not waiter.done():
                waiter.set_result(False)

    def address(self, action: str) -> Address:
        """``service:<id>/<action>``, parsed once."""
        address = self._addresses.get(action)
        if address is None:
            address = Address("service", self.id, action)
            if len(self._addresses) < 1024:
                self._addresses[action] = address
        return address

    def receive(self, message: BusMessage) -> object:
        """The endpoint's (typed) handler: the bus took ``message`` out of the queue; a
        :class:`QueueMessage` from a service, any other from another world.

        Implementations first call :meth:`made_room` (one waiting sender may go on).
        """
        raise NotImplementedError

    def made_room(self) -> None:
        if self._room_waiters:
            self._wake_one()

    # -- what senders ask --------------------------------------------------------------

    def refusal(self, action: str) -> str | None:
        """Why ``action`` cannot be sent here by another service, or None."""
        raise NotImplementedError

    def accept(self, action: str) -> Address | str:
        """Where to send ``action`` now, or why another service may not send it."""
        state = self.state
        if state is ServiceState.RUNNING or state is ServiceState.STARTING:
            address = self._accepted.get(action)  # every message: one lookup
            if address is not None:
                return address
        problem = self.refusal(action)
        if problem is not None:
            return problem
        state = self.state
        if state is ServiceState.RUNNING or state is ServiceState.STARTING:
            address = self.address(action)
            if len(self._accepted) < 1024:
                self._accepted[action] = address
            return address
        return f"service {self.id} is {ServiceState(state)}; {action!r} not delivered"

    def in_broadcast(self, action: str) -> bool:
        """Whether a ``"*"`` broadcast of ``action`` reaches this service."""
        return self.state in ACCEPTING and self.refusal(action) is None

    async def wait_for_room(self, timeout: float) -> bool:
        """Wait until a message left the full mailbox; False after ``timeout`` or if gone."""
        if self.registration is None:
            return False
        waiter: asyncio.Future[bool] = self._loop.create_future()
        self._room_waiters.append(waiter)
        timer = self._loop.call_later(timeout, _expire, waiter)
        try:
            return await waiter
        finally:
            timer.cancel()
            if not waiter.done():
                waiter.cancel()

    def _wake_one(self) -> None:
        while self._room_waiters:
            waiter = self._room_waiters.popleft()
            if not waiter.done():
                waiter.set_result(True)
                return


def _expire(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(False)


__all__ = ["ACCEPTING", "Mailbox", "ServiceState"]
