"""Meeting point of Deferreds, coroutines and asyncio futures.

A coroutine driven by Twisted cannot await an asyncio future, and a plain asyncio task
cannot await a Deferred. User code (services, automations) is written for asyncio, so a
coroutine returned by a handler runs as an asyncio task whenever an asyncio loop is running
(the asyncio reactor's), wrapped so that it may await Deferreds too; it is driven by
Twisted only on a fake clock in unit tests.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any, TypeVar

from twisted.internet.defer import Deferred, fail, succeed

from hadaemon.usercode import PASSES, UserCodeEscape, UserCodeExit, contain, failure_of

T = TypeVar("T")


def running_loop() -> asyncio.AbstractEventLoop | None:
    """The running asyncio loop of this thread, or None (fake clocks, before the reactor runs)."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class _AwaitsDeferreds(Coroutine[Any, Any, T]):
    """Wraps a coroutine for an asyncio task so that ``await deferred`` works inside it.

    A Deferred being awaited yields itself up to the task; the task only understands
    asyncio futures, so each yielded Deferred is swapped for a future that wakes the task
    when the Deferred fires (Deferred.__iter__ then hands over the result or raises).
    """

    __slots__ = ("_coro", "_loop")

    def __init__(self, coro: Coroutine[Any, Any, T], loop: asyncio.AbstractEventLoop) -> None:
        self._coro = coro
        self._loop = loop

    def send(self, value: Any) -> Any:
        try:
            yielded = self._coro.send(value)
        except PASSES:
            raise
        except BaseException as exc:
            # A task raising KeyboardInterrupt or SystemExit re-raises it out of the loop
            # (and so out of the reactor): never let one out.
            raise contain(exc) from None
        return self._swap(yielded) if isinstance(yielded, Deferred) else yielded

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        try:
            if val is None and tb is None:
                yielded = self._coro.throw(typ)
            else:
                yielded = self._coro.throw(typ, val, tb)
        except PASSES:
            raise
        except BaseException as exc:
            raise contain(exc) from None
        return self._swap(yielded) if isinstance(yielded, Deferred) else yielded

    def close(self) -> None:
        self._coro.close()

    def __await__(self) -> Generator[Any, None, T]:
        return self

    def __iter__(self) -> _AwaitsDeferreds[T]:
        return self

    def __next__(self) -> Any:
        return self.send(None)

    def _swap(self, yielded: Deferred[Any]) -> asyncio.Future[None]:
        return waker_for(yielded, self._loop)


def waker_for(d: Deferred[Any], loop: asyncio.AbstractEventLoop) -> asyncio.Future[None]:
    """What a task driver yields to its task in place of an awaited Deferred.

    The task only understands asyncio futures: this one wakes it when ``d`` fires, and
    ``Deferred.__iter__`` then hands over the result or raises; cancelling the task
    cancels ``d``.
    """
    future: asyncio.Future[None] = loop.create_future()

    def wake(result: object) -> object:
        if not future.done():
            future.set_result(None)
        return result  # left on the Deferred for Deferred.__iter__ to take

    def cancelled(fut: asyncio.Future[None]) -> None:
        if fut.cancelled() and not d.called:
            d.cancel()

    d.addBoth(wake)
    future.add_done_callback(cancelled)
    future._asyncio_future_blocking = True
    return future


def create_task(
    coro: Coroutine[Any, Any, T], *, name: str | None = None
) -> asyncio.Task[T]:
    """An asyncio task on the running loop that may await Deferreds and futures alike."""
    loop = asyncio.get_running_loop()
    return loop.create_task(_AwaitsDeferreds(coro, loop), name=name)


def as_deferred(result: object, *, name: str | None = None) -> Deferred[Any]:
    """Wrap a handler's result (plain value, Deferred, coroutine, future) as a Deferred."""
    if isinstance(result, Deferred):
        return result
    if inspect.iscoroutine(result):
        # An asyncio task that raises KeyboardInterrupt or SystemExit re-raises it out of
        # the loop (and so out of the reactor): the wrapper turns it into an ordinary
        # exception first.
        if running_loop() is not None:
            return Deferred.fromFuture(create_task(result, name=name))
        return Deferred.fromCoroutine(_guard(result))
    if isinstance(result, asyncio.Future):
        return Deferred.fromFuture(result)
    if inspect.isawaitable(result):
        return as_deferred(_await(result))
    return succeed(result)


async def _await(awaitable: Awaitable[T]) -> T:
    return await awaitable


async def _guard(awaitable: Awaitable[T]) -> T:
    try:
        return await awaitable
    except PASSES:
        raise
    except BaseException as exc:
        raise contain(exc) from None


def call_as_deferred(fn: Callable[..., object], *args: Any, **kwargs: Any) -> Deferred[Any]:
    """Call ``fn`` and always get a Deferred, also when it raises (any BaseException).

    User code must never stop the reactor: ``sys.exit()`` or ``KeyboardInterrupt`` inside
    a handler becomes a failed Deferred (:class:`UserCodeEscape`) like any other error.
    """
    try:
        result = fn(*args, **kwargs)
    except BaseException as exc:
        return fail(failure_of(exc))
    return as_deferred(result)


__all__ = [
    "UserCodeEscape",
    "UserCodeExit",
    "as_deferred",
    "call_as_deferred",
    "create_task",
    "running_loop",
]
