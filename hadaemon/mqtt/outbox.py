"""Publishes waiting to be sent or acknowledged: plain data, no I/O.

QoS 1 publishes made while disconnected wait here (bounded); those sent but not yet
acknowledged when the connection drops go back to the front, in their original order,
so none is lost (MQTT's at-least-once: a duplicate is possible, a loss is not).
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

from twisted.internet.defer import Deferred


class PublishError(Exception):
    """Base of the reasons a publish did not happen."""


class NotConnected(PublishError):
    """A QoS 0 publish while disconnected (QoS 0 is never queued: it would arrive stale)."""


class OutboxFull(PublishError):
    """The queue of QoS 1 publishes waiting for a connection is full (``queue_limit``)."""


class ConnectionStopped(PublishError):
    """The connection was stopped before the publish could be delivered."""


class ConnectionLost(PublishError):
    """A QoS 0 publish was still unwritten when the connection dropped."""


@dataclass
class Outgoing:
    """One publish and the Deferred its caller holds."""

    seq: int
    topic: str
    payload: bytes
    qos: int
    retain: bool
    done: Deferred[None] = field(default_factory=Deferred)


class Outbox:
    """Queued (not yet handed to the client) and in-flight (handed over) publishes."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._seq = itertools.count()
        self.queued: deque[Outgoing] = deque()
        self.inflight: dict[int, Outgoing] = {}

    def __len__(self) -> int:
        return len(self.queued) + len(self.inflight)

    def make(self, topic: str, payload: bytes, qos: int, retain: bool) -> Outgoing:
        return Outgoing(next(self._seq), topic, payload, qos, retain)

    def enqueue(self, item: Outgoing) -> None:
        """Queue for later; raises OutboxFull when ``limit`` QoS 1 publishes wait."""
        if len(self.queued) >= self.limit:
            raise OutboxFull(
                f"{len(self.queued)} publishes already wait for the broker connection "
                f"(queue_limit {self.limit}); {item.topic!r} not queued"
            )
        self.queued.append(item)

    def take_queued(self) -> Iterator[Outgoing]:
        """Pop queued items in order (the caller hands each to the client or puts it back)."""
        while self.queued:
            yield self.queued.popleft()

    def push_front(self, item: Outgoing) -> None:
        self.queued.appendleft(item)

    def sent(self, mid: int, item: Outgoing) -> None:
        self.inflight[mid] = item

    def acknowledged(self, mid: int) -> Outgoing | None:
        return self.inflight.pop(mid, None)

    def connection_down(self) -> list[Outgoing]:
        """Requeue unacknowledged QoS 1 publishes (front, in order); return lost QoS 0 ones."""
        items = sorted(self.inflight.values(), key=lambda o: o.seq)
        self.inflight.clear()
        lost = [o for o in items if o.qos == 0]
        for item in reversed([o for o in items if o.qos > 0]):
            self.queued.appendleft(item)
        return lost

    def drain_all(self) -> list[Outgoing]:
        """Everything still waiting, queued and in flight (for a final failure)."""
        items = sorted([*self.queued, *self.inflight.values()], key=lambda o: o.seq)
        self.queued.clear()
        self.inflight.clear()
        return items
