"""A history file that cannot be used, and a disk that cannot keep up: the daemon runs
on, and what is lost is counted and reported."""

from __future__ import annotations

import pathlib
import sqlite3
from typing import Any

import pytest

from hadaemon.bus import ErrorEvent, Event, Level
from hadaemon.daemon import Daemon
from hadaemon.history import HistoryPlugin, HistoryUnavailable
from hadaemon.history.database import HistoryFile
from hadaemon.testing import capture_logs, wait_until
from tests.history.helpers import add_meter, config, count_up, errors_of, run

T0 = 1_700_000_000.0


async def disabled_but_daemon_runs(daemon: Daemon, history: HistoryPlugin,
                                   reactor: Any) -> Any:
    thermometer = daemon.registry.find("demo", "thermometer")
    assert thermometer is not None
    await wait_until(reactor, lambda: daemon.registry.get_value(
        thermometer.peer_id, 0, "temperature"), timeout=30, what="the demo reporting")
    with pytest.raises(HistoryUnavailable) as raised:
        await history.query(source="demo", peer_id=thermometer.peer_id, channel=0,
                            name="temperature", start=0, end=reactor.seconds())
    assert daemon.failed == {}
    return str(raised.value), history.stats()


def test_a_damaged_file_disables_history_and_is_left_alone(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "var" / "history.sqlite"
    path.parent.mkdir(parents=True)
    garbage = b"this is not an SQLite file" * 100
    path.write_bytes(garbage)
    events: list[Event] = []
    cfg = config(tmp_path, plugins=("history", "demo"), demo={"interval": 0.05})
    with capture_logs() as logs:
        message, stats = run(cfg, disabled_but_daemon_runs, events=events)
    reason = f"cannot use {path} as the history file: file is not a database"
    assert message == reason
    assert stats["enabled"] is False and stats["error"] == reason
    errors = [e for e in events if isinstance(e, ErrorEvent) and e.source == "plugin:history"]
    assert [(e.message, e.level) for e in errors] == [(f"history disabled: {reason}",
                                                       Level.ERROR)]
    assert f"history disabled: {reason}" in logs.text()
    assert path.read_bytes() == garbage  # nothing moved, nothing overwritten


def test_an_unusable_path_disables_history(tmp_path: pathlib.Path) -> None:
    (tmp_path / "adir").mkdir()
    events: list[Event] = []
    cfg = config(tmp_path, plugins=("history", "demo"), demo={"interval": 0.05},
                 history={"path": "adir"})
    message, _ = run(cfg, disabled_but_daemon_runs, events=events)
    assert message.startswith(f"cannot use {tmp_path / 'adir'} as the history file: ")
    assert errors_of(events) == [f"history disabled: {message}"]


def test_a_file_from_a_newer_version_is_refused(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "var" / "history.sqlite"
    path.parent.mkdir(parents=True)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    cfg = config(tmp_path, plugins=("history", "demo"), demo={"interval": 0.05})
    message, _ = run(cfg, disabled_but_daemon_runs)
    assert message == (f"{path} was written by a newer hadaemon (history schema 99, this "
                       "one knows 1)")


def test_changes_beyond_max_queued_are_dropped_counted_and_reported(
        tmp_path: pathlib.Path) -> None:
    # The writer gets nothing until the test flushes: the queue fills as it would when
    # the disk cannot keep up.
    cfg = config(tmp_path, history={"max_queued": 100, "batch_size": 100_000,
                                    "batch_interval": 60.0})
    events: list[Event] = []

    async def scenario(daemon: Daemon, history: HistoryPlugin, reactor: Any) -> Any:
        meter = add_meter(daemon)
        count_up(daemon, meter, 0, 150, T0)
        full = history.stats()
        reported_while_full = errors_of(events)
        await history.flush()  # the backlog is written: recording again
        daemon.registry.report(meter.peer_id, 0, "count", 1000, timestamp=T0 + 1000)
        await history.flush()
        answer = await history.query(source="test", peer_id=meter.peer_id, channel=0,
                                     name="count", start=T0, end=T0 + 2000)
        return full, reported_while_full, history.stats(), answer

    full, while_full, after, answer = run(cfg, scenario, events=events)
    assert (full["queued"], full["dropped"], full["recorded"]) == (100, 50, 0)
    assert while_full == ["history: 100 changes wait to be written (max_queued); the disk "
                          "cannot keep up, new changes are dropped until it catches up"]
    assert errors_of(events)[1].startswith("history: dropped 50 changes in ")
    assert errors_of(events)[1].endswith("(50 in all); recording again")
    assert (after["recorded"], after["dropped"], after["queued"]) == (101, 50, 0)
    # the oldest were kept, the newest dropped: one gap, from 100 to 149
    assert [v for _, v in answer["points"]] == [*range(100), 1000]


def test_a_failed_write_is_counted_reported_and_recording_goes_on(
        tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The one fake here: the disk fills up for exactly one batch (the writer's thread
    # calls HistoryFile.write; SQLite raises this when the disk is full).
    real_write = HistoryFile.write
    calls = {"n": 0}

    def write(self: HistoryFile, *args: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise sqlite3.OperationalError("database or disk is full")
        return real_write(self, *args)

    monkeypatch.setattr(HistoryFile, "write", write)
    cfg = config(tmp_path, history={"batch_interval": 60.0})
    events: list[Event] = []

    async def scenario(daemon: Daemon, history: HistoryPlugin, reactor: Any) -> Any:
        meter = add_meter(daemon)
        count_up(daemon, meter, 0, 30, T0)
        await history.flush()
        failed = history.stats()
        count_up(daemon, meter, 30, 40, T0)
        await history.flush()
        answer = await history.query(source="test", peer_id=meter.peer_id, channel=0,
                                     name="count", start=T0, end=T0 + 100)
        return failed, history.stats(), answer

    failed, after, answer = run(cfg, scenario, events=events)
    path = tmp_path / "var" / "history.sqlite"
    assert (failed["failed"], failed["recorded"], failed["queued"]) == (30, 0, 0)
    assert (after["failed"], after["recorded"]) == (30, 10)
    assert [v for _, v in answer["points"]] == list(range(30, 40))
    messages = errors_of(events)
    assert messages[0] == (f"history: writing {path} failed: database or disk is full; "
                           "30 changes lost, retrying with the next batch")
    assert messages[1].startswith("history: writing works again; 30 changes were lost in ")
    assert [e.level for e in events if isinstance(e, ErrorEvent)] == [Level.ERROR,
                                                                      Level.WARNING]
