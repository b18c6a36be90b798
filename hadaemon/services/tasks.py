"""One call of a service's coroutine (an action, Start, Stop, a hook) as an asyncio task.

:class:`ServiceCall` wraps the coroutine the way the task drives it, step by step, so that
everything the services world promises happens at the one place user code runs:

- each step (the code between two awaits) is timed: a step longer than the threshold
  blocked the loop, and is reported by service and action;
- ``sys.exit()``, ``KeyboardInterrupt`` and every other ``BaseException`` become
  :class:`hadaemon.usercode.UserCodeEscape`, an ordinary failure that names the user's
  file and line (a task raising ``SystemExit`` or ``KeyboardInterrupt`` would stop the
  loop, and with it the reactor);
- a failure is reported by the owner and never lost;
- ``await deferred`` works, as in every hadaemon coroutine;
- the outcome (the coroutine's result, or its failure; None once cancelled, as a
  cancelled call is no failure) is told as soon as it is known: a call made by the
  orchestrator (Start, Stop, a hook) fires its ``deferred``; a delivery from the bus
  (``via_bus``, one per message) is a :class:`hadaemon.bus.Completion` and tells its one
  listener, the bus, directly: no Deferred per message. The task itself then ends
  quietly, so asyncio never logs "Task exception was never retrieved".

Reactor thread only (the asyncio reactor's loop).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine, Generator
from time import perf_counter
from typing import Any, Protocol

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from hadaemon.aio import waker_for
from hadaemon.bus import Completion
from hadaemon.logs import get_logger
from hadaemon.usercode import failure_of

_log = get_logger("hadaemon.services")


class CallOwner(Protocol):
    """What a call reports to: the service runtime it belongs to."""

    threshold: float

    def call_finished(self, call: ServiceCall) -> None: ...
    def call_failed(self, call: ServiceCall, failure: Failure) -> None: ...
    def call_blocked(self, call: ServiceCall, seconds: float) -> None: ...


class ServiceCall(Coroutine[Any, Any, Any], Completion):
    """Drives one service coroutine for its task; see the module docstring."""

    __slots__ = (
        "_coro", "_listener", "_listener_args", "_loop", "_owner", "action", "deferred",
        "source", "task", "via_bus",
    )

    def __init__(
        self,
        coro: Coroutine[Any, Any, Any],
        owner: CallOwner,
        action: str,
        loop: asyncio.AbstractEventLoop,
        source: str = "",
        via_bus: bool = False,
    ) -> None:
        self._coro = coro
        self._owner = owner
        self._loop = loop
        self.action = action
        self.source = source
        self.via_bus = via_bus  # failures of bus deliveries are also logged by the bus
        self.deferred: Deferred[Any] | None = None if via_bus else Deferred(self._cancel)
        self.task: asyncio.Task[Any] | None = None
        self._listener: Callable[..., object] | None = None
        self._listener_args: tuple[Any, ...] = ()

    def when_done(self, callback: Callable[..., object], *args: Any) -> None:
        """See :class:`hadaemon.bus.Completion` (a bus delivery's one listener)."""
        self._listener = callback
        self._listener_args = args

    def start(self, name: str) -> asyncio.Task[Any]:
        """Create the task; it runs from the loop's next iteration."""
        loop = self._loop
        if loop.get_task_factory() is None:
            # What loop.create_task does, minus a Python frame: this runs per message.
            task: asyncio.Task[Any] = asyncio.Task(self, loop=loop, name=name)
        else:
            task = loop.create_task(self, name=name)
        self.task = task
        return task

    def cancel(self) -> None:
        """Cancel the task; the outcome is None (a cancelled call is no failure)."""
        if self.task is not None and not self.task.done():
            self.task.cancel()

    def _cancel(self, d: Deferred[Any]) -> None:
        # Deferred.cancel() (e.g. a Stop timeout): stop the coroutine too.
        self.cancel()

    # -- the coroutine protocol, as the task calls it ----------------------------------

    def __next__(self) -> Any:
        return self._step(self._coro.send, None)

    def send(self, value: Any) -> Any:
        return self._step(self._coro.send, value)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        if val is None and tb is None:
            return self._step(self._coro.throw, typ)
        return self._step(lambda _: self._coro.throw(typ, val, tb), None)

    def close(self) -> None:
        self._coro.close()

    def __await__(self) -> Generator[Any, None, Any]:
        return self

    def __iter__(self) -> ServiceCall:
        return self

    def _step(self, method: Any, arg: Any) -> Any:
        started = perf_counter()
        try:
            yielded = method(arg)
        except StopIteration as stop:
            self._timed(started)
            self._settled(stop.value)
            raise
        except BaseException:
            self._timed(started)
            self._raised()
            raise StopIteration from None
        self._timed(started)
        # A future (or a bare yield) first: isinstance(x, Deferred), an ABC, is slow.
        if yielded is None or isinstance(yielded, asyncio.Future):
            return yielded
        if isinstance(yielded, Deferred):
            return self._swap(yielded)
        return yielded

    # -- outcomes ------------------------------------------------------------------------

    def _timed(self, started: float) -> None:
        elapsed = perf_counter() - started
        if elapsed > self._owner.threshold:
            self._owner.call_blocked(self, elapsed)

    def _settled(self, value: Any) -> None:
        self.task = None
        self._owner.call_finished(self)
        self._tell(value)

    def _tell(self, outcome: object) -> None:
        """Hand the outcome (a result, or a Failure) to the Deferred or the listener."""
        d = self.deferred
        if d is not None:
            d._canceller = None
            if not d.called:
                if isinstance(outcome, Failure):
                    d.errback(outcome)
                else:
                    d.callback(outcome)
            return
        listener = self._listener
        if listener is not None:
            self._listener = None
            try:
                listener(outcome, *self._listener_args)
            except Exception:  # as a Deferred would: the task itself must end quietly
                _log.failure("the listener of {action} failed", action=self.action)

    def _raised(self) -> None:
        """Report the coroutine's exception; the task then ends quietly (or cancelled).

        Called inside the ``except`` block: sys.exc_info() is the coroutine's exception.
        """
        exc = sys.exc_info()[1]
        assert exc is not None
        self.task = None
        if isinstance(exc, asyncio.CancelledError):
            self._owner.call_finished(self)
            self._tell(None)
            raise exc  # the task ends as cancelled, which asyncio never logs
        failure = failure_of(exc)  # KeyboardInterrupt, sys.exit() too: a failure
        self._owner.call_finished(self)
        self._owner.call_failed(self, failure)
        self._tell(failure)

    def _swap(self, yielded: Deferred[Any]) -> asyncio.Future[None]:
        return waker_for(yielded, self._loop)


__all__ = ["CallOwner", "ServiceCall"]
