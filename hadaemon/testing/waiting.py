"""Waiting inside a test's reactor: polling a condition, sleeping without blocking."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from twisted.internet.task import deferLater

T = TypeVar("T")


async def sleep(reactor: Any, seconds: float) -> None:
    """Let the reactor run for ``seconds`` (``time.sleep`` would stop it)."""
    await deferLater(reactor, seconds, lambda: None)


async def wait_until(
    reactor: Any,
    predicate: Callable[[], T],
    timeout: float = 5.0,
    what: str = "",
    interval: float = 0.01,
) -> T:
    """Poll ``predicate`` every ``interval`` until it returns something true, and return
    that; after ``timeout`` seconds a TimeoutError names ``what`` (or the predicate)."""
    deadline = reactor.seconds() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if reactor.seconds() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what or predicate}")
        await sleep(reactor, interval)
