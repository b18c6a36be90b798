"""The reactor side of recording: filter changes, batch them, hand batches to the writer,
and account for every change (stored, dropped, refused, lost to a failed write).

Memory is bounded by ``[history].max_queued``: when that many changes wait for the disk,
new ones are dropped rather than queued (the newest go, what waits is kept: a chart
shows one gap instead of a hole spread across the backlog). Drops and failed writes are
counted, logged and published as ``ErrorEvent`` once when they start and once, with the
count, when they stop. Reactor thread only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.logger import Logger
from twisted.python.failure import Failure

from hadaemon.bus import Event, Level, VariableChanged
from hadaemon.history.database import BatchResult, Row, SeriesKey, SeriesMeta
from hadaemon.history.settings import HistorySettings
from hadaemon.history.writer import Writer
from hadaemon.registry import SYSTEM_PEER_ID, Registry
from hadaemon.values import copy

Report = Callable[[str, Level], None]
"""Publishes a problem for everyone to see (an ErrorEvent of the plugin)."""


class Recorder:
    """Counts: ``recorded`` (stored), ``dropped`` (the queue was full), ``failed`` (a
    write failed), ``unsupported`` (outside the value model); ``queued`` are waiting."""

    def __init__(self, settings: HistorySettings, writer: Writer, registry: Registry,
                 clock: Any, log: Logger, report: Report) -> None:
        self._settings = settings
        self._writer = writer
        self._registry = registry
        self._clock = clock
        self._log = log
        self._report = report
        self._recorded_keys: dict[SeriesKey, bool] = {}
        self._pending: list[Row] = []
        self._meta: dict[SeriesKey, SeriesMeta] = {}
        self._warned_unsupported: set[SeriesKey] = set()
        self.recorded = 0
        self.dropped = 0
        self.failed = 0
        self.unsupported = 0
        self.in_writer = 0  # handed over, not yet written
        self._dropping_since: float | None = None
        self._dropped_in_streak = 0
        self._failing_since: float | None = None
        self._failed_in_streak = 0

    @property
    def queued(self) -> int:
        """Changes waiting to be written (in the batch being built and in the writer)."""
        return self.in_writer + len(self._pending)

    def on_change(self, event: Event) -> None:
        """The bus subscriber: the hot path (one dict lookup and an append per change)."""
        if type(event) is not VariableChanged:
            return
        key = (event.source, event.peer_id, event.channel, event.name)
        wanted = self._recorded_keys.get(key)
        if wanted is None:
            wanted = self._first_sight(key)
        if not wanted:
            return
        if self.in_writer + len(self._pending) >= self._settings.max_queued:
            self._drop()
            return
        value = event.value
        if type(value) is list or type(value) is dict:
            value = copy(value)  # the writer packs it later; the owner may reuse it
        self._pending.append((key, event.timestamp, value))
        if len(self._pending) >= self._settings.batch_size:
            self.hand_over()

    def hand_over(self) -> None:
        """Give the writer what is waiting (the timer calls this every batch_interval)."""
        if not self._pending:
            return
        rows, self._pending = self._pending, []
        meta, self._meta = self._meta, {}
        self.in_writer += len(rows)
        self._writer.submit(rows, meta, lambda outcome: self._written(len(rows), outcome))

    def _first_sight(self, key: SeriesKey) -> bool:
        wanted = self._settings.records(key[0], key[3])
        self._recorded_keys[key] = wanted
        if wanted:
            self._meta[key] = variable_meta(self._registry, key)
        return wanted

    def _written(self, count: int, outcome: object) -> None:
        self.in_writer -= count
        if isinstance(outcome, BatchResult):
            self.recorded += outcome.stored
            self.unsupported += count - outcome.stored
            for key, reason in outcome.unsupported.items():
                if key not in self._warned_unsupported:
                    self._warned_unsupported.add(key)
                    self._log.warn("history: {key} not recorded: {reason}",
                                   key="/".join(map(str, key)), reason=reason)
            self._write_recovered()
        else:
            self._write_failed(count, outcome)
        if self._dropping_since is not None and self.queued <= self._settings.max_queued // 2:
            self._drops_over()

    # -- counting and reporting what is lost -----------------------------------------

    def _drop(self) -> None:
        self.dropped += 1
        self._dropped_in_streak += 1
        if self._dropping_since is None:
            self._dropping_since = self._clock.seconds()
            self._report(
                f"history: {self.queued} changes wait to be written (max_queued); the "
                "disk cannot keep up, new changes are dropped until it catches up",
                Level.WARNING,
            )

    def _drops_over(self) -> None:
        seconds = self._clock.seconds() - (self._dropping_since or 0.0)
        self._report(
            f"history: dropped {self._dropped_in_streak} changes in {seconds:.1f}s while "
            f"the disk could not keep up ({self.dropped} in all); recording again",
            Level.WARNING,
        )
        self._dropping_since, self._dropped_in_streak = None, 0

    def _write_failed(self, count: int, outcome: object) -> None:
        self.failed += count
        self._failed_in_streak += count
        if self._failing_since is None:
            self._failing_since = self._clock.seconds()
            reason = (outcome.getErrorMessage() if isinstance(outcome, Failure)
                      else repr(outcome))
            self._report(f"history: {reason}; {count} changes lost, retrying with the "
                         "next batch", Level.ERROR)

    def _write_recovered(self) -> None:
        if self._failing_since is None:
            return
        seconds = self._clock.seconds() - self._failing_since
        self._report(
            f"history: writing works again; {self._failed_in_streak} changes were lost "
            f"in {seconds:.1f}s of failed writes",
            Level.WARNING,
        )
        self._failing_since, self._failed_in_streak = None, 0


def variable_meta(registry: Registry, key: SeriesKey) -> SeriesMeta:
    """A variable's type and unit as the registry describes it (``any`` when it does
    not: system variables, or a device already gone)."""
    _source, peer_id, channel, name = key
    if peer_id == SYSTEM_PEER_ID:
        return "any", None
    try:
        spec = registry.variable(peer_id, channel, name).spec
    except Exception:
        return "any", None
    return str(spec.type.value), spec.unit
