"""How the services world reports: log lines in ``hadaemon.services.<id>`` and events on
the bus with source ``service:<id>``, so that nothing a service does wrong is lost.

Reactor thread only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure

from hadaemon.bus import Bus, ErrorEvent, Level, Lifecycle
from hadaemon.logs import get_logger

_WINDOW = 1.0  # seconds during which repeats of one warning are only counted


def source_of(service_id: str) -> str:
    """The bus source (and lifecycle component) of a service: ``service:<id>``."""
    return f"service:{service_id}"


class Reporter:
    """Logs and publishes what happens to services."""

    def __init__(self, bus: Bus, clock: Callable[[], float], log: Logger | None = None) -> None:
        self._bus = bus
        self._clock = clock
        self.log = log or get_logger("hadaemon.services")
        self._logs: dict[str, Logger] = {}
        self._recent: dict[tuple[str, str], tuple[float, int]] = {}

    def service_log(self, service_id: str) -> Logger:
        """The logger of one service's own lines (namespace ``hadaemon.services.<id>``)."""
        log = self._logs.get(service_id)
        if log is None:
            log = self._logs[service_id] = get_logger(f"hadaemon.services.{service_id}")
        return log

    def failed(
        self, service_id: str, what: str, failure: Failure, *, log: bool = True,
        sender: str = "",
    ) -> None:
        """A Start, Stop, hook or handler raised: log it (with traceback) and publish it."""
        kind = failure.type.__name__ if failure.type is not None else "Exception"
        error = f"{kind}: {failure.getErrorMessage()}"
        if log:
            self.service_log(service_id).failure(
                "service {service}: {what} failed: {error}", failure=failure,
                level=LogLevel.error, service=service_id, what=what, error=error,
            )
        self._bus.publish(
            ErrorEvent(
                source_of(service_id),
                f"{what} failed: {error}",
                Level.ERROR,
                {"action": what, "sender": sender, "exception": kind,
                 "traceback": failure.getTraceback()},
            )
        )

    def blocked(self, service_id: str, what: str, seconds: float, threshold: float) -> None:
        """A step of a service's coroutine blocked the loop for longer than ``threshold``."""
        text = (
            f"{what} blocked the loop for {seconds:.2f}s (threshold {threshold}s); every "
            "service, node and automation waited: move blocking work to a thread "
            "(await asyncio.to_thread(...))"
        )
        self.service_log(service_id).warn(
            "service {service}: {text}", service=service_id, text=text, action=what,
            seconds=seconds,
        )
        self._bus.publish(
            ErrorEvent(source_of(service_id), text, Level.WARNING,
                       {"action": what, "seconds": seconds, "blocked": True})
        )

    def event(self, service_id: str, text: str, level: Level, **details: Any) -> None:
        """Publish ``text`` as an error event of the service, and log it at that level."""
        log_level = {
            Level.CRITICAL: LogLevel.critical, Level.ERROR: LogLevel.error,
            Level.WARNING: LogLevel.warn, Level.INFO: LogLevel.info, Level.DEBUG: LogLevel.debug,
        }[level]
        self.service_log(service_id).emit(
            log_level, "service {service}: {text}", service=service_id, text=text
        )
        self._bus.publish(ErrorEvent(source_of(service_id), text, level, dict(details)))

    def lifecycle(self, service_id: str, state: str, **details: Any) -> None:
        self._bus.publish(Lifecycle(source_of(service_id), state, dict(details)))

    def throttled(self, key: tuple[str, str]) -> tuple[bool, int]:
        """Whether a repeated warning may be shown now, and how many repeats were held back.

        The first occurrence is shown; repeats within a second are only counted, and the
        count is shown with the next one after that.
        """
        now = self._clock()
        last, held = self._recent.get(key, (None, 0))
        if last is not None and now - last < _WINDOW:
            self._recent[key] = (last, held + 1)
            return False, held + 1
        self._recent[key] = (now, 0)
        if len(self._recent) > 10_000:
            self._recent = {k: v for k, v in self._recent.items() if now - v[0] < _WINDOW}
        return True, held


__all__ = ["Reporter", "source_of"]
