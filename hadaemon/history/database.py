"""The history file: SQLite schema, opening, writing batches and purging.

Plain functions on a ``sqlite3`` connection, no Twisted: the writer thread
(:mod:`hadaemon.history.writer`) is their only caller, the reader (:mod:`.queries`)
only reads. One row per change in ``changes``; a number is stored as a number (column
``num``, so SQL aggregates it), anything else in the value model's packed form (column
``value``), so every value comes back as it was recorded.
"""

from __future__ import annotations

import math
import pathlib
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from hadaemon.values import UnsupportedValue, pack, unpack

SCHEMA_VERSION = 1

SeriesKey = tuple[str, int, int, str]
"""A variable: source, peer id, channel, name."""

Row = tuple[SeriesKey, float, Any]
"""One change as the reactor hands it over: variable, timestamp, value."""

SeriesMeta = tuple[str, str | None]
"""A variable's type (a ``ValueType`` value) and unit, stored with its first change."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    peer_id INTEGER NOT NULL,
    channel INTEGER NOT NULL,
    name TEXT NOT NULL,
    type TEXT NOT NULL,
    unit TEXT,
    UNIQUE (source, peer_id, channel, name)
);
-- Clustered by variable and time (WITHOUT ROWID): a chart reads one contiguous range.
-- num has no declared type: SQLite keeps an int an int and a float a float. seq tells
-- apart changes of one variable with the same timestamp.
CREATE TABLE IF NOT EXISTS changes (
    series INTEGER NOT NULL,
    t REAL NOT NULL,
    seq INTEGER NOT NULL,
    num,
    value BLOB,
    PRIMARY KEY (series, t, seq)
) WITHOUT ROWID;
-- Per variable and minute: what a long range's buckets are made of, so a day's chart
-- reads 1,440 rows instead of 86,400 (benchmarks/history.py). low/high/total/numbers
-- are of the numbers only; changes counts every change.
CREATE TABLE IF NOT EXISTS minutes (
    series INTEGER NOT NULL,
    minute INTEGER NOT NULL,
    low,
    high,
    total REAL NOT NULL,
    numbers INTEGER NOT NULL,
    changes INTEGER NOT NULL,
    PRIMARY KEY (series, minute)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
"""

_INT_MIN, _INT_MAX = -(1 << 63), (1 << 63) - 1


class HistoryFileError(Exception):
    """The history file cannot be opened or written; the message names the file."""


def connect(path: pathlib.Path, *, readonly: bool = False) -> sqlite3.Connection:
    """A connection to ``path`` in WAL mode; with ``readonly`` it may not write.

    ``check_same_thread`` is off: each connection is used by one thread at a time (the
    writer's own, or the reader's under its lock), not always the one that opened it.
    """
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10.0)
    if readonly:
        conn.execute("PRAGMA query_only = 1")
    return conn


def open_database(path: pathlib.Path) -> sqlite3.Connection:
    """Open (creating) the history file, WAL mode, schema in place.

    Raises :class:`HistoryFileError` naming the file and what is wrong with it.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HistoryFileError(f"cannot create the directory of {path}: {exc}") from exc
    conn: sqlite3.Connection | None = None
    try:
        conn = connect(path)
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise HistoryFileError(
                f"{path} was written by a newer hadaemon (history schema {version}, this "
                f"one knows {SCHEMA_VERSION})"
            )
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise HistoryFileError(f"{path}: SQLite refused WAL mode (journal mode {mode})")
        # A power cut may lose the last transactions, never corrupt the file (WAL).
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.executescript(_SCHEMA)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        # Damage anywhere in the schema or the index shows here, not at the first write.
        conn.execute("SELECT count(*) FROM series").fetchone()
    except sqlite3.Error as exc:
        if conn is not None:
            conn.close()
        raise HistoryFileError(f"cannot use {path} as the history file: {exc}") from exc
    except HistoryFileError:
        if conn is not None:
            conn.close()
        raise
    return conn


def encode(value: Any) -> tuple[int | float | None, bytes | None]:
    """``(num, packed)``: a number that SQL can aggregate, or the packed value.

    Booleans are not numbers here (``True`` is not ``1`` in the value model); neither
    are NaN and infinities (SQLite turns NaN into NULL) nor ints beyond 64 bits.
    """
    kind = type(value)
    if kind is float and math.isfinite(value):
        return value, None
    if kind is int and _INT_MIN <= value <= _INT_MAX:
        return value, None
    return None, pack(value)


def decode(num: Any, packed: bytes | None) -> Any:
    """The value :func:`encode` stored."""
    return unpack(packed) if packed is not None else num


class BatchResult:
    """What writing one batch did: rows stored, and variables whose value was refused."""

    __slots__ = ("stored", "unsupported")

    def __init__(self) -> None:
        self.stored = 0
        self.unsupported: dict[SeriesKey, str] = {}


_UPSERT_MINUTE = """
INSERT INTO minutes VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (series, minute) DO UPDATE SET
    low = min(coalesce(low, excluded.low), coalesce(excluded.low, low)),
    high = max(coalesce(high, excluded.high), coalesce(excluded.high, high)),
    total = total + excluded.total,
    numbers = numbers + excluded.numbers,
    changes = changes + excluded.changes
