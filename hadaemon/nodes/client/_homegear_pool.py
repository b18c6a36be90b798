"""The threads that run a node's callbacks: a pool of ten, as Homegear's own client has,
and the thread that reads the socket, which runs an input's callback itself when it can.

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

Why the reader runs inputs itself (:meth:`Pool.run_here`): handing an input to a pool
thread wakes that thread, and the wake-up sits between the input's arrival and its
callback on every message (``benchmarks/nodes_vs_nodered.py``: one relay node's hop
took 102-136 us with the hand-over, 66-84 us without). So the reading thread runs the
callback itself while the lane is free, and gives reading up (*hands it over*) to
another thread only when it must, never before: as the callback starts waiting for the
daemon (whose answer must be read), when a write would block, or when the callback has
run ``OVERLAP_AFTER`` seconds (a watcher thread notices; it wakes only while callbacks
run, twice a second at most). The thread that took reading over goes on reading; the
one that gave it up finishes its callback (and the lane's next ones while it holds the
lane) and joins the pool. Callbacks see the same either way: the same order, the same
overlap after half a second, never on the main thread.

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
_READ = object()  # what an idle thread takes when reading was handed over
_get_ident = threading.get_ident
_monotonic = time.monotonic


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
    """Threads for the callbacks of a set of lanes, and the reading of the socket."""

    def __init__(self, lanes: Iterable[Lane], name: str = "homegear-callback") -> None:
        self._lanes = tuple(lanes)
        self._name = name
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        self._threads = 0  # pool threads (a reading thread is not one while it reads)
        self._idle = 0
        self._running = 0  # callbacks running, on any thread
        self._current = threading.local()  # .lane: the lane this thread holds
        # Reading (see the module docstring).
        self._read: Callable[[], None] | None = None
        self.reader = 0
        """The thread that reads the socket now (0: none, or being handed over)."""
        self.inline = 0
        """The reader while it runs a callback itself (0: it does not)."""
        self._inline_lane: Lane | None = None
        self._read_wanted = False  # reading was handed over: an idle thread takes it
        self._watch = threading.Condition(self._lock)
        self._watching = False  # the watcher thread runs
        self._watch_parked = False  # it waits without a timeout
        self._inline_runs = 0  # inline callbacks started (the watcher sees activity)

    # -- the reading thread ----------------------------------------------------------------

    def start_reading(self, read: Callable[[], None]) -> None:
        """Start the thread that reads: ``read()`` returns once this thread is no longer
        the reader (:meth:`reading` is False after a hand-over) or the connection ended
        for good."""
        self._read = read
        threading.Thread(target=self._reading, name="homegear-connection",
                         daemon=True).start()

    def reading(self) -> bool:
        """Whether the calling thread is still the reader."""
        return self.reader == _get_ident()

    def run_here(self, lane: Lane, jobs: list[Any]) -> None:
        """The reader's way to start ``jobs`` on ``lane``: on this very thread while the
        lane is free and fewer than ``POOL_SIZE`` callbacks run, else like :meth:`submit`.
        Returns once they ran, or once this thread gave reading up (they then go on as
        the pool's)."""
        me = _get_ident()
        lock = self._lock
        with lock:
            if lane.holder or lane.jobs or self._running >= POOL_SIZE or self.reader != me:
                lane.jobs.extend(jobs)
                self._wake()
                return
            lane.holder, lane.since = me, _monotonic()
            self.inline, self._inline_lane = me, lane
            self._inline_runs += 1
            if self._watch_parked:
                self._watch_parked = False
                self._watch.notify()
            elif not self._watching:
                self._watching = True
                threading.Thread(target=self._watcher, name=f"{self._name}-watch",
                                 daemon=True).start()
            if len(jobs) > 1:
                lane.jobs.extend(jobs[1:])
            self._run(me, lane, jobs[0], inline=True)

    def _reading(self) -> None:
        """A thread started to read (the first one, or one taking reading over)."""
        me = _get_ident()
        with self._lock:
            self.reader = me
            if self._read_and_rejoin(me):
                self._serve(me)

    def _read_and_rejoin(self, me: int) -> bool:
        """Read until this thread hands reading over or the connection ends for good
        (called and returns with the lock held); then join the pool if it has room
        (True), else let the thread end (False)."""
        self._lock.release()
        try:
            read = self._read
            if read is not None:
                read()
        finally:
            self._lock.acquire()
        if self.reader == me:  # the connection ended for good
            self.reader = 0
        if self._threads >= POOL_SIZE:
            return False
        self._threads += 1
        self._idle += 1
        return True

    def _hand_over(self) -> None:
        """Give reading up (the reader, in a callback): an idle thread takes it, or a
        new one (under the lock)."""
        self.reader = self.inline = 0
        self._inline_lane = None
        if self._idle:
            self._read_wanted = True
            self._ready.notify()
        else:
            threading.Thread(target=self._reading, name="homegear-connection",
                             daemon=True).start()

    def _watcher(self) -> None:
        """Hands reading over when the reader's callback has run ``OVERLAP_AFTER``
        seconds; parks while no callback ran on the reader for that long."""
        seen = -1
        with self._lock:
            while True:
                lane = self._inline_lane
                if lane is not None and lane.since != _PAUSED:
                    due = lane.since + OVERLAP_AFTER - _monotonic()
                    if due <= 0:
                        self._hand_over()
                    else:
                        self._watch.wait(due)
                elif self._inline_runs != seen:
                    seen = self._inline_runs
                    self._watch.wait(OVERLAP_AFTER)
                else:
                    self._watch_parked = True
                    self._watch.wait()
                    self._watch_parked = False

    # -- the pool ------------------------------------------------------------------------

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
        """The calling callback waits for the daemon: its lane's clock stops (and a
        reader running it gives reading up: the answer must be read)."""
        lane: Lane | None = getattr(self._current, "lane", None)
        if lane is not None:
            with self._lock:
                me = _get_ident()
                if self.inline == me:
                    self._hand_over()
                if lane.holder == me and lane.since != _PAUSED:
                    lane.elapsed = _monotonic() - lane.since
                    lane.since = _PAUSED
        return lane

    def resume(self, lane: Lane | None) -> None:
        """The wait that :meth:`pause` began is over: the clock goes on where it stopped."""
        if lane is not None:
            with self._lock:
                if lane.holder == _get_ident() and lane.since == _PAUSED:
                    lane.since = _monotonic() - lane.elapsed
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
        if self._read_wanted:
            self._read_wanted = False
            self.reader = me
            return None, _READ
        if self._running >= POOL_SIZE:
            return None, None  # woken when one returns
        now = _monotonic()
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
        me = _get_ident()
        with self._lock:
            if first is not None:
                first[0].holder, first[0].since = me, _monotonic()
                self._idle -= 1
                self._run(me, *first)
                self._idle += 1
            self._serve(me)

    def _serve(self, me: int) -> None:
        """A pool thread's life (under the lock): jobs, and reading whenever it takes
        reading over, until it ends."""
        while self._work_locked(me):  # it took reading over
            if not self._read_and_rejoin(me):
                return

    def _work_locked(self, me: int) -> bool:
        """Run jobs until this thread takes reading over (True: it left the pool) or
        ends as an extra thread (False)."""
        while self._threads <= POOL_SIZE:  # an extra thread (submit_first) ends
            lane, job = self._take(me)
            if lane is not None:
                self._idle -= 1
                self._run(me, lane, job)
                self._idle += 1
            elif job is _READ:
                self._threads -= 1
                self._idle -= 1
                return True
            else:
                self._ready.wait(job)
        self._threads -= 1
        self._idle -= 1
        return False

    def _run(self, me: int, lane: Lane, job: Any, inline: bool = False) -> None:
        """Run ``job``, then the lane's next ones while this thread holds it (called and
        returns with the lock held)."""
        lock = self._lock
        current = self._current
        self._running += 1
        while True:
            if not inline and not self._idle and self._threads < POOL_SIZE \
                    and self._waiting():
                self._spawn(None)  # to start what waits if this callback blocks
            lock.release()
            current.lane = lane
            try:
                lane.run(job)
            finally:
                current.lane = None
                lock.acquire()
            if self.inline == me and self.reader == me and lane.holder == me and lane.jobs:
                # Still the reader, with the rest of its own batch: go on with it.
                job = lane.jobs.popleft()
                lane.since = _monotonic()
                continue
            inline = False
            if self.inline == me:
                self.inline = 0
                self._inline_lane = None
            if lane.holder == me and lane.jobs and self._threads <= POOL_SIZE:
                job = lane.jobs.popleft()
                lane.since = _monotonic()
                continue
            if lane.holder == me:
                lane.holder = 0
                if lane.jobs and self._idle:  # left with jobs (an extra thread)
                    self._ready.notify()
            break
        self._running -= 1
        if self._running == POOL_SIZE - 1 and self._idle and self._waiting():
            self._ready.notify()  # jobs waited for one of the ten to return
        if not lane.jobs and lane.drained is not None:
            lock.release()
            try:
                lane.drained()
            finally:
                lock.acquire()
