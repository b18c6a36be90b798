"""Reactor lag as status shows it: the watchdog's figures (how late its ticks ran, over
its recent window, and what blocked the reactor longer than its threshold), the same
ones /metrics exports, so the two never disagree."""

from __future__ import annotations

from typing import Any

from hadaemon.watchdog import Lag, Watchdog


def reactor_summary(watchdog: Watchdog | None) -> dict[str, Any]:
    """``/api/status``'s ``reactor``: the lag window and the latest block reports."""
    if watchdog is None:  # [watchdog] enabled = false
        return {"lag": {**Lag().summary(), "interval": None}, "watchdog": None}
    return {
        "lag": watchdog.lag.summary(),
        "watchdog": {
            "threshold": watchdog.threshold,
            "blocked": [{"component": r.component, "seconds": r.seconds,
                         "ongoing": r.ongoing} for r in watchdog.reports[-10:]],
        },
    }
