"""How the store runs blocking work (fsync, a compaction's snapshot) off the reactor."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar, cast

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorThreads
from twisted.internet.threads import deferToThreadPool

T = TypeVar("T")


class ThreadRunner(Protocol):
    """Runs a blocking function off the reactor thread; the Deferred fires on the reactor."""

    def __call__(self, f: Callable[[], T], /) -> Deferred[T]: ...


def thread_pool_runner(reactor: object) -> ThreadRunner:
    """The default: the reactor's thread pool."""
    threads = cast(IReactorThreads, reactor)

    def run(f: Callable[[], T]) -> Deferred[T]:
        return deferToThreadPool(threads, threads.getThreadPool(), f)

    return run
