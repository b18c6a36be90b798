"""Retention: the daily purge (on a fake clock), what it keeps, include/exclude."""

from __future__ import annotations

import math
import pathlib
import sqlite3
import time
from typing import Any

import pytest
from twisted.internet.task import Clock

from hadaemon.app import prepare
from hadaemon.daemon import Daemon
from hadaemon.history import HistoryPlugin
from hadaemon.history.schedule import Daily, next_time
from hadaemon.testing import wait_until
from tests.history.helpers import add_meter, config, count_up, run

DAY = 86400.0


def test_purge_keeps_keep_days_and_the_value_in_force_at_the_cut(
        tmp_path: pathlib.Path) -> None:
    cfg = config(tmp_path, history={"keep_days": 10})

    async def scenario(daemon: Daemon, history: HistoryPlugin, reactor: Any) -> Any:
        # a file never purged is purged at start (here: nothing to delete yet)
        await wait_until(reactor, lambda: history.stats()["purges"] == 1, timeout=30,
                         what="the purge at start")
        now = reactor.seconds()
        meter = add_meter(daemon)
        ages = [30, 20, 12, 10.5, 9, 1, 0]  # days
        for i, age in enumerate(ages):
            daemon.registry.report(meter.peer_id, 0, "count", i, timestamp=now - age * DAY)
        # a variable with nothing newer than the cut keeps only its last change
        for i, age in enumerate([40, 15, 11]):
            daemon.registry.report(meter.peer_id, 0, "label", f"v{i}",
                                   timestamp=now - age * DAY)
        await history.flush()
        deleted = await history.purge(now)
        args = {"source": "test", "peer_id": meter.peer_id, "channel": 0,
                "start": now - 60 * DAY, "end": now}
        counts = await history.query(name="count", **args)
        labels = await history.query(name="label", **args)
        again = await history.purge(now)
        return now, deleted, counts, labels, again

    now, deleted, counts, labels, again = run(cfg, scenario)
    assert deleted == 3 + 2
    assert [v for _, v in counts["points"]] == [3, 4, 5, 6]  # 10.5 days old: in force
    assert counts["points"][0][0] == pytest.approx(now - 10.5 * DAY)
    assert labels["points"] == [[pytest.approx(now - 11 * DAY), "v2"]]
    assert again == 0
    conn = sqlite3.connect(tmp_path / "var" / "history.sqlite")
    oldest_minute = conn.execute("SELECT min(minute) FROM minutes").fetchone()[0]
    conn.close()
    assert oldest_minute == math.floor((now - 9 * DAY) / 60)  # the 9-day-old change


def test_the_purge_runs_daily_at_purge_at() -> None:
    clock = Clock()
    clock.advance(time.mktime((2026, 3, 14, 1, 30, 0, 0, 0, -1)))
    runs: list[float] = []
    daily = Daily(clock, 4, 12, lambda: runs.append(clock.seconds()))
    daily.start()
    first = time.mktime((2026, 3, 14, 4, 12, 0, 0, 0, -1))
    assert daily.next_run == first
    clock.advance(first - clock.seconds() - 1)
    assert runs == []
    clock.advance(1)
    assert runs == [first]
    second = time.mktime((2026, 3, 15, 4, 12, 0, 0, 0, -1))
    assert daily.next_run == second
    clock.advance(second - clock.seconds())
    assert runs == [first, second]
    daily.stop()
    assert clock.getDelayedCalls() == []


def test_next_time_rolls_over_the_end_of_the_year() -> None:
    now = time.mktime((2026, 12, 31, 23, 59, 0, 0, 0, -1))
    assert next_time(now, 0, 0) == time.mktime((2027, 1, 1, 0, 0, 0, 0, 0, -1))
    assert next_time(now - 120, 23, 58) == now - 60


