"""Bridging the daemon's log to the host program's stdlib ``logging``.

Each event goes to the stdlib logger named after its namespace (``hadaemon.bus``,
``hadaemon.plugin.demo``...), so the host's logging config decides what is shown.
Nothing else of the host is touched: not stdout/stderr, not ``warnings``.
"""

from __future__ import annotations

import logging
import warnings

from twisted.logger import (
    ILogObserver,
    LogEvent,
    LogLevel,
    eventAsText,
    globalLogBeginner,
    globalLogPublisher,
)
from zope.interface import implementer

_LEVELS = {
    LogLevel.debug: logging.DEBUG,
    LogLevel.info: logging.INFO,
    LogLevel.warn: logging.WARNING,
    LogLevel.error: logging.ERROR,
    LogLevel.critical: logging.CRITICAL,
}


@implementer(ILogObserver)
class StdlibBridge:
    """A log observer that re-emits events as stdlib log records."""

    def __call__(self, event: LogEvent) -> None:
        level = _LEVELS.get(event.get("log_level", LogLevel.info), logging.INFO)
        logger = logging.getLogger(event.get("log_namespace") or "hadaemon")
        if not logger.isEnabledFor(level):
            return
        text = eventAsText(event, includeTraceback=True, includeTimestamp=False,
                           includeSystem=False)
        logger.log(level, "%s", text)


def install(observer: ILogObserver) -> None:
    """Send every log event to ``observer`` without taking over stdio or warnings."""
    if getattr(globalLogBeginner, "_temporaryObserver", None) is not None:
        # Nobody began Twisted logging yet: begin it (else Twisted buffers events
        # forever), but keep the host's warnings display as it was.
        saved = warnings.showwarning
        globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)
        warnings.showwarning = saved
    else:
        globalLogPublisher.addObserver(observer)


def uninstall(observer: ILogObserver) -> None:
    globalLogPublisher.removeObserver(observer)
