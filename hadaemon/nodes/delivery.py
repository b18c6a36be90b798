"""Getting messages to node inputs: a queue and a window per node, and flow control.

Each node has one :class:`NodeInputs`: messages wait in its queue and go out as
``nodeInput`` calls, at most the link's window in flight. The node's client runs them one
at a time, in order, on its input thread, and answers each when its callback returned;
every answer lets the next message go. So a node sees its inputs in order and never
concurrently, without a round trip per message: the window is the flow control between
the daemon and the node.

Between nodes, the queue is the flow control. Once ``queue_size`` messages wait for a
node, the answer to a sender's ``nodeOutput`` is held until half of them went (its
client keeps a window of unanswered ``nodeOutput`` calls, so a fast sender slows down
to the pace of its slowest destination instead of losing messages). A node whose own
answers are held soon stops taking inputs (its callback waits in ``nodeOutput``), so
its queue fills and it holds its own senders in turn: the hold travels up any chain to
the producer. Holding never deadlocks:

- a sender is never held for itself (a node wired to its own input);
- the holds form a wait-for graph (``waits_for``: sender -> destination); a sender is
  never held for a destination that waits, directly or through others, for the sender,
  so the graph never has a cycle (A -> B -> A) and the node at its end, which waits for
  nobody, always makes progress. Around a loop of wires one wire is therefore not held
  at a time; what it sends is bounded by what the loop's held nodes let in;
- a node that answers nothing for ``stall_timeout`` seconds while senders wait for it,
  and is not itself held, is *stalled*: they are released and no longer held for it (a
  held node waits for a slow destination; the check falls to that one).

When a sender cannot be held, the queue may grow up to four times ``queue_size`` plus
what its senders may still have on the way (senders that cannot be held, messages sent
on credit before the sender was held); beyond it messages are dropped, counted and
reported, never silently. Bus senders (other worlds) get ``QueueFull`` at
``queue_size``. Messages wait while a node (re)starts, so a quick restart loses nothing
but the inputs that were in flight.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime

from hadaemon.nodes.link import InputDone, NodeLink, OutgoingMessage

HARD_LIMIT_FACTOR = 4
"""The queue never holds more than this times ``queue_size`` messages."""


class NodeInputs:
    """One node's input queue, window, and the senders waiting for room (reactor thread)."""

    __slots__ = (
        "_drained",
        "_pumping",
        "_stall_check",
        "bus_lines",
        "capacity",
        "clock",
        "delivered",
        "dropped",
        "failed",
        "in_flight",
        "last_progress",
        "limit",
        "link",
        "lost",
        "node_id",
        "on_stall",
        "queue",
        "resume_at",
        "stall_timeout",
        "stalled",
        "waiters",
        "waiting_senders",
        "waits_for",
    )

    def __init__(
        self,
        node_id: str,
        capacity: int,
        clock: IReactorTime,
        *,
        stall_timeout: float = 10.0,
        on_stall: Callable[[NodeInputs, int], None] | None = None,
        in_transit: int = 0,
    ) -> None:
        self.node_id = node_id
        self.capacity = capacity
        # Room for what held senders may still have on the way (their credits).
        self.limit = capacity * HARD_LIMIT_FACTOR + in_transit
        # Senders held at capacity go on once half of it is left: not one by one.
        self.resume_at = capacity // 2
        self.clock = clock
        self.stall_timeout = stall_timeout
        self.on_stall = on_stall
        self.queue: deque[tuple[int, OutgoingMessage, InputDone | None]] = deque()
        self.in_flight = 0
        self.link: NodeLink | None = None
        self.waiters: list[Callable[[], None]] = []  # senders held until there is room
        # The wait-for graph's edges from this node: every destination that holds some
        # of this node's nodeOutput answers, with how many holds wait for it.
        self.waits_for: dict[NodeInputs, int] = {}
        self.bus_lines = 0  # its messages waiting for room at bus endpoints: held too
        # Per destination that holds this node's answers: the pending hold, shared by
        # every answer held for it alone (see Router).
        self.waiting_senders: dict[NodeInputs, Deferred[None]] = {}
        self.stalled = False
        self._pumping = False
        self.last_progress = clock.seconds()
        self._stall_check: IDelayedCall | None = None
        self.delivered = 0  # answered by the node
        self.failed = 0  # answered with an error (its callback raised)
        self.dropped = 0  # the queue was at its limit
        self.lost = 0  # in flight when the connection went away
        self._drained: list[Callable[[], None]] = []  # waiting for in_flight to reach 0

    # -- queueing ------------------------------------------------------------------------

    def offer(self, port: int, message: OutgoingMessage, done: InputDone | None = None) -> bool:
        """Queue a message for input ``port``; False (and counted) at the hard limit."""
        queue = self.queue
        link = self.link
        if not queue and link is not None and self.in_flight < link.window \
                and not self._pumping:
            # Nothing waits and the window has room: straight to the link (what _pump
            # would do, without the queue round trip). benchmarks/shortcuts.py: 346-781
            # against 453-987 ns, ~110 ns (3%) of the daemon's CPU per message.
            self.in_flight += 1
            self._pumping = True  # a send that fails at once reports back: no recursion
            try:
                link.send_input(port, message, done, self)
            finally:
                self._pumping = False
            if queue:  # offered during the send: they follow now, as _pump's loop would
                self._pump()
            elif self.waiters:
                self._release()
            return True
        if len(queue) >= self.limit:
            self.dropped += 1
            return False
        queue.append((port, message, done))
        if link is not None and self.in_flight < link.window:
            self._pump()
        return True

    @property
    def full(self) -> bool:
        """``queue_size`` messages are waiting: senders should wait for room."""
        return len(self.queue) >= self.capacity

    def can_hold_for(self, sender: NodeInputs) -> bool:
        """Whether ``sender`` may wait for room here without risking a deadlock: not for
        itself, not while this node is stalled, and not if this node waits, directly or
        through others, for ``sender`` (the wait would close a cycle)."""
        if sender is self or self.stalled:
            return False
        if sender in self.waits_for:
            return False
        return not self.waits_for or not self._reaches(sender)

    def _reaches(self, target: NodeInputs) -> bool:
        """Whether ``target`` is among the nodes this one waits for, transitively."""
        seen = {self}
        stack = list(self.waits_for)
        while stack:
            node = stack.pop()
            if node is target:
                return True
            if node not in seen:
                seen.add(node)
                stack.extend(node.waits_for)
        return False

    def wait_for_room(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the queue is down to half ``queue_size`` (or the node
        stalls)."""
        self.waiters.append(callback)
        if self._stall_check is None:
            self._stall_check = self.clock.callLater(self.stall_timeout, self._check_stall)

    def open(self, link: NodeLink) -> None:
        """The node is connected and answered ping: start sending."""
        self.link = link
        self._pump()

    def close(self) -> None:
        """The node's connection is gone: keep the queue for the next one."""
        self.link = None

    def clear(self, reason: BaseException) -> None:
        """Fail and forget everything queued, release the waiting senders (stop)."""
        queued, self.queue = self.queue, deque()
        for _port, _message, done in queued:
            if done is not None:
                done(reason, None)
        self._release()

    # -- sending -------------------------------------------------------------------------

    def _pump(self) -> None:
        link = self.link
        if link is None or self._pumping:
            return
        queue = self.queue
        window = link.window
        send = link.send_input
        self._pumping = True  # a send that fails at once reports back: no recursion
        try:
            while queue and self.in_flight < window:
                port, message, done = queue.popleft()
                self.in_flight += 1
                send(port, message, done, self)
                if self.link is not link:
                    break  # a send may fail and close the link
        finally:
            self._pumping = False
        if self.waiters and len(queue) <= self.resume_at:
            self._release()

    def inputs_done(self, handled: int, failed: int, lost: int) -> None:
        """The link's report (:class:`~hadaemon.nodes.link.InputSink`): inputs ended;
        the window has room for as many more."""
        self.in_flight -= handled + failed + lost
        if handled or failed:
            self.delivered += handled
            self.failed += failed
            self.last_progress = self.clock.seconds()
            self.stalled = False
        self.lost += lost
        if self.queue and self.link is not None:
            self._pump()
        if self._drained and self.in_flight <= 0:
            self._fire_drained()

    def when_drained(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once no input is in flight (at once if none is). With the
        link closed first (:meth:`close`), new inputs wait in the queue meanwhile: a
        node about to be restarted by a reload answers what it has before it goes."""
        self._drained.append(callback)
        if self.in_flight <= 0:
            self._fire_drained()

    def _fire_drained(self) -> None:
        callbacks, self._drained = self._drained, []
        for callback in callbacks:
            callback()

    # -- waiting senders ---------------------------------------------------------------

    def _release(self) -> None:
        waiters, self.waiters = self.waiters, []
        if self._stall_check is not None and self._stall_check.active():
            self._stall_check.cancel()
        self._stall_check = None
        for callback in waiters:
            callback()

    def _check_stall(self) -> None:
        self._stall_check = None
        if not self.waiters:
            return
        idle = self.clock.seconds() - self.last_progress
        if self.waits_for or self.bus_lines:
            # Held itself: it waits for a destination, it is not stuck. If that one is,
            # its own check releases this node, which then goes on (or is found stuck).
            idle = 0.0
        if idle < self.stall_timeout:
            self._stall_check = self.clock.callLater(
                self.stall_timeout - idle, self._check_stall
            )
            return
        self.stalled = True
        count = len(self.waiters)
        self._release()
        if self.on_stall is not None:
            self.on_stall(self, count)


class Throttle:
    """Decides which of many similar reports to log: the first, then one per period.

    ``hit(key)`` returns None to stay quiet, or how many were suppressed since the last
    report (0 for the first), so a flood becomes "... (and 812 more)" lines.
    """

    def __init__(self, clock: IReactorTime, period: float = 10.0) -> None:
        self._clock = clock
        self.period = period
        self._state: dict[Any, tuple[float, int]] = {}

    def hit(self, key: Any) -> int | None:
        now = self._clock.seconds()
        last = self._state.get(key)
        if last is None or now - last[0] >= self.period:
            self._state[key] = (now, 0)
            if len(self._state) > 10000:
                self._state = {key: (now, 0)}
            return 0 if last is None else last[1]
        self._state[key] = (last[0], last[1] + 1)
        return None


def suppressed(count: int) -> str:
    """The suffix for a throttled report."""
    return f" (and {count} more like it)" if count else ""


Reporter = Callable[[str, str, int], None]
"""``report(node id, message, level)``: log it and publish it as the node's error."""
