"""Reactor lag as status shows it: how late a timer fires, probed every ``interval``,
beside the watchdog's reports of what blocked the reactor longer than its threshold."""

from __future__ import annotations

from collections import deque
from typing import Any

from twisted.internet.task import LoopingCall

from hadaemon.watchdog import Watchdog


class LagProbe:
    """A timer due every ``interval`` seconds; how late it fires is the reactor's lag."""

    def __init__(self, reactor: Any, interval: float, watchdog: Watchdog | None,
                 window: int = 600) -> None:
        self._reactor = reactor
        self.interval = interval
        self.watchdog = watchdog
        self.samples: deque[float] = deque(maxlen=window)
        self._due = 0.0
        self._loop = LoopingCall(self._tick)
        self._loop.clock = reactor

    def start(self) -> None:
        self._due = self._reactor.seconds()
        self._loop.start(self.interval, now=True)

    def stop(self) -> None:
        if self._loop.running:
            self._loop.stop()

    def _tick(self) -> None:
        now = self._reactor.seconds()
        self.samples.append(max(0.0, now - self._due))
        self._due = now + self.interval

    def summary(self) -> dict[str, Any]:
        """Lag in seconds: the last, the median, p99 and max of the last window."""
        ordered = sorted(self.samples)
        count = len(ordered)

        def quantile(q: float) -> float | None:
            return ordered[min(count - 1, int(q * count))] if count else None

        watchdog = self.watchdog
        return {
            "lag": {"last": self.samples[-1] if count else None, "p50": quantile(0.5),
                    "p99": quantile(0.99), "max": ordered[-1] if count else None,
                    "samples": count, "interval": self.interval},
            "watchdog": None if watchdog is None else {
                "threshold": watchdog.threshold,
                "blocked": [{"component": r.component, "seconds": r.seconds,
                             "ongoing": r.ongoing} for r in watchdog.reports[-10:]],
            },
        }
