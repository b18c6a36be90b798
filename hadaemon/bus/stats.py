"""The bus's figures for metrics and status: plain counters summed by endpoint kind."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class KindStats:
    """The bus's figures for one endpoint kind (``node``, ``service``, ``device``...).

    Counters include endpoints unregistered since. ``handler_seconds`` is the time from
    a message's delivery to its handler until its outcome was known (an async handler's
    awaits included) summed over ``timed`` messages, a sample of about one in 16 of the
    ``handled`` ones: their mean is the handlers' mean time.
    """

    endpoints: int = 0
    queued: int = 0
    in_flight: int = 0
    handled: int = 0
    failed: int = 0
    timed: int = 0
    handler_seconds: float = 0.0
    queue_full: int = 0
    unknown_destination: int = 0

    def add_counters(self, other: KindStats) -> None:
        self.handled += other.handled
        self.failed += other.failed
        self.timed += other.timed
        self.handler_seconds += other.handler_seconds
        self.queue_full += other.queue_full
