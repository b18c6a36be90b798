"""Capturing hadaemon's log events in tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from twisted.logger import ILogObserver, LogEvent, LogLevel, formatEvent, globalLogPublisher
from zope.interface import implementer


@implementer(ILogObserver)
class CapturedLog(list[LogEvent]):
    """The captured events, with helpers to look for text."""

    def __call__(self, event: LogEvent) -> None:
        self.append(event)

    def texts(self, min_level: LogLevel = LogLevel.debug) -> list[str]:
        """Formatted messages (with tracebacks) of events at ``min_level`` or above."""
        out = []
        for event in self:
            level = event.get("log_level", LogLevel.info)
            if level < min_level:
                continue
            text = formatEvent(event)
            failure = event.get("log_failure")
            if failure is not None:
                text += "\n" + failure.getTraceback()
            out.append(text)
        return out

    def text(self, min_level: LogLevel = LogLevel.debug) -> str:
        return "\n".join(self.texts(min_level))


@contextmanager
def capture_logs() -> Iterator[CapturedLog]:
    """Collect every event published while the block runs (hadaemon's and Twisted's)."""
    events = CapturedLog()
    globalLogPublisher.addObserver(events)
    try:
        yield events
    finally:
        globalLogPublisher.removeObserver(events)
