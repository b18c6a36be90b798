"""The threads that run a node's callbacks: a pool of ten, as Homegear's own client has.

Why a pool: a callback may block until something else happens in the node (the seed's
asyncio template blocks every ``eventHandler`` until its main thread starts the event
loop, which it does only after ``startUpComplete``). With one thread per kind, the event
it waits for queues behind it for good. With the pool, a blocked callback holds up
nothing but its own thread.

Why lanes: callbacks of one kind (a *lane*: inputs, events) start in arrival order and
run one at a time while each returns promptly, so an ordinary node sees its inputs in
order and never concurrently. Only when a callback has run ``OVERLAP_AFTER`` seconds
does the lane's next one start, on another thread; at most ``POOL_SIZE`` run at once.
Time a callback spends waiting in the client for the daemon (a call's answer, credit
for ``nodeOutput``) does not count: the daemon answers, so waiting for it is not
blocking, and a relay held back by flow control keeps its order.

``submit_first`` puts a callback ahead of those waiting and may start it on an extra
thread beyond the ten: startUpComplete, which a blocked node may be waiting for.

Threads start on demand and are daemon threads. Python 3.7+, standard library only.
"""

from __future__ import annotations

import collections
import threading
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any

POOL_SIZE = 10
OVERLAP_AFTER = 0.5  # seconds a callback runs before its lane's next one may start
_PAUSED = float("inf")


class Lane:
    """Callbacks of one kind, started in arrival order (see the module docstring).

    ``run(job)`` runs one callback and must not raise; ``drained()``, if given, is
    called once the lane has nothing waiting (inputs use it to acknowledge in batches).
    """

    __slots__ = ("drained", "elapsed", "holder", "jobs", "run", "since")

    def __init__(self, run: Callable[[Any], None],
                 drained: Callable[[], None] | None = None) -> None:
        self.run = run
        self.drained = drained
        self.jobs: collections.deque[Any] = collections.deque()
        self.holder = 0  # the thread running the lane's current callback, 0: none
        self.since = 0.0  # when that callback started (_PAUSED while it waits for us)
        self.elapsed = 0.0  # while paused: how long it had run


class Pool:
    """Threads for the callbacks of a set of lanes."""

    def __init__(self, lanes: Iterable[Lane], name: str = "homegear-callback") -> None:
        self._lanes = tuple(lanes)
        self._name = name
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        self._threads = 0
        self._idle = 0
        self._current = threading.local()  # .lane: the lane this thread holds

    def submit(self, lane: Lane, jobs: list[Any], limit: int = 0) -> int:
        """Queue ``jobs`` on ``lane``, in order; with a ``limit``, those that would make
        more wait are dropped. Returns how many were dropped."""
        with self._lock:
            dropped = 0
            if limit:
                room = max(limit - len(lane.jobs), 0)
                if len(jobs) > room:
                    dropped = len(jobs) - room
                    jobs = jobs[:room]
            if jobs:
                lane.jobs.extend(jobs)
                self._wake()
            return dropped

    def submit_first(self, lane: Lane, job: Any) -> None:
        """Start ``job`` at once, ahead of what waits on ``lane``, on a thread of its own
        (an eleventh if ten run): the lane's later jobs then follow it."""
        with self._lock:
            self._spawn((lane, job))

    def clear(self, lane: Lane) -> None:
        """Drop what waits on ``lane`` (what runs goes on)."""
        with self._lock:
            lane.jobs.clear()

    def waiting(self) -> int:
        """How many callbacks wait, all lanes together."""
        with self._lock:
            return self._waiting()

    def pause(self) -> Lane | None:
        """The calling callback waits for the daemon: its lane's clock stops."""
        lane: Lane | None = getattr(self._current, "lane", None)
        if lane is not None:
            with self._lock:
                if lane.holder == threading.get_ident() and lane.since != _PAUSED:
                    lane.elapsed = time.monotonic() - lane.since
                    lane.since = _PAUSED
        return lane

    def resume(self, lane: Lane | None) -> None:
        """The wait that :meth:`pause` began is over: the clock goes on where it stopped."""
        if lane is not None:
            with self._lock:
                if lane.holder == threading.get_ident() and lane.since == _PAUSED:
                    lane.since = time.monotonic() - lane.elapsed
                    # Idle threads wait with no timeout while the lane's callback is
                    # paused: with jobs waiting behind it, they must time it again.
                    # (Not otherwise: a wake-up for nothing at every write of a
                    # callback. With _homegear_outbox._ALONE, benchmarks/nodes_vs_nodered.py,
                    # MQTT round trip, interleaved: the two nodes' threads slept 10.6-11.6
                    # times per round trip, against 20.7-24.3.)
                    if self._idle and lane.jobs:
                        self._ready.notify()

    # -- under the lock ----------------------------------------------------------------

    def _waiting(self) -> int:
        return sum(len(lane.jobs) for lane in self._lanes)

    def _wake(self) -> None:
        if self._idle:
            self._ready.notify()
        elif self._threads < POOL_SIZE:
            self._spawn(None)

    def _spawn(self, first: tuple[Lane, Any] | None) -> None:
        self._threads += 1
        self._idle += 1  # idle until it takes a job
        threading.Thread(target=self._work, args=(first,), daemon=True,
                         name=f"{self._name}-{self._threads}").start()

    def _take(self, me: int) -> tuple[Lane | None, Any]:
        """A job to run, or (None, seconds until a lane's callback is overdue or None)."""
        now = time.monotonic()
        wait: float | None = None
        for lane in self._lanes:
            if not lane.jobs:
                continue
            due = lane.since + OVERLAP_AFTER - now
            if not lane.holder or due <= 0:
                lane.holder, lane.since = me, now
                return lane, lane.jobs.popleft()
            if due != _PAUSED and (wait is None or due < wait):
                wait = due
        return None, wait

    # -- the threads ---------------------------------------------------------------------

    def _work(self, first: tuple[Lane, Any] | None) -> None:
        me = threading.get_ident()
        with self._lock:
            if first is not None:
                first[0].holder, first[0].since = me, time.monotonic()
                self._run(me, *first)
            while self._threads <= POOL_SIZE:  # an extra thread (submit_first) ends
                lane, job = self._take(me)
                if lane is None:
                    self._ready.wait(job)
                else:
                    self._run(me, lane, job)
            self._threads -= 1
            self._idle -= 1

    def _run(self, me: int, lane: Lane, job: Any) -> None:
        """Run ``job``, then the lane's next ones while this thread holds it (called and
        returns with the lock held)."""
        lock = self._lock
        current = self._current
        self._idle -= 1
        while True:
            if not self._idle and self._threads < POOL_SIZE and self._waiting():
                self._spawn(None)  # to start what waits if this callback blocks
            lock.release()
            current.lane = lane
            try:
                lane.run(job)
            finally:
                current.lane = None
                lock.acquire()
            if lane.holder == me and lane.jobs and self._threads <= POOL_SIZE:
                job = lane.jobs.popleft()
                lane.since = time.monotonic()
                continue
            if lane.holder == me:
                lane.holder = 0
                if lane.jobs and self._idle:  # left with jobs (an extra thread)
                    self._ready.notify()
            break
        self._idle += 1
        if not lane.jobs and lane.drained is not None:
            lock.release()
            try:
                lane.drained()
            finally:
                lock.acquire()
