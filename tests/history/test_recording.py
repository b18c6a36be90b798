"""Changes recorded through a real daemon, read back exactly, written on stop."""

from __future__ import annotations

import math
import pathlib
import sqlite3
from typing import Any

from hadaemon.daemon import Daemon
from hadaemon.history import HistoryPlugin
from hadaemon.testing import wait_until
from hadaemon.values import same
from tests.history.helpers import add_meter, config, count_up, run

T0 = 1_700_000_000.0


def rows_in(path: pathlib.Path) -> list[tuple[str, str, float]]:
    conn = sqlite3.connect(path)
    try:
        return list(conn.execute(
            "SELECT s.source, s.name, c.t FROM changes c JOIN series s ON s.id = c.series "
            "ORDER BY c.t, c.seq"))
    finally:
        conn.close()


def test_demo_devices_are_recorded_in_wal_mode(tmp_path: pathlib.Path) -> None:
    cfg = config(tmp_path, plugins=("demo", "history"), demo={"interval": 0.05},
                 history={"batch_interval": 0.05})

    async def scenario(daemon: Daemon, history: HistoryPlugin, reactor: Any) -> Any:
        thermometer = daemon.registry.find("demo", "thermometer")
        assert thermometer is not None
        await wait_until(reactor, lambda: history.stats()["recorded"] >= 10, timeout=30,
                         what="ten demo changes recorded")
        await history.flush()
        return await history.query(source="demo", peer_id=thermometer.peer_id, channel=0,
                                   name="temperature", start=0.0, end=reactor.seconds())

    answer = run(cfg, scenario)
    assert answer["variable"] == {"source": "demo", "peer_id": 1, "channel": 0,
                                  "name": "temperature", "type": "float", "unit": "°C"}
    assert answer["downsampled"] is False
    assert answer["count"] == len(answer["points"]) >= 3
    assert all(type(v) is float for _, v in answer["points"])
    path = tmp_path / "var" / "history.sqlite"
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    assert {name for _, name, _ in rows_in(path)} >= {"temperature", "humidity", "state"}


VALUES: dict[str, list[Any]] = {
    "power": [1.5, -0.0, float("nan"), float("inf"), 2.25],
    "count": [1, 2**63 - 1, -(2**63), 2**70, 3],
    "state": [True, False, True],
    "mode": ["eco", "boost"],
    "label": ["a", "", "ünïcode", "\ud800 lone surrogate"],
    "blob": [None, {"a": [1, 2.5, None], 3: b"\x00\xff"}, [True, "x"], b"bytes", 7, 1.0],
}


def test_every_value_comes_back_as_it_was(tmp_path: pathlib.Path) -> None:
    cfg = config(tmp_path, history={"batch_interval": 60.0})

    async def scenario(daemon: Daemon, history: HistoryPlugin, reactor: Any) -> Any:
        meter = add_meter(daemon)
        for name, values in VALUES.items():
            for i, value in enumerate(values):
                daemon.registry.report(meter.peer_id, 0, name, value, timestamp=T0 + i)
        await history.flush()
        return {
            name: await history.query(source="test", peer_id=meter.peer_id, channel=0,
                                      name=name, start=T0, end=T0 + 100)
            for name in VALUES
        }

    answers = run(cfg, scenario)
    for name, values in VALUES.items():
        points = answers[name]["points"]
        assert [t for t, _ in points] == [T0 + i for i in range(len(values))], name
        for (_, got), want in zip(points, values, strict=True):
            assert same(got, want) and type(got) is type(want), (name, got, want)
    assert answers["count"]["variable"]["type"] == "int"
    assert answers["power"]["variable"]["unit"] == "W"
    assert math.isnan(answers["power"]["points"][2][1])


def test_stop_writes_what_waits(tmp_path: pathlib.Path) -> None:
    # A batch interval far beyond the test and a batch size never reached: only the
    # stop can write these changes.
    cfg = config(tmp_path, history={"batch_interval": 60.0, "batch_size": 100_000})

    async def scenario(daemon: Daemon, history: HistoryPlugin, reactor: Any) -> Any:
        meter = add_meter(daemon)
        count_up(daemon, meter, 0, 2500, T0)
        stats = history.stats()
        assert stats["queued"] == 2500 and stats["recorded"] == 0
        return history

    history = run(cfg, scenario)
    assert history.recorder is not None and history.recorder.recorded == 2500
    rows = rows_in(tmp_path / "var" / "history.sqlite")
    assert [t for _, _, t in rows] == [T0 + i for i in range(2500)]
    assert history.unavailable == "history is stopped"


def test_changes_are_written_in_batches_without_flush(tmp_path: pathlib.Path) -> None:
    cfg = config(tmp_path, history={"batch_interval": 60.0, "batch_size": 100})

    async def scenario(daemon: Daemon, history: HistoryPlugin, reactor: Any) -> Any:
        meter = add_meter(daemon)
        count_up(daemon, meter, 0, 250, T0)
        # two full batches were handed over; the third waits for the timer or the stop
        await wait_until(reactor, lambda: history.stats()["recorded"] == 200, timeout=30,
                         what="two batches of 100 written")
        assert history.stats()["queued"] == 50

    run(cfg, scenario)
