"""A job run once a day at a local time of day, on an injected clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import IDelayedCall


def next_time(now: float, hour: int, minute: int) -> float:
    """The first moment after ``now`` whose local time is ``hour:minute``.

    ``mktime`` with ``tm_isdst=-1`` settles daylight saving; day 32 rolls over into the
    next month, so this works across month and year ends.
    """
    local = time.localtime(now)
    for days in range(3):
        moment = time.mktime((local.tm_year, local.tm_mon, local.tm_mday + days,
                              hour, minute, 0, 0, 0, -1))
        if moment > now:
            return moment
    raise AssertionError("unreachable: a day has a time of day after now")  # pragma: no cover


class Daily:
    """Calls ``job`` every day at ``hour:minute`` local time (reactor thread only)."""

    def __init__(self, clock: Any, hour: int, minute: int, job: Callable[[], object]) -> None:
        self._clock = clock
        self._hour, self._minute = hour, minute
        self._job = job
        self._call: IDelayedCall | None = None

    def start(self) -> None:
        self._schedule()

    def stop(self) -> None:
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None

    @property
    def next_run(self) -> float | None:
        """When the job runs next (clock seconds), None when stopped."""
        return self._call.getTime() if self._call is not None else None

    def _schedule(self) -> None:
        now = self._clock.seconds()
        self._call = self._clock.callLater(
            next_time(now, self._hour, self._minute) - now, self._run)

    def _run(self) -> None:
        self._schedule()  # first: the next run does not depend on this one succeeding
        self._job()
