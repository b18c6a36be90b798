"""Fresh reactors for integration tests: one new, un-installed asyncio reactor per test.

The global reactor runs once per process, so tests that need real I/O build their own
reactor instance, run one scenario in it and throw it away.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

from twisted.internet import defer
from twisted.internet.asyncioreactor import AsyncioSelectorReactor
from twisted.python.failure import Failure

from hadaemon.aio import as_deferred

T = TypeVar("T")


def new_reactor() -> AsyncioSelectorReactor:
    """A new asyncio reactor on a new event loop (not installed as the global one)."""
    return AsyncioSelectorReactor(asyncio.new_event_loop())


def run_in_reactor(
    scenario: Callable[[AsyncioSelectorReactor], Any],
    *,
    timeout: float = 30.0,
    reactor: AsyncioSelectorReactor | None = None,
) -> Any:
    """Run ``scenario(reactor)`` (plain, Deferred or ``async def``) in a fresh reactor.

    Returns its result or raises its exception; a scenario running longer than
    ``timeout`` seconds is cancelled and raises ``twisted.internet.defer.TimeoutError``.
    """
    r = reactor if reactor is not None else new_reactor()
    outcome: list[Any] = []

    def go() -> None:
        try:
            d = as_deferred(scenario(r))
        except BaseException:
            d = defer.fail(Failure())
        d.addTimeout(timeout, r)

        def done(result: object) -> None:
            outcome.append(result)
            r.stop()

        d.addBoth(done)

    previous = _current_loop()
    asyncio.set_event_loop(r._asyncioEventloop)
    try:
        # callWhenRunning fires before the asyncio loop runs; asyncio code needs it running.
        r.callWhenRunning(r.callLater, 0, go)
        r.run(installSignalHandlers=False)
    finally:
        r._asyncioEventloop.close()
        asyncio.set_event_loop(previous)
    if not outcome:
        raise RuntimeError("the reactor stopped before the scenario finished")
    result = outcome[0]
    if isinstance(result, Failure):
        result.raiseException()
    return result


def _current_loop() -> asyncio.AbstractEventLoop | None:
    # Python 3.12 and 3.13 warn (and make a loop) where none is set yet; 3.14 raises.
    # The warning raised as an error comes before the loop is made: none was set.
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        try:
            return asyncio.get_event_loop()
        except (RuntimeError, DeprecationWarning):
            return None
