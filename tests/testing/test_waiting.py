"""wait_until and sleep: waiting inside a real reactor without blocking it."""

from __future__ import annotations

from typing import Any

import pytest

from hadaemon.testing import run_in_reactor, sleep, wait_until


def test_wait_until_returns_the_true_value_once_it_comes() -> None:
    async def scenario(reactor: Any) -> Any:
        box: list[str] = []
        reactor.callLater(0.05, box.append, "ready")
        return await wait_until(reactor, lambda: box and box[0], what="the box")

    assert run_in_reactor(scenario, timeout=10) == "ready"


def test_wait_until_times_out_naming_what_it_waited_for() -> None:
    async def scenario(reactor: Any) -> None:
        await wait_until(reactor, lambda: False, timeout=0.05, what="a miracle")

    with pytest.raises(TimeoutError, match="waiting for a miracle"):
        run_in_reactor(scenario, timeout=10)


def test_sleep_lets_the_reactor_run() -> None:
    async def scenario(reactor: Any) -> list[int]:
        ran: list[int] = []
        reactor.callLater(0, ran.append, 1)
        await sleep(reactor, 0.02)
        return ran

    assert run_in_reactor(scenario, timeout=10) == [1]
