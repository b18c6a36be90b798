"""History benchmark: recording at 2,000 changes/s without loss, and a day's chart query.

1. Recording: a real daemon (fresh asyncio reactor) with the ``history`` plugin at its
   defaults and 1,000 devices of 5 variables; the reactor reports ``--rate`` changes a
   second (numbers, spread over the 5,000 variables) for ``--seconds``, catching up when
   a tick is late so the rate holds. The daemon then stops (which writes what waits) and
   the rows in the file are counted back: recorded == reported and dropped == 0 is the
   target. Also printed: the largest backlog seen, and the reactor time the recorder's
   subscriber took per change.
2. Query: a file holding a day of data, built directly with the writer's code (not
   through the daemon, to save time): the charted variable changes once a second
   (86,400 rows, a power meter), plus ``--variables`` others changing once every
   ``--other-interval`` seconds, interleaved in time as a house writes them. Then the
   day's chart (max_points 1000: min/max/mean buckets, made of the per-minute figures)
   is asked ``--queries`` times through the reader, and through the plugin's ``query``
   (worker thread + hop back); also half a day (buckets under a minute: every change
   aggregated, the worst case for numbers) and a day of a boolean changing every 10 s
   (points, thinned). Target: <= 50 ms.

Figures taken on a shared, loaded machine are indicative only. Run it by hand:
``.venv/bin/python benchmarks/history.py [--seconds 20] [--rate 2000]``.
"""

from __future__ import annotations

import argparse
import pathlib
import sqlite3
import statistics
import tempfile
import time
from typing import Any

from twisted.internet.task import LoopingCall

from hadaemon.app import prepare
from hadaemon.daemon import Daemon
from hadaemon.history import HistoryPlugin
from hadaemon.history.database import HistoryFile
from hadaemon.history.queries import Reader, Window
from hadaemon.registry import Access, ChannelSpec, ValueType, VariableSpec
from hadaemon.testing import run_in_reactor, sleep

DAY = 86400
NAMES = ("power", "energy", "temperature", "humidity", "level")
DEVICE = [ChannelSpec(0, [VariableSpec(n, ValueType.FLOAT, Access.READ) for n in NAMES])]


def record(directory: pathlib.Path, rate: int, seconds: float, devices: int) -> None:
    config = prepare({"daemon": {"state_dir": str(directory), "plugins": ["history"]},
                      "watchdog": {"enabled": False}},
                     base_dir=directory, environ={}, strict=True)
    config.raise_for_errors()
    figures: dict[str, Any] = {}

    async def scenario(reactor: Any) -> None:
        daemon = Daemon(config.config, reactor)
        daemon.startService()
        await daemon.started
        history: Any = daemon.plugin("history")
        assert isinstance(history, HistoryPlugin) and history.recorder is not None
        peers = [daemon.registry.add_device("bench", f"d{i}", f"d{i}", DEVICE, None).peer_id
                 for i in range(devices)]
        variables = [(p, n) for p in peers for n in NAMES]
        state = {"sent": 0, "backlog": 0, "t0": reactor.seconds()}
        recorder = history.recorder
        original = recorder.on_change
        spent = [0.0]

        def timed(event: Any) -> None:
            began = time.perf_counter()
            original(event)
            spent[0] += time.perf_counter() - began

        # Time the subscriber itself: swap it for a timed one (same subscription order).
        assert history._subscription is not None
        history._subscription.cancel()
        history._subscription = daemon.bus.subscribe("variable/#", timed, name="timed")

        def tick() -> None:
            due = int((reactor.seconds() - state["t0"]) * rate)
            report = daemon.registry.report
            for n in range(state["sent"], min(due, int(rate * seconds))):
                peer, name = variables[n % len(variables)]
                report(peer, 0, name, n * 0.5)
            state["sent"] = max(state["sent"], min(due, int(rate * seconds)))
            state["backlog"] = max(state["backlog"], recorder.queued)

        loop = LoopingCall(tick)
        loop.clock = reactor
        loop.start(0.01)
        while state["sent"] < rate * seconds:
            await sleep(reactor, 0.1)
        loop.stop()
        elapsed = reactor.seconds() - state["t0"]
        await daemon.stopService()
        figures.update(sent=state["sent"], elapsed=elapsed, backlog=state["backlog"],
                       dropped=recorder.dropped, failed=recorder.failed,
                       recorded=recorder.recorded, spent=spent[0])

    run_in_reactor(scenario, timeout=seconds * 10 + 120)
    conn = sqlite3.connect(directory / "history.sqlite")
    rows = conn.execute("SELECT count(*) FROM changes").fetchone()[0]
    conn.close()
    sent = figures["sent"]
    print(f"recording: {sent} changes in {figures['elapsed']:.1f}s "
          f"({sent / figures['elapsed']:.0f}/s over {devices * len(NAMES)} variables)")
    print(f"  rows in the file {rows}, recorded {figures['recorded']}, dropped "
          f"{figures['dropped']}, failed {figures['failed']}: "
          f"{'no loss' if rows == sent and not figures['dropped'] else 'LOSS'}")
    print(f"  largest backlog {figures['backlog']} changes (max_queued 200000); "
          f"subscriber {figures['spent'] / sent * 1e6:.1f} us/change on the reactor")