"""


class HistoryFile:
    """The writing side of an open history file; for the writer's thread only."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._series_ids: dict[SeriesKey, int] = {}
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        self._seq = int(meta.get("seq", 0))
        self.purged_before: float | None = meta.get("purged_before")
        """The cutoff of the last purge that finished (None: never purged)."""

    @classmethod
    def open(cls, path: pathlib.Path) -> HistoryFile:
        """Open ``path``; HistoryFileError naming it when it cannot be used."""
        conn = open_database(path)
        try:
            return cls(conn)
        except sqlite3.Error as exc:
            conn.close()
            raise HistoryFileError(f"cannot use {path} as the history file: {exc}") from exc

    def close(self) -> None:
        self.conn.close()

    def write(self, rows: Sequence[Row], meta: Mapping[SeriesKey, SeriesMeta]) -> BatchResult:
        """Insert ``rows`` and their minutes in one transaction.

        ``meta`` holds the type and unit of variables seen for the first time by this
        run of the recorder (stored, or updated when the device was re-described).
        """
        result = BatchResult()
        conn = self.conn
        ids = self._series_ids
        seq = self._seq
        prepared: list[tuple[int, float, int, Any, bytes | None]] = []
        minutes: dict[tuple[int, int], list[Any]] = {}
        conn.execute("BEGIN IMMEDIATE")
        try:
            for key, info in meta.items():
                ids[key] = _upsert_series(conn, key, info)
            for key, t, value in rows:
                sid = ids.get(key)
                if sid is None:
                    sid = ids[key] = _series_id(conn, key)
                try:
                    num, packed = encode(value)
                except UnsupportedValue as exc:
                    result.unsupported[key] = str(exc)
                    continue
                seq += 1
                prepared.append((sid, t, seq, num, packed))
                _add_to_minute(minutes, sid, t, num)
            conn.executemany("INSERT INTO changes VALUES (?, ?, ?, ?, ?)", prepared)
            conn.executemany(_UPSERT_MINUTE, [(*k, *v) for k, v in minutes.items()])
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('seq', ?)", (seq,))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            # Ids handed out inside the rolled back transaction are gone with it.
            ids.clear()
            raise
        self._seq = seq
        result.stored = len(prepared)
        return result

    def purge_steps(self, cutoff: float, *, chunk: int = 5000) -> Iterator[int]:
        """Delete changes older than ``cutoff``, ``chunk`` rows per transaction.

        Yields the rows deleted by each step, so the writer can write waiting batches
        in between. The last change before ``cutoff`` of each variable is kept: it is
        the value in force at the cut, which a chart of the oldest kept day starts with.
        """
        conn = self.conn
        series = [row[0] for row in conn.execute("SELECT id FROM series ORDER BY id")]
        for sid in series:
            # Minutes serve charts of the kept days only.
            conn.execute("DELETE FROM minutes WHERE series = ? AND minute < ?",
                         (sid, math.floor(cutoff / 60)))
            kept = conn.execute(
                "SELECT max(t) FROM changes WHERE series = ? AND t < ?", (sid, cutoff)
            ).fetchone()[0]
            while kept is not None:
                deleted = conn.execute(
                    "DELETE FROM changes WHERE (series, t, seq) IN (SELECT series, t, seq "
                    "FROM changes WHERE series = ? AND t < ? LIMIT ?)", (sid, kept, chunk),
                ).rowcount
                if deleted:
                    yield deleted
                if deleted < chunk:
                    break
        conn.execute("INSERT OR REPLACE INTO meta VALUES ('purged_before', ?)", (cutoff,))
        self.purged_before = cutoff


def _add_to_minute(minutes: dict[tuple[int, int], list[Any]], sid: int, t: float,
                   num: int | float | None) -> None:
    key = (sid, math.floor(t / 60))
    entry = minutes.get(key)
    if entry is None:
        if num is None:
            minutes[key] = [None, None, 0.0, 0, 1]
        else:
            minutes[key] = [num, num, float(num), 1, 1]
        return
    entry[4] += 1
    if num is not None:
        if entry[0] is None or num < entry[0]:
            entry[0] = num
        if entry[1] is None or num > entry[1]:
            entry[1] = num
        entry[2] += num
        entry[3] += 1


def _upsert_series(conn: sqlite3.Connection, key: SeriesKey, info: SeriesMeta) -> int:
    row = conn.execute(
        "INSERT INTO series (source, peer_id, channel, name, type, unit) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (source, peer_id, channel, name) "
        "DO UPDATE SET type = excluded.type, unit = excluded.unit RETURNING id",
        (*key, *info),
    ).fetchone()
    return int(row[0])


def _series_id(conn: sqlite3.Connection, key: SeriesKey) -> int:
    # A variable known from an earlier run (or whose meta went with a failed batch):
    # keep the type stored then.
    conn.execute(
        "INSERT OR IGNORE INTO series (source, peer_id, channel, name, type) "
        "VALUES (?, ?, ?, ?, 'any')", key,
    )
    row = conn.execute(
        "SELECT id FROM series WHERE source = ? AND peer_id = ? AND channel = ? "
        "AND name = ?", key,
    ).fetchone()
    return int(row[0])