def test_the_plugin_schedules_its_purge_at_purge_at(tmp_path: pathlib.Path) -> None:
    cfg = config(tmp_path, history={"purge_at": "23:45"})

    async def scenario(daemon: Daemon, history: HistoryPlugin, reactor: Any) -> Any:
        schedule = history._purge_schedule
        assert schedule is not None and schedule.next_run is not None
        return reactor.seconds(), schedule.next_run

    now, next_run = run(cfg, scenario)
    assert next_run == pytest.approx(next_time(now, 23, 45), abs=0.01)
    assert time.localtime(round(next_run))[3:5] == (23, 45)


def test_purge_at_must_be_a_time_of_day(tmp_path: pathlib.Path) -> None:
    prepared = prepare({"daemon": {"state_dir": str(tmp_path), "plugins": ["history"]},
                        "history": {"purge_at": "25:00", "keep_days": 0}},
                       base_dir=tmp_path, environ={}, strict=True)
    text = "\n".join(prepared.errors)
    assert '[history].purge_at: expected a time of day "HH:MM" (00:00 to 23:59), got ' \
           "'25:00'" in text
    assert "[history].keep_days" in text


def test_include_and_exclude(tmp_path: pathlib.Path) -> None:
    cfg = config(tmp_path, history={
        "include_sources": ["test", "zigbee2mqtt", "system"],
        "exclude_sources": ["system"],
        "include_names": ["count", "power", "link*"],
        "exclude_names": ["linkquality"],
    })

    async def scenario(daemon: Daemon, history: HistoryPlugin, reactor: Any) -> Any:
        for source in ("test", "zigbee2mqtt", "other"):
            meter = add_meter(daemon, source=source)
            daemon.registry.report_many(meter.peer_id, 0, {
                "count": 1, "power": 2.0, "linkquality": 3, "label": "x"})
        daemon.registry.set_system_variable("count", 5)
        await history.flush()

    run(cfg, scenario)
    conn = sqlite3.connect(tmp_path / "var" / "history.sqlite")
    recorded = sorted(conn.execute(
        "SELECT source, name FROM series JOIN changes ON series = id"))
    conn.close()
    assert recorded == [("test", "count"), ("test", "power"),
                        ("zigbee2mqtt", "count"), ("zigbee2mqtt", "power")]


def test_all_variables_by_default_system_ones_too(tmp_path: pathlib.Path) -> None:
    cfg = config(tmp_path, plugins=("history", "heartbeat"), heartbeat={"interval": 0.1},
                 history={"batch_interval": 0.05})

    async def scenario(daemon: Daemon, history: HistoryPlugin, reactor: Any) -> Any:
        await wait_until(reactor, lambda: history.stats()["recorded"] >= 3, timeout=30,
                         what="three heartbeats recorded")
        return await history.query(source="system", peer_id=0, channel=-1,
                                   name="heartbeat", start=0, end=reactor.seconds() + 1)

    answer = run(cfg, scenario)
    assert answer["variable"]["type"] == "any"
    values = [v for _, v in answer["points"]]
    assert values[:3] == [1, 2, 3]


def test_a_purge_more_than_a_day_behind_runs_at_start(tmp_path: pathlib.Path) -> None:
    # A daemon never up at purge_at (a machine off at night) still purges.
    cfg = config(tmp_path, history={"keep_days": 10, "purge_at": "04:12"})
    path = tmp_path / "var" / "history.sqlite"

    async def fill(daemon: Daemon, history: HistoryPlugin, reactor: Any) -> Any:
        await wait_until(reactor, lambda: history.stats()["purges"] == 1, timeout=30,
                         what="the purge at start of a new file")
        count_up(daemon, add_meter(daemon), 0, 5, reactor.seconds() - 30 * DAY)

    async def restart(daemon: Daemon, history: HistoryPlugin, reactor: Any) -> Any:
        purging = history.stats()["purging"]  # asked for as the file opened, or not
        await wait_until(reactor, lambda: not history.stats()["purging"], timeout=30,
                         what="no purge running")
        return purging, history.stats()["purged"]

    run(cfg, fill)
    assert run(cfg, restart) == (False, 0)  # purged just now: not due
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value = value - 2 * 86400 WHERE key = 'purged_before'")
    conn.commit()
    conn.close()
    assert run(cfg, restart) == (True, 4)  # two days behind: due; the last one is kept
