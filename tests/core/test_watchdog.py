"""The watchdog names what blocks the reactor, while it blocks and after."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from twisted.internet.task import deferLater

from hadaemon.bus import Address, Bus
from hadaemon.testing.logs import capture_logs
from hadaemon.testing.reactors import run_in_reactor
from hadaemon.watchdog import Watchdog


def test_blocking_bus_handler_is_reported_by_name() -> None:
    async def scenario(reactor: Any) -> Watchdog:
        watchdog = Watchdog(reactor, threshold=0.1)
        watchdog.start()
        bus = Bus(reactor, watchdog=watchdog)

        def sleepy_handler(address: Address, message: Any) -> None:
            time.sleep(0.4)

        bus.register("service:sleepy_py", sleepy_handler, name="service sleepy_py")
        await bus.send("service:sleepy_py/work", None)
        await deferLater(reactor, 0.05, lambda: None)
        watchdog.stop()
        return watchdog

    with capture_logs() as logs:
        watchdog = run_in_reactor(scenario, timeout=10)
    ongoing = [r for r in watchdog.reports if r.ongoing]
    finished = [r for r in watchdog.reports if not r.ongoing]
    assert ongoing and ongoing[0].component == "service sleepy_py"
    assert "sleepy_handler" in ongoing[0].stack
    assert finished and finished[0].component == "service sleepy_py"
    assert finished[0].seconds >= 0.35
    text = logs.text()
    assert "service sleepy_py blocked the reactor" in text
    assert "reactor blocked for" in text


def test_unnamed_callback_reported_with_its_stack() -> None:
    def plain_blocking_callback() -> None:
        time.sleep(0.3)

    async def scenario(reactor: Any) -> Watchdog:
        watchdog = Watchdog(reactor, threshold=0.1)
        watchdog.start()
        await deferLater(reactor, 0, plain_blocking_callback)
        await deferLater(reactor, 0.05, lambda: None)
        watchdog.stop()
        return watchdog

    watchdog = run_in_reactor(scenario, timeout=10)
    (report,) = [r for r in watchdog.reports if r.ongoing]
    assert report.component is None
    assert "plain_blocking_callback" in report.stack


def test_blocking_asyncio_task_is_named() -> None:
    from hadaemon.aio import create_task

    async def blocking_service_start() -> None:
        await asyncio.sleep(0)
        time.sleep(0.3)

    async def scenario(reactor: Any) -> Watchdog:
        watchdog = Watchdog(reactor, threshold=0.1)
        watchdog.start()
        await create_task(blocking_service_start(), name="service foo_py Start")
        await deferLater(reactor, 0.05, lambda: None)
        watchdog.stop()
        return watchdog

    watchdog = run_in_reactor(scenario, timeout=10)
    (report,) = [r for r in watchdog.reports if r.ongoing]
    assert report.component == "asyncio task service foo_py Start"


def test_quiet_reactor_reports_nothing() -> None:
    async def scenario(reactor: Any) -> Watchdog:
        watchdog = Watchdog(reactor, threshold=0.1)
        watchdog.start()
        for _ in range(10):
            await deferLater(reactor, 0.02, lambda: None)
        watchdog.stop()
        return watchdog

    assert run_in_reactor(scenario, timeout=10).reports == []
