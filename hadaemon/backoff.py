"""The one backoff policy: node, spawner and service restarts, MQTT reconnects, bus retries.

The n-th failure in a row waits ``delay * factor**(n-1)``, at most ``delay_max``, minus up
to ``jitter`` of it at random (so that many clients do not retry in lockstep). Success
(:meth:`Backoff.reset`) starts it over; so does, with ``reset_after``, a failure of an
attempt that had run that long (measured on the injected clock from
:meth:`Backoff.started`). Config sections name its settings ``<what>_delay``,
``<what>_delay_max``, ``<what>_factor`` and ``<what>_jitter`` (docs/config.md).

Plain state, no scheduling of its own: callers pass the delay to their ``callLater``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from twisted.internet.interfaces import IReactorTime

_MAX_EXPONENT = 64  # factor**n stays finite; the cap is reached long before


class Backoff:
    """Delays before the next attempt after failures in a row (see the module docstring)."""

    def __init__(
        self,
        delay: float,
        delay_max: float,
        *,
        factor: float = 2.0,
        jitter: float = 0.0,
        reset_after: float | None = None,
        clock: IReactorTime | None = None,
        rand: Callable[[], float] = random.random,
    ) -> None:
        if delay < 0 or delay_max < 0:  # (a first delay beyond the cap waits the cap)
            raise ValueError(f"backoff needs delays >= 0, got {delay}, {delay_max}")
        if factor < 1 or not 0 <= jitter <= 1:
            raise ValueError(f"backoff needs factor >= 1 and jitter in [0, 1], got {factor}, "
                             f"{jitter}")
        if reset_after is not None and clock is None:
            raise ValueError("reset_after needs a clock")
        self.delay = delay
        self.delay_max = delay_max
        self.factor = factor
        self.jitter = jitter
        self.reset_after = reset_after
        self._clock = clock
        self._rand = rand
        self.failures = 0  # in a row, counted by next_delay()
        self._started: float | None = None

    def started(self) -> None:
        """An attempt starts now (with ``reset_after``: how long it runs counts)."""
        if self._clock is not None:
            self._started = self._clock.seconds()

    def next_delay(self) -> float:
        """Count one more failure; the seconds to wait before the next attempt."""
        started, self._started = self._started, None
        if (self.reset_after is not None and started is not None and self._clock is not None
                and self._clock.seconds() - started >= self.reset_after):
            self.failures = 0
        try:
            grown = self.delay * self.factor ** min(self.failures, _MAX_EXPONENT)
        except OverflowError:
            grown = self.delay_max
        base = min(self.delay_max, grown)
        self.failures += 1
        if not self.jitter:
            return base
        return base * (1.0 - self.jitter * self._rand())

    def reset(self) -> None:
        """The attempt succeeded: the next failure waits the first delay again."""
        self.failures = 0
        self._started = None


__all__ = ["Backoff"]
