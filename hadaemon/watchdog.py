"""The reactor watchdog: every world's user code runs on one loop, so find who blocks it.

Two views of one problem. A monitor thread notices, while it happens, that the reactor has
not ticked for longer than the threshold and logs the reactor thread's current stack and
the component running (so a callback that never returns is still reported). Components
wrapped with :meth:`Watchdog.track` are also timed, and each slow call is reported by name
once it returns.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from hadaemon.logs import get_logger


@dataclass(frozen=True)
class BlockReport:
    """One report: who blocked the reactor and for how long (so far, when ``ongoing``)."""

    component: str | None
    seconds: float
    ongoing: bool
    stack: str = ""


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
        self._ticker: LoopingCall | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._reactor_thread: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.listeners: list[Callable[[BlockReport], None]] = []
        self.reports: list[BlockReport] = []

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
        if self._ticker is not None:
            return
        self._reactor_thread = threading.get_ident()
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        self._last_tick = self._clock()
        self._ticker = LoopingCall(self._tick)
        self._ticker.clock = self._reactor
        self._ticker.start(max(self.threshold / 4, 0.005))
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._monitor, name="hadaemon-watchdog", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop monitoring (idempotent)."""
        if self._ticker is not None and self._ticker.running:
            self._ticker.stop()
        self._ticker = None
        self._stopping.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)
        self._thread = None

    def _tick(self) -> None:
        self._last_tick = self._clock()

    def _monitor(self) -> None:
        interval = max(self.threshold / 4, 0.005)
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
