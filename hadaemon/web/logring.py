"""Recent log lines for GET /api/log: a bounded ring of log events, formatted when asked.

An observer on the global log publisher keeps the last ``size`` events (and the last few
of each namespace, so a quiet service's lines are not pushed out by a noisy one). Events
are kept as they are and formatted only when a client reads them: most are never read.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any

from twisted.logger import ILogObserver, LogEvent, LogLevel, eventAsText, globalLogPublisher
from zope.interface import implementer

from hadaemon.logs import LEVEL_NAMES

PER_NAMESPACE = 50
MAX_NAMESPACES = 1000
_ORDER = {level: index for index, level in enumerate(LogLevel.iterconstants())}


@implementer(ILogObserver)
class LogRing:
    """The last log events; reactor thread for reads, any thread may log (a deque append
    is atomic)."""

    def __init__(self, size: int = 2000) -> None:
        self.events: deque[LogEvent] = deque(maxlen=size)
        self.by_namespace: dict[str, deque[LogEvent]] = {}
        self._attached = False

    def __call__(self, event: LogEvent) -> None:
        self.events.append(event)
        namespace = event.get("log_namespace", "")
        ring = self.by_namespace.get(namespace)
        if ring is None:
            if len(self.by_namespace) >= MAX_NAMESPACES:
                return
            ring = self.by_namespace[namespace] = deque(maxlen=PER_NAMESPACE)
        ring.append(event)

    def attach(self) -> None:
        if not self._attached:
            globalLogPublisher.addObserver(self)
            self._attached = True

    def detach(self) -> None:
        if self._attached:
            globalLogPublisher.removeObserver(self)
            self._attached = False

    def lines(self, *, level: str | None = None, source: str | None = None,
              limit: int = 200) -> list[dict[str, Any]]:
        """The newest ``limit`` lines at ``level`` or above, from namespaces starting with
        ``source``, oldest first."""
        floor = _ORDER[LEVEL_NAMES[level]] if level else 0
        pool: Iterable[LogEvent] = self.events
        namespaces = list(self.by_namespace)  # (other threads may log meanwhile)
        if source and source in namespaces and not any(
            ns.startswith(source + ".") for ns in namespaces
        ):
            pool = list(self.by_namespace[source]) + list(self.events)
        selected: list[LogEvent] = []
        seen: set[int] = set()
        for event in reversed(list(pool)):
            if id(event) in seen:
                continue
            seen.add(id(event))
            namespace = event.get("log_namespace", "")
            if source and not (namespace == source or namespace.startswith(source + ".")):
                continue
            if _ORDER.get(event.get("log_level", LogLevel.info), 0) < floor:
                continue
            selected.append(event)
        selected.sort(key=lambda e: e.get("log_time", 0.0))
        return [format_line(e) for e in selected[-limit:]]


def format_line(event: LogEvent) -> dict[str, Any]:
    level = event.get("log_level")
    return {
        "time": event.get("log_time"),
        "level": getattr(level, "name", str(level)),
        "source": event.get("log_namespace", ""),
        "message": eventAsText(event, includeTraceback=False, includeTimestamp=False,
                               includeSystem=False),
    }