def build_day(path: pathlib.Path, start: float, variables: int, other_interval: int) -> int:
    history = HistoryFile.open(path)
    meta = {("bench", 1, 0, "power"): ("float", "W"), ("bench", 1, 0, "state"): ("bool", None)}
    rows = 0
    for chunk_start in range(0, DAY, 600):  # ten minutes per transaction
        batch: list[Any] = []
        for s in range(chunk_start, chunk_start + 600):
            t = start + s
            batch.append((("bench", 1, 0, "power"), t, 100.0 + (s % 977) * 0.1))
            if s % 10 == 0:
                batch.append((("bench", 1, 0, "state"), t + 0.5, (s // 10) % 2 == 0))
            # the others, spread evenly over their interval
            for v in range(s % other_interval, variables, other_interval):
                batch.append((("bench", 2 + v, 0, "power"), t + 0.25, float(v + s)))
        history.write(batch, meta)
        meta = {}
        rows += len(batch)
    history.close()
    return rows


def query(path: pathlib.Path, start: float, queries: int) -> None:
    reader = Reader(path)
    # The worst case for numbers: half a day in 1,000 buckets is 43 s a bucket, too
    # narrow for the minutes, so all 43,200 changes are aggregated.
    for name, kind, length in (("power", "float", DAY), ("power", "float", DAY // 2),
                               ("state", "bool", DAY)):
        window = Window(("bench", 1, 0, name), start, start + length, 1000, kind, None)
        times = []
        answer: Any = None
        for _ in range(queries):
            began = time.perf_counter()
            answer = reader.query(window)
            times.append((time.perf_counter() - began) * 1000)
        assert answer is not None
        shape = (f"{len(answer['buckets'])} buckets" if "buckets" in answer
                 else f"{len(answer['points'])} points")
        print(f"query, {length / 3600:g} h of {name} ({answer['count']} changes -> {shape}): "
              f"median {statistics.median(times):.1f} ms, "
              f"max {max(times):.1f} ms over {queries}")
    reader.close()


def query_through_plugin(directory: pathlib.Path, start: float, queries: int) -> None:
    config = prepare({"daemon": {"state_dir": str(directory), "plugins": ["history"]},
                      "watchdog": {"enabled": False}},
                     base_dir=directory, environ={}, strict=True)
    config.raise_for_errors()
    times: list[float] = []
    counts: list[int] = []

    async def scenario(reactor: Any) -> None:
        daemon = Daemon(config.config, reactor)
        daemon.startService()
        await daemon.started
        history: Any = daemon.plugin("history")
        assert isinstance(history, HistoryPlugin)
        # The file is new to this plugin, so it purges at start: let that finish first.
        while history.stats()["purging"]:
            await sleep(reactor, 0.1)
        for _ in range(queries):
            began = time.perf_counter()
            answer = await history.query(source="bench", peer_id=1, channel=0,
                                         name="power", start=start, end=start + DAY)
            times.append((time.perf_counter() - began) * 1000)
            counts.append(answer["count"])
        await daemon.stopService()

    run_in_reactor(scenario, timeout=600)
    assert set(counts) == {DAY}, counts  # the whole day was charted each time
    print(f"query through the plugin ({DAY} changes, thread hop included): median "
          f"{statistics.median(times):.1f} ms, max {max(times):.1f} ms over {queries}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--variables", type=int, default=1000,
                        help="other variables in the query file")
    parser.add_argument("--other-interval", type=int, default=60,
                        help="seconds between two changes of each other variable")
    parser.add_argument("--queries", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hadaemon-history-") as tmp:
        directory = pathlib.Path(tmp)
        record(directory / "record", args.rate, args.seconds, args.devices)
        began = time.perf_counter()
        # The day that just ended: the plugin's purge at start leaves it alone.
        start = float(int(time.time()) - DAY)
        rows = build_day(directory / "day" / "history.sqlite", start, args.variables,
                         args.other_interval)
        size = (directory / "day" / "history.sqlite").stat().st_size
        print(f"query file: {rows} rows ({size / 1e6:.0f} MB), built in "
              f"{time.perf_counter() - began:.0f}s: 86400 changes of the charted "
              f"variable, {args.variables} others every {args.other_interval}s")
        query(directory / "day" / "history.sqlite", start, args.queries)
        query_through_plugin(directory / "day", start, args.queries)


if __name__ == "__main__":
    main()
