"""A node's messages to a bus address that is full: they wait, in order, and hold the node.

A bus endpoint (a service's mailbox, another plugin's queue) refuses a message at once
with ``QueueFull`` and tells nobody when it has room again. So the first refused message
opens a :class:`BusLine` for that sender and endpoint: it and every later message of the
same sender to that endpoint wait in it, in order, and the sender's ``nodeOutput``
answers are held (its credits run out, it waits in ``nodeOutput``) until the line is
empty. The line retries after 1 ms, then ever less often (at most every 50 ms), sending
as many as the endpoint takes each time. Its length is bounded by the sender's credits.

An endpoint that takes nothing for ``stall_timeout`` seconds (say a service that itself
waits for this very node) ends the line: what waits in it is dropped and reported, and
the sender goes on. Reactor thread only.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.failure import Failure

from hadaemon.backoff import Backoff
from hadaemon.bus import Bus, BusMessage, QueueFull
from hadaemon.bus.message import tell

RETRY_FIRST, RETRY_MAX = 0.001, 0.05
"""Seconds before the first retry, and the longest pause between retries (the backoff
starts over whenever the endpoint takes something)."""


class BusLine:
    """One sender's messages waiting for room at one bus endpoint."""

    def __init__(
        self,
        bus: Bus,
        clock: IReactorTime,
        stall_timeout: float,
        on_end: Callable[[BusLine, int], None],
    ) -> None:
        self._bus = bus
        self._clock = clock
        self._stall_timeout = stall_timeout
        self._on_end = on_end  # (line, messages dropped): the line is empty or gave up
        self.waiting: deque[BusMessage] = deque()  # each handed on as it is, in order
        self.held: Deferred[None] = Deferred()  # fires once the line is empty
        self._backoff = Backoff(RETRY_FIRST, RETRY_MAX)
        self._progress = clock.seconds()
        self._retry: IDelayedCall | None = clock.callLater(RETRY_FIRST, self._send)

    def append(self, message: BusMessage) -> None:
        self.waiting.append(message)

    def _send(self) -> None:
        self._retry = None
        waiting = self.waiting
        hand_on = self._bus.hand_on
        now = self._clock.seconds()
        while waiting:
            message = waiting[0]
            try:
                hand_on(message)
            except QueueFull:
                break
            except Exception:  # gone meanwhile: its own failure, reported
                tell(message.reply, Failure())
            waiting.popleft()
            self._progress = now
            self._backoff.reset()
        if not waiting:
            self._end(0)
        elif now - self._progress >= self._stall_timeout:
            dropped = len(waiting)
            waiting.clear()
            self._end(dropped)
        else:
            self._retry = self._clock.callLater(self._backoff.next_delay(), self._send)

    def _end(self, dropped: int) -> None:
        self._on_end(self, dropped)
        self.held.callback(None)

    def cancel(self) -> None:
        """Stop retrying (the daemon stops); the sender is released."""
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        self._retry = None
        self.waiting.clear()
        if not self.held.called:
            self._end(0)
