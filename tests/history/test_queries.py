"""Chart queries: downsampled on the server, the value in force at the start, bad input."""

from __future__ import annotations

import asyncio
import math
import pathlib
import random
import statistics
from typing import Any

import pytest
from twisted.internet.defer import Deferred

from hadaemon.daemon import Daemon
from hadaemon.history import MAX_POINTS_LIMIT, HistoryPlugin
from hadaemon.values import same
from tests.history.helpers import add_meter, config, run

T0 = 1_699_999_980.0  # on a minute
DAY = 86400.0


def test_numbers_come_in_buckets_of_min_max_mean_count(tmp_path: pathlib.Path) -> None:
    cfg = config(tmp_path, history={"batch_interval": 60.0})
    # A day at one change every 10 s, the value the index in the day.
    values = [(T0 + 10.0 * i, float(i % 500)) for i in range(8640)]

    async def scenario(daemon: Daemon, history: HistoryPlugin, reactor: Any) -> Any:
        meter = add_meter(daemon)
        daemon.registry.report(meter.peer_id, 0, "power", -1.0, timestamp=T0 - 50)
        for t, v in values:
            daemon.registry.report(meter.peer_id, 0, "power", v, timestamp=t)
        await history.flush()
        args: dict[str, Any] = {"source": "test", "peer_id": meter.peer_id, "channel": 0,
                                "name": "power"}
        day = await history.query(**args, start=T0, end=T0 + DAY, max_points=96)
        few = await history.query(**args, start=T0 + 100, end=T0 + 130, max_points=96)
        return day, few

    day, few = run(cfg, scenario)
    assert day["downsampled"] is True and day["count"] == 8640
    assert day["bucket_seconds"] == DAY / 96 == 900.0
    buckets = day["buckets"]
    assert len(buckets) == 96
    assert sum(b[4] for b in buckets) == 8640
    assert day["initial"] == [T0 - 50, -1.0]
    # bucket 3 holds t = T0+2700 .. T0+3590: indexes 270..359
    t_start, low, high, mean, count = buckets[3]
    assert (t_start, low, high, count) == (T0 + 2700.0, 270.0, 359.0, 90)
    assert mean == pytest.approx(statistics.fmean(range(270, 360)))
    # a range with few changes: the changes themselves, led by the value in force
    assert few["downsampled"] is False and "buckets" not in few
    assert few["points"] == [[T0 + 90, 9.0], [T0 + 100, 10.0], [T0 + 110, 11.0],
                             [T0 + 120, 12.0], [T0 + 130, 13.0]]


def test_states_are_thinned_to_each_buckets_first_and_last(tmp_path: pathlib.Path) -> None:
    cfg = config(tmp_path, history={"batch_interval": 60.0})

    async def scenario(daemon: Daemon, history: HistoryPlugin, reactor: Any) -> Any:
        meter = add_meter(daemon)
        for i in range(3000):
            daemon.registry.report(meter.peer_id, 0, "state", i % 2 == 0, timestamp=T0 + i)
        await history.flush()
        return await history.query(source="test", peer_id=meter.peer_id, channel=0,
                                   name="state", start=T0 + 500, end=T0 + 2999,
                                   max_points=100)

    answer = run(cfg, scenario)
    points = answer["points"]
    assert answer["downsampled"] is True and answer["count"] == 2500
    assert "buckets" not in answer
    assert points[0] == [T0 + 499, False]  # in force at the start
    assert points[1] == [T0 + 500, True] and points[-1] == [T0 + 2999, False]
    assert len(points) <= 1 + 100
    assert [p[0] for p in points] == sorted(p[0] for p in points)
    assert all(p[1] is (int(p[0] - T0) % 2 == 0) for p in points)


