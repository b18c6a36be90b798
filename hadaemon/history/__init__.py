"""History: variable changes recorded in SQLite, and downsampled chart queries.

See docs/history.md. The plugin is enabled as ``history`` in ``[daemon].plugins``;
other plugins reach it with ``context.plugin("history")``.
"""

from hadaemon.history.database import HistoryFileError
from hadaemon.history.plugin import MAX_POINTS_LIMIT, HistoryPlugin, HistoryUnavailable
from hadaemon.history.settings import HistorySettings

__all__ = [
    "MAX_POINTS_LIMIT",
    "HistoryFileError",
    "HistoryPlugin",
    "HistorySettings",
    "HistoryUnavailable",
]
