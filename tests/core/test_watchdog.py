"""The watchdog names what blocks the reactor, while it blocks and after."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from twisted.internet.task import Clock, deferLater

from hadaemon.bus import Address, Bus
from hadaemon.testing.logs import capture_logs
from hadaemon.testing.reactors import run_in_reactor
from hadaemon.testing.waiting import poll_until
from hadaemon.watchdog import Watchdog


def block_until_reported(watchdog: Watchdog, at_least: float = 0.0) -> None:
    """Block the calling (reactor) thread until the watchdog's monitor reported the block
    while it lasts, and for ``at_least`` seconds."""
    started = time.monotonic()
    poll_until(lambda: any(r.ongoing for r in watchdog.reports), 60,
               "the watchdog to report the block", interval=0.005)
    time.sleep(max(0.0, at_least - (time.monotonic() - started)))


def test_blocking_bus_handler_is_reported_by_name() -> None:
    async def scenario(reactor: Any) -> Watchdog:
        watchdog = Watchdog(reactor, threshold=0.1)
        watchdog.start()
        bus = Bus(reactor, watchdog=watchdog)

        def sleepy_handler(address: Address, message: Any) -> None:
            block_until_reported(watchdog, at_least=0.2)

        bus.register("service:sleepy_py", sleepy_handler, name="service sleepy_py")
        await bus.send("service:sleepy_py/work", None)
        watchdog.stop()
        return watchdog

    with capture_logs() as logs:
        watchdog = run_in_reactor(scenario, timeout=10)
    ongoing = [r for r in watchdog.reports if r.ongoing]
    finished = [r for r in watchdog.reports if not r.ongoing]
    assert ongoing and ongoing[0].component == "service sleepy_py"
    assert "sleepy_handler" in ongoing[0].stack
    assert finished and finished[0].component == "service sleepy_py"
    assert finished[0].seconds >= 0.2
    text = logs.text()
    assert "service sleepy_py blocked the reactor" in text
    assert "reactor blocked for" in text


def test_unnamed_callback_reported_with_its_stack() -> None:
    async def scenario(reactor: Any) -> Watchdog:
        watchdog = Watchdog(reactor, threshold=0.1)

        def plain_blocking_callback() -> None:
            block_until_reported(watchdog)

        watchdog.start()
        await deferLater(reactor, 0, plain_blocking_callback)
        watchdog.stop()
        return watchdog

    watchdog = run_in_reactor(scenario, timeout=10)
    (report,) = [r for r in watchdog.reports if r.ongoing]
    assert report.component is None
    assert "plain_blocking_callback" in report.stack


def test_blocking_asyncio_task_is_named() -> None:
    from hadaemon.aio import create_task

    async def scenario(reactor: Any) -> Watchdog:
        watchdog = Watchdog(reactor, threshold=0.1)

        async def blocking_service_start() -> None:
            await asyncio.sleep(0)
            block_until_reported(watchdog)

        watchdog.start()
        await create_task(blocking_service_start(), name="service foo_py Start")
        watchdog.stop()
        return watchdog

    watchdog = run_in_reactor(scenario, timeout=10)
    (report,) = [r for r in watchdog.reports if r.ongoing]
    assert report.component == "asyncio task service foo_py Start"


def test_quiet_reactor_reports_nothing() -> None:
    # "Nothing within X" by nature (the monitor is a thread watching real time): the
    # reactor stays idle for three thresholds, each far above a loaded machine's
    # scheduling hiccups, and a monitor that missed the ticks would have reported.
    async def scenario(reactor: Any) -> Watchdog:
        watchdog = Watchdog(reactor, threshold=0.5)
        watchdog.start()
        for _ in range(75):
            await deferLater(reactor, 0.02, lambda: None)
        watchdog.stop()
        return watchdog

    assert run_in_reactor(scenario, timeout=10).reports == []


def test_the_ticker_measures_how_late_each_tick_ran() -> None:
    clock = Clock()
    watchdog = Watchdog(clock, threshold=0.4, clock=clock.seconds)  # a tick every 0.1 s
    watchdog.start()
    try:
        clock.advance(0.1)  # on time
        assert (watchdog.lag.count, watchdog.lag.last) == (1, 0.0)
        clock.advance(0.35)  # the tick due at 0.2 runs at 0.45
        assert watchdog.lag.last == pytest.approx(0.25)
        clock.advance(0.1)  # due at 0.55, on time again
        assert watchdog.lag.last == 0.0
        assert watchdog.lag.peak == pytest.approx(0.25)
        assert watchdog.lag.count == 3 and watchdog.lag.total == pytest.approx(0.25)
        buckets = dict(watchdog.lag.buckets())
        assert buckets[0.1] == 2 and buckets[0.5] == 3 and buckets[float("inf")] == 3
    finally:
        watchdog.stop()
    assert clock.getDelayedCalls() == []
