"""The reactor watchdog: every world's user code runs on one loop, so find who blocks it.

Two views of one problem. A monitor thread notices, while it happens, that the reactor has
not ticked for longer than the threshold and logs the reactor thread's current stack and
the component running (so a callback that never returns is still reported). Components
wrapped with :meth:`Watchdog.track` are also timed, and each slow call is reported by name
once it returns.

The ticker also measures the reactor's lag: how late each tick ran after the time it was
due (:class:`Lag`), the figure metrics and status displays show.
"""

from __future__ import annotations

import asyncio
import bisect
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from hadaemon.logs import get_logger


@dataclass(frozen=True)
class BlockReport:
    """One report: who blocked the reactor and for how long (so far, when ``ongoing``)."""

    component: str | None
    seconds: float
    ongoing: bool
    stack: str = ""


LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Upper bounds (seconds) of :class:`Lag`'s histogram; one more bucket holds the rest."""


class Lag:
    """How late the watchdog's ticks ran: the last, the worst, and a cumulative histogram.

    Written by the reactor thread only (one record per tick, a few per second: cheap);
    any thread may read the figures (a reader may see a tick half-recorded).
    """

    __slots__ = ("count", "counts", "interval", "last", "peak", "recent", "total")

    def __init__(self, interval: float = 0.0, window: int = 600) -> None:
        self.interval = interval  # seconds between the ticks measured
        self.recent: deque[float] = deque(maxlen=window)  # the latest ticks' lateness
        self.last = 0.0  # seconds the latest tick was late
        self.peak = 0.0  # the most any tick was late since the start
        self.total = 0.0  # the sum of every tick's lateness
        self.count = 0  # ticks measured
        self.counts = [0] * (len(LAG_BUCKETS) + 1)  # per bucket, not cumulative

    def record(self, seconds: float) -> None:
        """One tick ran ``seconds`` late (negative is on time)."""
        late = max(seconds, 0.0)
        self.last = late
        self.peak = max(self.peak, late)
        self.total += late
        self.count += 1
        self.counts[bisect.bisect_left(LAG_BUCKETS, late)] += 1
        self.recent.append(late)

    def summary(self) -> dict[str, float | int | None]:
        """The recent window (status shows it): last, p50, p99, max, samples, interval."""
        ordered = sorted(self.recent)
        count = len(ordered)

        def quantile(q: float) -> float | None:
            return ordered[min(count - 1, int(q * count))] if count else None

        return {"last": self.last if count else None, "p50": quantile(0.5),
                "p99": quantile(0.99), "max": ordered[-1] if count else None,
                "samples": count, "interval": self.interval}

    def buckets(self) -> list[tuple[float, int]]:
        """Cumulative ``(upper bound, ticks at most that late)``; the last bound is inf."""
        out: list[tuple[float, int]] = []
        running = 0
        for bound, count in zip((*LAG_BUCKETS, float("inf")), list(self.counts), strict=True):
            running += count
            out.append((bound, running))
        return out


class Watchdog:
    """Reports callbacks blocking the reactor for longer than ``threshold`` seconds.

    ``track``/``component`` may only be used on the reactor thread; ``start`` and
    ``stop`` too. The monitor thread only reads.
    """

    def __init__(
        self,
        reactor: IReactorTime,
        *,
        threshold: float = 0.5,
        log: Logger | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold = threshold
        self._reactor = reactor
        self._log = log or get_logger("hadaemon.watchdog")
        self._clock = clock
        self._current: str | None = None
        self._last_tick = clock()
        self._interval = max(threshold / 4, 0.005)  # between ticks
        self._tick_call: IDelayedCall | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._reactor_thread: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.listeners: list[Callable[[BlockReport], None]] = []
        self.reports: list[BlockReport] = []
        self.reported = 0  # reports so far (``reports`` keeps only the latest 100)
        self.lag = Lag(self._interval)

    @property
    def current(self) -> str | None:
        """The component running on the reactor right now, if it was named."""
        return self._current

    @contextmanager
    def component(self, name: str) -> Iterator[None]:
        """Name the code running inside the block and time it."""
        outer = self._current
        self._current = name
        start = self._clock()
        try:
            yield
        finally:
            self._ended(name, outer, start)

    def _ended(self, name: str, outer: str | None, start: float) -> None:
        """``name`` stopped running (``outer`` runs again): report it if it blocked."""
        self._current = outer
        elapsed = self._clock() - start
        if elapsed > self.threshold:
            self._report(BlockReport(name, elapsed, ongoing=False))

    def track(self, name: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call ``fn`` as component ``name`` (the fast path of :meth:`component`)."""
        outer = self._current
        self._current = name
        start = self._clock()
        try:
            return fn(*args, **kwargs)
        finally:
            self._ended(name, outer, start)

    def start(self) -> None:
        """Start ticking and monitoring; call on the reactor thread once it runs."""
        if self._tick_call is not None:
            return
        self._reactor_thread = threading.get_ident()
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        self._last_tick = self._clock()
        self._interval = self.lag.interval = max(self.threshold / 4, 0.005)
        self._tick_call = self._reactor.callLater(self._interval, self._tick)
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._monitor, name="hadaemon-watchdog", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop monitoring (idempotent)."""
        if self._tick_call is not None and self._tick_call.active():
            self._tick_call.cancel()
        self._tick_call = None
        self._stopping.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)
        self._thread = None

    def _tick(self) -> None:
        self._last_tick = self._clock()
        due = self._tick_call
        if due is not None:
            self.lag.record(self._reactor.seconds() - due.getTime())
        self._tick_call = self._reactor.callLater(self._interval, self._tick)

    def _monitor(self) -> None:
        interval = self._interval
        reported_for: float | None = None
        while not self._stopping.wait(interval):
            last = self._last_tick
            stalled = self._clock() - last
            if stalled > self.threshold and reported_for != last:
                reported_for = last
                self._report(
                    BlockReport(self._describe_current(), stalled, True, self._reactor_stack())
                )

    def _describe_current(self) -> str | None:
        if self._current is not None:
            return self._current
        if self._loop is not None:
            current: dict[Any, asyncio.Task[Any]] = getattr(asyncio.tasks, "_current_tasks", {})
            task = current.get(self._loop)  # a read-only peek from this thread
            if task is not None:
                return f"asyncio task {task.get_name()}"
        return None

    def _reactor_stack(self) -> str:
        if self._reactor_thread is None:
            return ""
        frame = sys._current_frames().get(self._reactor_thread)
        if frame is None:
            return ""
        return "".join(traceback.format_stack(frame, limit=8))

    def _report(self, report: BlockReport) -> None:
        self.reported += 1
        self.reports.append(report)
        del self.reports[:-100]
        who = report.component or "an unnamed callback"
        if report.ongoing:
            self._log.warn(
                "reactor blocked for {seconds:.2f}s so far by {who}; it is at:\n{stack}",
                seconds=report.seconds,
                who=who,
                stack=report.stack,
                component=report.component,
            )
        else:
            self._log.warn(
                "{who} blocked the reactor for {seconds:.2f}s (threshold {threshold}s); "
                "move blocking work to a thread",
                who=who,
                seconds=report.seconds,
                threshold=self.threshold,
                component=report.component,
            )
        if threading.get_ident() == self._reactor_thread or self._reactor_thread is None:
            for listener in list(self.listeners):
                try:
                    listener(report)
                except Exception:
                    self._log.failure("watchdog listener {listener!r} failed", listener=listener)
