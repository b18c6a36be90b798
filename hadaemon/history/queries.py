"""Chart queries on the history file, downsampled in SQL: at most about ``max_points``
per answer whatever the time range holds.

Runs in a worker thread (never the reactor's) on its own read-only connection; WAL lets
it read while the writer writes.
"""

from __future__ import annotations

import pathlib
import sqlite3
import threading
from dataclasses import dataclass
from typing import Any

from hadaemon.history.database import SeriesKey, connect, decode

NUMERIC_TYPES = frozenset({"int", "float"})
"""Variable types charted as numbers (min/max/mean buckets); ``any`` is when every
value in the range is a number."""


@dataclass(frozen=True)
class Window:
    """What a chart asks for: one variable, a time range, a budget of points."""

    key: SeriesKey
    start: float
    end: float
    max_points: int
    type: str | None = None  # the registry's type, when it knows the variable
    unit: str | None = None


class Reader:
    """One read-only connection, opened on first use; any thread may call :meth:`query`."""

    def __init__(self, path: pathlib.Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def query(self, window: Window) -> dict[str, Any] | None:
        """The chart of ``window``, or None if the variable has no history at all."""
        with self._lock:
            if self._conn is None:
                self._conn = connect(self.path, readonly=True)
            conn = self._conn
            # One read transaction: the answer is one snapshot even while batches land.
            conn.execute("BEGIN")
            try:
                return _query(conn, window)
            finally:
                conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def _query(conn: sqlite3.Connection, w: Window) -> dict[str, Any] | None:
    row = conn.execute(
        "SELECT id, type, unit FROM series WHERE source = ? AND peer_id = ? "
        "AND channel = ? AND name = ?", w.key,
    ).fetchone()
    if row is None:
        return None
    sid, stored_type, stored_unit = row
    kind = w.type or stored_type
    source, peer_id, channel, name = w.key
    variable = {
        "source": source, "peer_id": peer_id, "channel": channel, "name": name,
        "type": kind, "unit": w.unit if w.type is not None else stored_unit,
    }
    count, numbers = conn.execute(
        "SELECT count(*), count(num) FROM changes WHERE series = ? AND t >= ? AND t <= ?",
        (sid, w.start, w.end),
    ).fetchone()
    initial = _value_before(conn, sid, w.start)
    numeric = kind in NUMERIC_TYPES or (kind == "any" and count > 0 and numbers == count)
    answer: dict[str, Any] = {
        "variable": variable, "start": w.start, "end": w.end, "count": count,
        "downsampled": count > w.max_points,
    }
    if numeric and count > w.max_points:
        width = (w.end - w.start) / w.max_points
        answer["bucket_seconds"] = width
        answer["initial"] = initial
        answer["buckets"] = _buckets(conn, sid, w, width)
        return answer
    if count > w.max_points:
        points = _state_changes(conn, sid, w, max(1, w.max_points // 2))
    else:
        points = _all_points(conn, sid, w)
    answer["points"] = ([initial] if initial is not None else []) + points
    return answer


def _value_before(conn: sqlite3.Connection, sid: int, start: float) -> list[Any] | None:
    """``[t, value]`` of the last change before ``start``: the value in force at it."""
    row = conn.execute(
        "SELECT t, num, value FROM changes WHERE series = ? AND t < ? "
        "ORDER BY t DESC, rowid DESC LIMIT 1", (sid, start),
    ).fetchone()
    return None if row is None else [row[0], decode(row[1], row[2])]


def _all_points(conn: sqlite3.Connection, sid: int, w: Window) -> list[list[Any]]:
    return [
        [t, decode(num, packed)]
        for t, num, packed in conn.execute(
            "SELECT t, num, value FROM changes WHERE series = ? AND t >= ? AND t <= ? "
            "ORDER BY t, rowid", (sid, w.start, w.end),
        )
    ]


def _buckets(conn: sqlite3.Connection, sid: int, w: Window, width: float) -> list[list[Any]]:
    """``[t_start, min, max, mean, count]`` per non-empty bucket, of numbers only (a
    NaN of a float variable is not aggregated). The mean is of the recorded values."""
    last = w.max_points - 1  # a change at exactly ``end`` belongs to the last bucket
    return [
        [w.start + bucket * width, low, high, mean, n]
        for bucket, low, high, mean, n in conn.execute(
            "SELECT min(CAST((t - ?1) / ?2 AS INTEGER), ?3) AS b, min(num), max(num), "
            "avg(num), count(num) FROM changes "
            "WHERE series = ?4 AND t >= ?1 AND t <= ?5 AND num IS NOT NULL "
            "GROUP BY b ORDER BY b",
            (w.start, width, last, sid, w.end),
        )
    ]


def _state_changes(
    conn: sqlite3.Connection, sid: int, w: Window, buckets: int
) -> list[list[Any]]:
    """The first and the last change of each of ``buckets`` buckets: the state at every
    bucket's edges is exact, flapping inside one is thinned out."""
    width = (w.end - w.start) / buckets
    return [
        [t, decode(num, packed)]
        for t, num, packed in conn.execute(
            "SELECT t, num, value FROM ("
            " SELECT t, num, value, rowid AS r,"
            "  row_number() OVER (PARTITION BY b ORDER BY t, rowid) AS first,"
            "  row_number() OVER (PARTITION BY b ORDER BY t DESC, rowid DESC) AS last"
            " FROM (SELECT rowid, t, num, value, min(CAST((t - ?1) / ?2 AS INTEGER), ?3) AS b"
            "       FROM changes WHERE series = ?4 AND t >= ?1 AND t <= ?5))"
            " WHERE first = 1 OR last = 1 ORDER BY t, r",
            (w.start, width, buckets - 1, sid, w.end),
        )
    ]
