"""The ``[history]`` section, declared once: schema, defaults, docs/config.md and the
typed settings the recorder runs with all come from :class:`HistorySettings`."""

from __future__ import annotations

import fnmatch
import pathlib
import re
from dataclasses import dataclass
from typing import Any, ClassVar

from hadaemon.config import Float, Int, List, Path, Settings, Str, setting
from hadaemon.config.errors import KeyPath
from hadaemon.config.schema import Context, Invalid

DEFAULT_FILE = "history.sqlite"
"""The database's name in ``[daemon].state_dir`` when ``path`` is not set."""

_TIME = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")


class TimeOfDay(Str):
    """A local time of day, ``"HH:MM"`` (24-hour clock)."""

    kind = 'a time of day "HH:MM"'

    def convert(self, value: Any, ctx: Context, path: KeyPath) -> Any:
        text = super().convert(value, ctx, path)
        if _TIME.fullmatch(text) is None:
            raise Invalid(f'expected a time of day "HH:MM" (00:00 to 23:59), got {text!r}')
        return text


def parse_time_of_day(text: str) -> tuple[int, int]:
    """``"04:12"`` -> ``(4, 12)``; ValueError for anything else."""
    match = _TIME.fullmatch(text)
    if match is None:
        raise ValueError(f'expected a time of day "HH:MM", got {text!r}')
    return int(match.group(1)), int(match.group(2))


@dataclass(frozen=True, kw_only=True)
class HistorySettings(Settings):
    """What the recorder records, where, for how long, and how it writes."""

    section_doc: ClassVar[str] = (
        "Variable changes recorded in SQLite for charts (docs/history.md)."
    )

    path: pathlib.Path | None = setting(Path(
        default=None,
        doc=f'The SQLite file; default "{DEFAULT_FILE}" in [daemon].state_dir. Its own '
        "file, beside it the -wal and -shm files of SQLite's write-ahead log.",
    ))
    keep_days: float = setting(Float(
        default=10.0, min=0.01,
        doc="Days of changes kept; older ones are purged once a day (the last change "
        "before the cut is kept, so the value in force then stays known).",
    ))
    purge_at: str = setting(TimeOfDay(
        default="04:12", doc="Local time of the daily purge."))
    batch_size: int = setting(Int(
        default=1000, min=1, max=100_000,
        doc="Most changes written in one transaction."))
    batch_interval: float = setting(Float(
        default=1.0, min=0.01, max=60.0,
        doc="Seconds between writes: a change reaches the file (and queries) within it."))
    max_queued: int = setting(Int(
        default=200_000, min=100,
        doc="Most changes waiting to be written. When the disk cannot keep up and this "
        "many wait, new changes are dropped, counted and reported (never unbounded "
        "memory).",
    ))
    include_sources: list[str] = setting(List(
        Str(non_empty=True), default=[],
        doc='Only these sources (adapters: "zigbee2mqtt", "demo", "system", ...) are '
        "recorded; empty: all.",
    ))
    exclude_sources: list[str] = setting(List(
        Str(non_empty=True), default=[], doc="Sources never recorded."))
    include_names: list[str] = setting(List(
        Str(non_empty=True), default=[],
        doc='Only variables whose name matches one of these patterns ("temperature", '
        '"*_power"; shell-style, case-sensitive) are recorded; empty: all.',
    ))
    exclude_names: list[str] = setting(List(
        Str(non_empty=True), default=[],
        doc='Variables whose name matches one of these patterns are never recorded '
        '(e.g. "linkquality"). Excludes win over includes.',
    ))

    def records(self, source: str, name: str) -> bool:
        """Whether a variable of ``source`` called ``name`` is recorded."""
        if self.include_sources and source not in self.include_sources:
            return False
        if source in self.exclude_sources:
            return False
        if self.include_names and not _matches(name, self.include_names):
            return False
        return not _matches(name, self.exclude_names)

    def file(self, state_dir: pathlib.Path) -> pathlib.Path:
        """The database file: ``path``, else ``DEFAULT_FILE`` in the state directory."""
        return self.path if self.path is not None else state_dir / DEFAULT_FILE


def _matches(name: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)
