"""A destination registered on the bus: its handler, bounded queue and counters.

:class:`Endpoint` is the bus's internal record (plain slots: the drain reads and writes
them for every message); :class:`Registration` is what the registering code holds.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from hadaemon.bus.message import BusMessage
from hadaemon.bus.stats import KindStats

if TYPE_CHECKING:
    from hadaemon.bus.bus import Bus


class Endpoint:
    """One registered destination ``kind:id``, internal to the bus."""

    __slots__ = (
        "busy",
        "closed",
        "concurrency",
        "endpoint",
        "failed",
        "full",
        "handled",
        "handler",
        "in_flight",
        "kind",
        "maxsize",
        "name",
        "queue",
        "ready",
        "timed",
        "typed",
    )

    def __init__(
        self, endpoint: str, handler: Callable[..., object], maxsize: int, concurrency: int,
        name: str, typed: bool,
    ) -> None:
        self.endpoint = endpoint
        self.handler = handler
        self.maxsize = maxsize
        self.concurrency = concurrency
        self.name = name
        self.typed = typed
        self.queue: deque[BusMessage] = deque()
        self.in_flight = 0
        self.closed = False
        self.ready = False
        self.kind = endpoint.partition(":")[0]
        self.handled = 0  # messages whose outcome is known
        self.failed = 0
        self.timed = 0  # messages timed (the sample)
        self.busy = 0.0  # seconds from delivery to outcome, summed over the timed ones
        self.full = 0  # messages refused: queue full

    def counters(self) -> KindStats:
        return KindStats(handled=self.handled, failed=self.failed, timed=self.timed,
                         handler_seconds=self.busy, queue_full=self.full)


class Registration:
    """A registered endpoint; ``unregister()`` removes it and fails what is queued."""

    def __init__(self, bus: Bus, endpoint: Endpoint) -> None:
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