def test_a_variable_known_but_without_changes_has_an_empty_chart(
        tmp_path: pathlib.Path) -> None:
    cfg = config(tmp_path)

    async def scenario(daemon: Daemon, history: HistoryPlugin, reactor: Any) -> Any:
        meter = add_meter(daemon)
        return await history.query(source="test", peer_id=meter.peer_id, channel=0,
                                   name="label", start=T0, end=T0 + 1)

    answer = run(cfg, scenario)
    assert answer["points"] == [] and answer["count"] == 0
    assert answer["variable"]["type"] == "string"


BAD: list[tuple[dict[str, Any], str]] = [
    ({"start": T0 + 10, "end": T0}, "end (1699999980.0) is before start (1699999990.0)"),
    ({"max_points": 0}, f"max_points: expected 1 to {MAX_POINTS_LIMIT}, got 0"),
    ({"max_points": MAX_POINTS_LIMIT + 1}, "max_points: expected 1 to"),
    ({"max_points": True}, "max_points: expected an integer, got True"),
    ({"max_points": 10.0}, "max_points: expected an integer, got 10.0"),
    ({"start": "yesterday"}, "start: expected a time in Unix seconds, got 'yesterday'"),
    ({"end": float("nan")}, "end: expected a time in Unix seconds, got nan"),
    ({"peer_id": "1"}, "peer_id: expected an integer, got '1'"),
    ({"source": ""}, "source: expected a non-empty string"),
    ({"name": "nope"}, "unknown variable test/1/0/nope: not in the registry, and no "
                       "history of it"),
    ({"peer_id": 99}, "unknown variable test/99/0/count"),
    ({"source": "other"}, "unknown variable other/1/0/count"),
    ({"channel": 5}, "unknown variable test/1/5/count"),
    ({"name": "linkquality"}, "variable test/1/0/linkquality is not recorded: [history] "
                              "include/exclude settings leave it out"),
]


def test_bad_arguments_are_named(tmp_path: pathlib.Path) -> None:
    cfg = config(tmp_path, history={"exclude_names": ["link*"]})

    async def scenario(daemon: Daemon, history: HistoryPlugin, reactor: Any) -> Any:
        meter = add_meter(daemon)
        assert meter.peer_id == 1
        daemon.registry.report(meter.peer_id, 0, "count", 1, timestamp=T0)
        await history.flush()
        messages = []
        for change, _ in BAD:
            args = {"source": "test", "peer_id": 1, "channel": 0, "name": "count",
                    "start": T0, "end": T0 + 60, **change}
            try:
                await history.query(**args)
            except ValueError as exc:
                messages.append(str(exc))
            else:
                messages.append("no error")
        # and the good one still works afterwards
        good = await history.query(source="test", peer_id=1, channel=0, name="count",
                                   start=T0, end=T0 + 60)
        return messages, good

    messages, good = run(cfg, scenario)
    for (change, want), got in zip(BAD, messages, strict=True):
        assert got.startswith(want), (change, got)
    assert good["points"] == [[T0, 1]]


def test_history_outlives_the_device(tmp_path: pathlib.Path) -> None:
    cfg = config(tmp_path)

    async def scenario(daemon: Daemon, history: HistoryPlugin, reactor: Any) -> Any:
        meter = add_meter(daemon)
        daemon.registry.report(meter.peer_id, 0, "power", 3.5, timestamp=T0)
        await history.flush()
        daemon.registry.remove_device(meter.peer_id)
        return await history.query(source="test", peer_id=meter.peer_id, channel=0,
                                   name="power", start=T0, end=T0 + 1)

    answer = run(cfg, scenario)
    assert answer["points"] == [[T0, 3.5]]
    assert answer["variable"]["type"] == "float" and answer["variable"]["unit"] == "W"


def brute_buckets(values: list[tuple[float, float]], start: float, end: float,
                  edges: list[float]) -> list[list[Any]]:
    """min/max/mean/count of ``values`` per bucket, each bucket from its edge to the
    next (the last one to ``end`` included), computed the slow way."""
    out = []
    for i, edge in enumerate(edges):
        upper = edges[i + 1] if i + 1 < len(edges) else None
        inside = [v for t, v in values if start <= t <= end and t >= edge
                  and (upper is None or t < upper) and not math.isnan(v)]
        if inside:
            out.append([edge, min(inside), max(inside), statistics.fmean(inside),
                        len(inside)])
    return out


