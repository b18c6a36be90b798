"""Waiting for a condition: inside a test's reactor (without blocking it), or in plain
blocking test code (a daemon in a child process, a file another process writes)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from twisted.internet.task import deferLater

T = TypeVar("T")


async def sleep(reactor: Any, seconds: float) -> None:
    """Let the reactor run for ``seconds`` (``time.sleep`` would stop it).

    Not for synchronisation: to wait for something, wait for it (:func:`wait_until`).
    """
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


def poll_until(
    predicate: Callable[[], T],
    timeout: float = 10.0,
    what: str = "",
    interval: float = 0.02,
) -> T:
    """Blocking twin of :func:`wait_until`, for test code that runs no reactor (never call
    it on a reactor thread): poll ``predicate`` every ``interval`` until it returns
    something true, and return that; after ``timeout`` seconds a TimeoutError names
    ``what`` (or the predicate). The timeout only guards against a hang: size it for a
    loaded machine, never to assert speed."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what or predicate}")
        time.sleep(interval)
