"""The ``history`` plugin: records every variable change in SQLite, answers chart queries.

A history file that cannot be used (damaged, unwritable, from a newer version) does not
stop the daemon: the plugin stays up but disabled, says so once in the log and as an
``ErrorEvent`` naming the file, and every query raises :class:`HistoryUnavailable` with
the same reason. Nothing is moved or deleted: the user decides what to do with the file.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
from collections.abc import Awaitable
from typing import Any, TypeVar

from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure

from hadaemon.bus import ErrorEvent, Level, Subscription
from hadaemon.history.database import HistoryFileError
from hadaemon.history.queries import Reader, Window
from hadaemon.history.recorder import Recorder, variable_meta
from hadaemon.history.schedule import Daily
from hadaemon.history.settings import HistorySettings, parse_time_of_day
from hadaemon.history.writer import Writer
from hadaemon.plugin import Plugin, PluginContext
from hadaemon.registry import SYSTEM_PEER_ID

T = TypeVar("T")

MAX_POINTS_LIMIT = 10_000
"""The most points (or buckets) one query may ask for."""

DAY = 86400.0


class HistoryUnavailable(Exception):
    """History is disabled: its file could not be used (the message says why)."""


class HistoryPlugin(Plugin):
    """Variable changes in SQLite, written in batches by one thread; queries downsampled."""

    name = "history"
    description = "records variable changes in SQLite for charts"
    schema = HistorySettings.schema()
    stop_timeout = 30.0

    def __init__(self, context: PluginContext) -> None:
        super().__init__(context)
        self.settings = HistorySettings.from_section(context.config)
        self.path = self.settings.file(context.daemon_config.core.state_dir)
        self.unavailable: str | None = "history is not started"
        self.recorder: Recorder | None = None
        self.purged = 0
        self.purges = 0
        self._purging = 0
        self._writer: Writer | None = None
        self._reader: Reader | None = None
        self._subscription: Subscription | None = None
        self._timer: LoopingCall | None = None
        self._purge_schedule: Daily | None = None

    def start(self) -> Deferred[None]:
        """Listen at once, open the file in the writer's thread; the daemon waits."""
        writer = Writer(self.path, self.reactor)
        # Listen before the file is open, in this very turn: what plugins started after
        # this one report as they start is recorded too; the writer takes it once open.
        recorder = Recorder(self.settings, writer, self.registry, self.reactor,
                            self.log, self._report)
        self._subscription = self.bus.subscribe(
            "variable/#", recorder.on_change, name="history recorder")
        opening = writer.start()
        return opening.addCallbacks(
            lambda purged_before: self._opened(writer, recorder, purged_before),
            self._not_opened)

    def _opened(self, writer: Writer, recorder: Recorder,
                purged_before: float | None) -> Deferred[None] | None:
        if not self.running:  # stopped while the file was opening: write, close
            recorder.hand_over()
            return writer.close()
        self._writer = writer
        self._reader = Reader(self.path)
        self.unavailable = None
        self.recorder = recorder
        self._timer = LoopingCall(recorder.hand_over)
        self._timer.clock = self.reactor
        self._timer.start(self.settings.batch_interval, now=True)
        hour, minute = parse_time_of_day(self.settings.purge_at)
        self._purge_schedule = Daily(self.reactor, hour, minute, self._scheduled_purge)
        self._purge_schedule.start()
        # A daemon that is never up at purge_at (a machine off at night) still purges:
        # at start, when the last purge is more than a day behind.
        cutoff = self.reactor.seconds() - self.settings.keep_days * DAY
        if purged_before is None or cutoff - purged_before > DAY:
            self._scheduled_purge()
        self.log.info("history: recording to {path} (kept {days} days)",
                      path=str(self.path), days=self.settings.keep_days)
        return None

    def _not_opened(self, failure: Failure) -> None:
        if self._subscription is not None:
            self._subscription.cancel()
            self._subscription = None
        failure.trap(HistoryFileError)
        self._disable(failure.getErrorMessage())

    async def stop(self) -> None:
        """Stop listening, write everything still waiting, close the file."""
        if self._subscription is not None:
            self._subscription.cancel()
        if self._timer is not None and self._timer.running:
            self._timer.stop()
        if self._purge_schedule is not None:
            self._purge_schedule.stop()
        if self.recorder is not None:
            self.recorder.hand_over()
        if self._writer is not None:
            await self._writer.close()
        if self._reader is not None:
            self._reader.close()
        if self.recorder is not None:
            self.log.info("history: closed {path}: {recorded} changes recorded, {lost} "
                          "dropped or failed", path=str(self.path),
                          recorded=self.recorder.recorded,
                          lost=self.recorder.dropped + self.recorder.failed)
        self.unavailable = "history is stopped"

    # -- what others call (reactor thread) -------------------------------------------

    async def query(self, *, source: str, peer_id: int, channel: int, name: str,
                    start: float, end: float, max_points: int = 1000) -> dict[str, Any]:
        """A chart of one variable between ``start`` and ``end`` (Unix seconds).

        Numbers come as ``points`` ``[[t, value], ...]`` while there are at most
        ``max_points`` changes, else as ``buckets`` ``[[t_start, min, max, mean, count],
        ...]`` (at most ``max_points``); other values as ``points``, the state changes
        (thinned to each bucket's first and last when there are more). ``points`` start
        with the change in force at ``start`` (its own, earlier, time); ``buckets``
        answers carry it as ``initial``. ValueError for bad arguments (naming them),
        HistoryUnavailable when history is disabled.
        """
        window = self._window(source, peer_id, channel, name, start, end, max_points)
        if self.unavailable is not None or self._reader is None:
            raise HistoryUnavailable(self.unavailable or "history is not started")
        try:
            answer = await _await(deferToThreadPool(
                self.reactor, self.reactor.getThreadPool(), self._reader.query, window))
        except HistoryFileError as exc:
            raise HistoryUnavailable(str(exc)) from exc
        if answer is not None:
            return answer
        what = f"variable {source}/{peer_id}/{channel}/{name}"
        if window.type is None:
            raise ValueError(f"unknown {what}: not in the registry, and no history of it")
        if not self.settings.records(source, name):
            raise ValueError(f"{what} is not recorded: [history] include/exclude "
                             "settings leave it out")
        return {"variable": {"source": source, "peer_id": peer_id, "channel": channel,
                             "name": name, "type": window.type, "unit": window.unit},
                "start": start, "end": end, "count": 0, "downsampled": False,
                "points": []}

    def flush(self) -> Deferred[None]:
        """Fires once every change received so far is in the file (tests, tools)."""
        if self.recorder is None or self._writer is None:
            raise HistoryUnavailable(self.unavailable or "history is not started")
        self.recorder.hand_over()
        return self._writer.flush()

    def purge(self, now: float | None = None) -> Deferred[int]:
        """Delete changes older than ``keep_days`` before ``now`` (default: the clock's
        now); fires with how many were deleted. The daily schedule calls it."""
        if self._writer is None:
            raise HistoryUnavailable(self.unavailable or "history is not started")
        moment = self.reactor.seconds() if now is None else now
        self._purging += 1
        d = self._writer.purge(moment - self.settings.keep_days * DAY)

        def done(deleted: int) -> int:
            self.purged += deleted
            self.purges += 1
            self.log.info("history: purged {n} changes older than {days} days",
                          n=deleted, days=self.settings.keep_days)
            return deleted

        def settled(result: object) -> object:
            self._purging -= 1
            return result

        return d.addCallback(done).addBoth(settled)

    def stats(self) -> dict[str, Any]:
        """Figures for metrics and status: counts, queue depth, the file's size."""
        recorder = self.recorder
        size = 0
        for suffix in ("", "-wal"):
            with contextlib.suppress(OSError):
                size += os.stat(f"{self.path}{suffix}").st_size
        return {
            "enabled": self.unavailable is None,
            "error": self.unavailable,
            "path": str(self.path),
            "file_bytes": size,
            "recorded": recorder.recorded if recorder else 0,
            "dropped": recorder.dropped if recorder else 0,
            "failed": recorder.failed if recorder else 0,
            "unsupported": recorder.unsupported if recorder else 0,
            "queued": recorder.queued if recorder else 0,
            "max_queued": self.settings.max_queued,
            "purged": self.purged,
            "purges": self.purges,
            "purging": self._purging > 0,
        }

    # -- inside ----------------------------------------------------------------------

    def _window(self, source: Any, peer_id: Any, channel: Any, name: Any, start: Any,
                end: Any, max_points: Any) -> Window:
        for arg, value in (("source", source), ("name", name)):
            if not isinstance(value, str) or not value:
                raise ValueError(f"{arg}: expected a non-empty string, got {value!r}")
        for arg, value in (("peer_id", peer_id), ("channel", channel),
                           ("max_points", max_points)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{arg}: expected an integer, got {value!r}")
        for arg, value in (("start", start), ("end", end)):
            if (isinstance(value, bool) or not isinstance(value, int | float)
                    or not math.isfinite(value)):
                raise ValueError(f"{arg}: expected a time in Unix seconds, got {value!r}")
        if end < start:
            raise ValueError(f"end ({end}) is before start ({start})")
        if not 1 <= max_points <= MAX_POINTS_LIMIT:
            raise ValueError(f"max_points: expected 1 to {MAX_POINTS_LIMIT}, got {max_points}")
        key = (source, peer_id, channel, name)
        kind: str | None
        unit: str | None
        if peer_id == SYSTEM_PEER_ID:
            kind, unit = ("any", None) if name in self.registry.system_variables() else (
                None, None)
        else:
            try:
                device = self.registry.device(peer_id)
                device.variable(channel, name)
            except Exception:
                kind, unit = None, None
            else:
                kind, unit = variable_meta(self.registry, key) if device.source == source \
                    else (None, None)
        return Window(key, float(start), float(end), max_points, kind, unit)

    def _scheduled_purge(self) -> None:
        def failed(failure: Failure) -> None:
            self._report(f"history: the daily purge of {self.path} failed: "
                         f"{failure.getErrorMessage()}", Level.ERROR)

        self.purge().addErrback(failed)

    def _disable(self, reason: str) -> None:
        self.unavailable = reason
        self._report(f"history disabled: {reason}", Level.ERROR)

    def _report(self, message: str, level: Level) -> None:
        if level <= Level.ERROR:
            self.log.error("{message}", message=message)
        else:
            self.log.warn("{message}", message=message)
        self.bus.publish(ErrorEvent(f"plugin:{self.name}", message, level,
                                    {"path": str(self.path)}))


def _await(d: Deferred[T]) -> Awaitable[T]:
    # query() is awaited by whoever serves it: from an asyncio task (which cannot await
    # a Deferred unless hadaemon.aio wraps it) or from a coroutine Twisted drives
    # (Deferred.fromCoroutine, klein; it cannot await a future). Told apart by whether
    # an asyncio task runs this step; a coroutine Twisted starts from inside a task's
    # step is the one case this gets wrong (wrap it in hadaemon.aio.as_deferred).
    if _in_asyncio_task():
        return d.asFuture(asyncio.get_running_loop())
    return d


def _in_asyncio_task() -> bool:
    try:
        return asyncio.current_task() is not None
    except RuntimeError:
        return False
