"""Logging: ``twisted.logger`` with a level per namespace and text or JSON-lines output.

Every hadaemon logger emits through one shared filtering observer, so per-namespace levels
from the config apply in every way the daemon runs (``hadaemon run``, twistd, embedded),
whatever observer twistd or the host program installed for output.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping
from typing import IO, Any, cast

from twisted.logger import (
    FilteringLogObserver,
    ILogObserver,
    LogEvent,
    Logger,
    LogLevel,
    LogLevelFilterPredicate,
    eventAsText,
    formatEventAsClassicLogText,
    globalLogPublisher,
)
from zope.interface import implementer

LEVEL_NAMES: dict[str, LogLevel] = {
    "debug": LogLevel.debug,
    "info": LogLevel.info,
    "warn": LogLevel.warn,
    "warning": LogLevel.warn,
    "error": LogLevel.error,
    "critical": LogLevel.critical,
}

_predicate = LogLevelFilterPredicate(defaultLogLevel=LogLevel.info)


def _to_global(event: LogEvent) -> None:
    # Looked up at call time: tests and twistd may replace observers on the publisher.
    globalLogPublisher(event)


_filtered = FilteringLogObserver(cast(ILogObserver, _to_global), [_predicate])


def get_logger(namespace: str, source: object = None) -> Logger:
    """A logger whose events pass hadaemon's per-namespace level filter."""
    return Logger(namespace=namespace, source=source, observer=_filtered)


def parse_level(name: str) -> LogLevel:
    """Map a config level name to a LogLevel (ValueError names the valid ones)."""
    try:
        return LEVEL_NAMES[name.lower()]
    except KeyError:
        raise ValueError(
            f"unknown log level {name!r}; expected one of {', '.join(sorted(LEVEL_NAMES))}"
        ) from None


def set_levels(default: LogLevel, per_namespace: Mapping[str, LogLevel]) -> None:
    """Apply the configured levels; a namespace's level also covers its children."""
    _predicate.clearLogLevels()
    _predicate.defaultLogLevel = default
    for namespace, level in per_namespace.items():
        _predicate.setLogLevelForNamespace(namespace, level)


def level_filter() -> LogLevelFilterPredicate:
    """The shared predicate, for output observers that also see Twisted's own events."""
    return _predicate


@implementer(ILogObserver)
class JSONLinesObserver:
    """One JSON object per line, with the formatted message: easy for log shippers."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def __call__(self, event: LogEvent) -> None:
        level = event.get("log_level")
        record: dict[str, Any] = {
            "time": event.get("log_time", time.time()),
            "level": getattr(level, "name", str(level)),
            "namespace": event.get("log_namespace", ""),
            "message": eventAsText(
                event, includeTraceback=False, includeTimestamp=False, includeSystem=False
            ),
        }
        failure = event.get("log_failure")
        if failure is not None:
            record["traceback"] = failure.getTraceback()
        for key, value in event.items():
            if key.startswith("log_") or key in record or key in ("format", "message"):
                continue
            if isinstance(value, str | int | float | bool) or value is None:
                record[key] = value
        self._stream.write(json.dumps(record, default=str) + "\n")
        self._stream.flush()


@implementer(ILogObserver)
class TextObserver:
    """Classic ``time [namespace#level] message`` lines, for people."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def __call__(self, event: LogEvent) -> None:
        text = formatEventAsClassicLogText(event)
        if text:
            self._stream.write(text)
            self._stream.flush()


def make_output_observer(fmt: str, stream: IO[str] | None = None) -> ILogObserver:
    """An output observer (``text`` or ``json``) filtered by the configured levels."""
    out = stream if stream is not None else sys.stdout
    inner: ILogObserver = JSONLinesObserver(out) if fmt == "json" else TextObserver(out)
    return FilteringLogObserver(inner, [_predicate])


__all__ = [
    "LEVEL_NAMES",
    "JSONLinesObserver",
    "TextObserver",
    "get_logger",
    "level_filter",
    "make_output_observer",
    "parse_level",
    "set_levels",
]
