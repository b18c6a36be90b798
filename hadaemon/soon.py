"""Run a function at the next turn of the reactor, as cheaply as the reactor allows."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any


def call_soon_of(reactor: Any) -> Callable[[Callable[[], None]], object]:
    """The reactor's cheapest "next turn": the asyncio loop's ``call_soon`` on the asyncio
    reactor (no DelayedCall, no timer heap, no rescheduling of the loop's timer), else
    ``callLater(0, ...)`` (``task.Clock`` in tests, other reactors).

    Hot paths that need one such call per message (a bus drain, a node connection's
    flush) use it: ``callLater(0)`` and its cancel cost the daemon several microseconds
    each on the asyncio reactor.
    """
    loop = getattr(reactor, "_asyncioEventloop", None)
    if loop is not None:
        return loop.call_soon  # type: ignore[no-any-return]
    return partial(reactor.callLater, 0)
