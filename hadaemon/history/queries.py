"""Chart queries on the history file, downsampled in SQL: at most about ``max_points``
per answer whatever the time range holds.

Runs in a worker thread (never the reactor's) on its own read-only connection; WAL lets
it read while the writer writes.
"""

from __future__ import annotations

import math
import pathlib
import sqlite3
import threading
from dataclasses import dataclass
from typing import Any

from hadaemon.history.database import HistoryFileError, SeriesKey, connect, decode

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
        """The chart of ``window``, or None if the variable has no history at all;
        HistoryFileError naming the file when SQLite fails."""
        with self._lock:
            try:
                if self._conn is None:
                    self._conn = connect(self.path, readonly=True)
                conn = self._conn
                # One read transaction: one snapshot even while batches land.
                conn.execute("BEGIN")
                try:
                    return _query(conn, window)
                finally:
                    conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise HistoryFileError(f"reading {self.path} failed: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


MINUTE = 60


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
    span = _Span(w)
    count, numbers = _counts(conn, sid, span)
    initial = _value_before(conn, sid, w.start)
    numeric = kind in NUMERIC_TYPES or (kind == "any" and count > 0 and numbers == count)
    answer: dict[str, Any] = {
        "variable": variable, "start": w.start, "end": w.end, "count": count,
        "downsampled": count > w.max_points,
    }
    if numeric and count > w.max_points:
        width, buckets = _buckets(conn, sid, span)
        answer["bucket_seconds"] = width
        answer["initial"] = initial
        answer["buckets"] = buckets
        return answer
    if count > w.max_points:
        points = _state_changes(conn, sid, w, max(1, w.max_points // 2))
    else:
        points = _all_points(conn, sid, w)
    answer["points"] = ([initial] if initial is not None else []) + points
    return answer


class _Span:
    """A window cut into whole minutes (read from ``minutes``) and the ragged edges
    before and after them (read from ``changes``)."""

    def __init__(self, w: Window) -> None:
        self.window = w
        first, last = math.ceil(w.start / MINUTE), math.floor(w.end / MINUTE) - 1
        self.minutes: tuple[int, int] | None = (first, last) if first <= last else None
        # (from, to, to included)
        self.edges: list[tuple[float, float, bool]] = (
            [(w.start, first * MINUTE, False), ((last + 1) * MINUTE, w.end, True)]
            if self.minutes is not None else [(w.start, w.end, True)]
        )

    def raw(self, conn: sqlite3.Connection, sid: int, columns: str,
            extra: str = "") -> list[Any]:
        """Rows of ``changes`` in the edges."""
        rows: list[Any] = []
        for low, high, included in self.edges:
            if high < low or (high == low and not included):
                continue
            rows += conn.execute(
                f"SELECT {columns} FROM changes WHERE series = ? AND t >= ? "
                f"AND t {'<=' if included else '<'} ? {extra}", (sid, low, high),
            ).fetchall()
        return rows


def _counts(conn: sqlite3.Connection, sid: int, span: _Span) -> tuple[int, int]:
    """Changes in the window, and how many of them are numbers."""
    count = numbers = 0
    if span.minutes is not None:
        count, numbers = conn.execute(
            "SELECT coalesce(sum(changes), 0), coalesce(sum(numbers), 0) FROM minutes "
            "WHERE series = ? AND minute BETWEEN ? AND ?", (sid, *span.minutes),
        ).fetchone()
    for edge_count, edge_numbers in span.raw(conn, sid, "count(*), count(num)"):
        count += edge_count
        numbers += edge_numbers
    return int(count), int(numbers)


def _value_before(conn: sqlite3.Connection, sid: int, start: float) -> list[Any] | None:
    """``[t, value]`` of the last change before ``start``: the value in force at it."""
    row = conn.execute(
        "SELECT t, num, value FROM changes WHERE series = ? AND t < ? "
        "ORDER BY t DESC, seq DESC LIMIT 1", (sid, start),
    ).fetchone()
    return None if row is None else [row[0], decode(row[1], row[2])]


def _all_points(conn: sqlite3.Connection, sid: int, w: Window) -> list[list[Any]]:
    return [
        [t, decode(num, packed)]
        for t, num, packed in conn.execute(
            "SELECT t, num, value FROM changes WHERE series = ? AND t >= ? AND t <= ? "
            "ORDER BY t, seq", (sid, w.start, w.end),
        )
    ]


def _buckets(conn: sqlite3.Connection, sid: int, span: _Span) -> tuple[float, list[list[Any]]]:
    """``(bucket seconds, [[t_start, min, max, mean, count], ...])`` per non-empty
    bucket, of the numbers (a NaN of a float variable is not aggregated). The mean is
    of the recorded values, not weighted by time.

    Buckets at least a minute wide are whole minutes, aligned on minutes (the first
    starts at ``start``): made of the minutes table plus the ragged edges. Narrower
    ones come from the changes themselves.
    """
    w = span.window
    width = (w.end - w.start) / w.max_points
    if width < MINUTE or span.minutes is None:
        last = w.max_points - 1  # a change at exactly ``end`` belongs to the last bucket
        return width, [
            [w.start + bucket * width, low, high, mean, n]
            for bucket, low, high, mean, n in conn.execute(
                "SELECT min(CAST((t - ?1) / ?2 AS INTEGER), ?3) AS b, min(num), max(num), "
                "avg(num), count(num) FROM changes "
                "WHERE series = ?4 AND t >= ?1 AND t <= ?5 AND num IS NOT NULL "
                "GROUP BY b ORDER BY b",
                (w.start, width, last, sid, w.end),
            )
        ]
    origin = math.floor(w.start / MINUTE) * MINUTE
    size = MINUTE * math.ceil(width / MINUTE)
    if math.ceil((w.end - origin) / size) > w.max_points:  # start is not on a minute
        size += MINUTE
    last = max(0, math.ceil((w.end - origin) / size) - 1)
    sums: dict[int, list[Any]] = {}
    for bucket, low, high, total, n in conn.execute(
        "SELECT min((minute * 60 - ?1) / ?2, ?3) AS b, min(low), max(high), sum(total), "
        "sum(numbers) FROM minutes WHERE series = ?4 AND minute BETWEEN ?5 AND ?6 "
        "AND numbers > 0 GROUP BY b",
        (origin, size, last, sid, *span.minutes),
    ):
        sums[bucket] = [low, high, total, n]
    for t, num in span.raw(conn, sid, "t, num", "AND num IS NOT NULL"):
        bucket = min(int((t - origin) // size), last)
        entry = sums.get(bucket)
        if entry is None:
            sums[bucket] = [num, num, float(num), 1]
        else:
            entry[0], entry[1] = min(entry[0], num), max(entry[1], num)
            entry[2] += num
            entry[3] += 1
    return float(size), [
        [max(w.start, float(origin + bucket * size)), low, high, total / n, n]
        for bucket, (low, high, total, n) in sorted(sums.items())
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
            " SELECT t, seq, num, value,"
            "  row_number() OVER (PARTITION BY b ORDER BY t, seq) AS first,"
            "  row_number() OVER (PARTITION BY b ORDER BY t DESC, seq DESC) AS last"
            " FROM (SELECT t, seq, num, value, min(CAST((t - ?1) / ?2 AS INTEGER), ?3) AS b"
            "       FROM changes WHERE series = ?4 AND t >= ?1 AND t <= ?5))"
            " WHERE first = 1 OR last = 1 ORDER BY t, seq",
            (w.start, width, buckets - 1, sid, w.end),
        )
    ]