@pytest.mark.parametrize(("offset", "length", "max_points"), [
    (0.0, DAY, 96),            # on minutes, whole minutes only
    (37.25, DAY - 100.5, 96),  # ragged edges at both ends
    (1234.5, 7200.0, 500),     # buckets narrower than a minute: from the changes
    (5.0, 3 * 3600.0, 7),      # few, wide buckets
])
def test_buckets_agree_with_the_changes(tmp_path: pathlib.Path, offset: float,
                                        length: float, max_points: int) -> None:
    # Small batches: a minute's figures are summed over several batches.
    cfg = config(tmp_path, history={"batch_size": 37, "batch_interval": 60.0})
    rng = random.Random(offset)
    t = T0 - 500
    values: list[tuple[float, float]] = []
    while t < T0 + DAY + 500:
        t += rng.expovariate(1 / 7.0)
        value = rng.choice([float("nan"), rng.uniform(-50, 50), 1e9])
        if not values or not same(values[-1][1], value):  # the registry skips repeats
            values.append((t, value))

    async def scenario(daemon: Daemon, history: HistoryPlugin, reactor: Any) -> Any:
        meter = add_meter(daemon)
        for t, v in values:
            daemon.registry.report(meter.peer_id, 0, "power", v, timestamp=t)
        await history.flush()
        return await history.query(source="test", peer_id=meter.peer_id, channel=0,
                                   name="power", start=T0 + offset,
                                   end=T0 + offset + length, max_points=max_points)

    start, end = T0 + offset, T0 + offset + length
    answer = run(cfg, scenario)
    buckets = answer["buckets"]
    assert 0 < len(buckets) <= max_points
    size = answer["bucket_seconds"]
    assert size >= length / max_points
    assert answer["count"] == sum(1 for t, _ in values if start <= t <= end)
    # every bucket starts on the grid (the first one at start) and edges follow it
    if size >= 60:
        origin = math.floor(start / 60) * 60
        assert size % 60 == 0
        edges = [start] + [origin + k * size for k in range(1, math.ceil((end - origin)
                                                                          / size))]
    else:
        edges = [start + k * size for k in range(max_points)]
    want = brute_buckets(values, start, end, edges)
    assert [b[0] for b in buckets] == [b[0] for b in want]
    for got, expected in zip(buckets, want, strict=True):
        assert got[1:3] == expected[1:3] and got[4] == expected[4]
        assert got[3] == pytest.approx(expected[3], rel=1e-9, abs=1e-6)


def test_query_can_be_awaited_by_twisted_and_by_asyncio(tmp_path: pathlib.Path) -> None:
    cfg = config(tmp_path)

    async def scenario(daemon: Daemon, history: HistoryPlugin, reactor: Any) -> Any:
        meter = add_meter(daemon)
        daemon.registry.report(meter.peer_id, 0, "count", 7, timestamp=T0)
        await history.flush()
        args = {"source": "test", "peer_id": meter.peer_id, "channel": 0, "name": "count",
                "start": T0, "end": T0 + 1}
        # a coroutine Twisted drives, started from a reactor callback (klein, twisted.web)
        by_twisted: Deferred[Any] = Deferred()
        reactor.callLater(0, lambda: Deferred.fromCoroutine(
            history.query(**args)).chainDeferred(by_twisted))
        # a plain asyncio task, not wrapped by hadaemon.aio
        by_asyncio = asyncio.ensure_future(history.query(**args))
        return await by_twisted, await by_asyncio

    by_twisted, by_asyncio = run(cfg, scenario)
    assert by_twisted["points"] == by_asyncio["points"] == [[T0, 7]]
