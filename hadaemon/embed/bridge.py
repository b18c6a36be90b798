"""The one place where other threads hand work to the reactor thread and wait for it.

``submit`` schedules with the asyncio loop's ``call_soon_threadsafe`` directly (one hop;
the asyncio reactor's own ``callFromThread`` hops twice) and completes a
``concurrent.futures.Future``. Plain functions, Deferred-returning ones and ``async def``
(run as an asyncio task that may await Deferreds and asyncio futures) are all accepted.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from twisted.internet.defer import CancelledError, Deferred
from twisted.python.failure import Failure

from hadaemon.aio import call_as_deferred
from hadaemon.embed.errors import CallTimeout, Deadlock

T = TypeVar("T")


class Bridge:
    """Runs callables on the reactor thread for callers on any other thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop, reactor_thread: int) -> None:
        self.loop = loop
        self.reactor_thread = reactor_thread

    def on_reactor_thread(self) -> bool:
        return threading.get_ident() == self.reactor_thread

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> _WorkFuture:
        """Schedule ``fn`` on the reactor thread; the future completes with its result.

        May be called in any thread, the reactor thread included (nothing blocks here).
        """
        future = _WorkFuture(self.loop)

        def run() -> None:
            if future.set_running_or_notify_cancel():
                future.run(fn, *args, **kwargs)

        self.loop.call_soon_threadsafe(run)
        return future

    def run_now(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> _WorkFuture:
        """Reactor thread only: run ``fn`` at once; the future completes with its outcome."""
        future = _WorkFuture(self.loop)
        future.set_running_or_notify_cancel()
        future.run(fn, *args, **kwargs)
        return future

    def call(
        self, fn: Callable[..., Any], *args: Any, timeout: float | None = None, **kwargs: Any
    ) -> Any:
        """Run ``fn`` on the reactor thread and wait for its result (or exception)."""
        if self.on_reactor_thread():
            raise Deadlock(
                f"blocking call of {_name(fn)} on the reactor thread would wait for itself "
                "forever; on the reactor thread call it directly (or use submit())"
            )
        future = self.submit(fn, *args, **kwargs)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel_work()
            raise CallTimeout(
                f"{_name(fn)} did not finish within {timeout}s; the work was cancelled"
            ) from None


class _WorkFuture(concurrent.futures.Future[Any]):
    """A Future whose ``cancel_work()`` also cancels the running Deferred or task."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._loop = loop
        self.work: Deferred[Any] | None = None

    def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Reactor thread: run ``fn``; complete with its outcome when that is known."""
        d = call_as_deferred(fn, *args, **kwargs)
        self.work = d
        d.addCallbacks(self.set_result, self.fail)

    def fail(self, failure: Failure) -> None:
        exc = failure.value
        if isinstance(exc, BaseException):
            tb = failure.getTracebackObject()
            if tb is not None and exc.__traceback__ is None:
                exc = exc.with_traceback(tb)
            self.set_exception(exc)
        else:  # pragma: no cover - a Failure always wraps an exception
            self.set_exception(RuntimeError(str(failure)))

    def cancel_work(self) -> None:
        """Cancel the work wherever it is (may be called in any thread)."""
        if self.cancel():  # not started yet: it will never run
            return

        def cancel() -> None:
            if self.work is not None and not self.work.called:
                self.work.cancel()

        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(cancel)


def _name(fn: Callable[..., Any]) -> str:
    return str(getattr(fn, "__qualname__", None) or repr(fn))


__all__ = ["Bridge", "CancelledError"]
