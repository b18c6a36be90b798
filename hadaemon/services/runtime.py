"""One user service at run time: its instance, its state, what it accepts, its calls.

Dispatch rules (the original let any service call any method of any other):

- only the service's own public ``async def`` methods are actions; private names
  (``_x``), plain functions and the CustomService API (``Stop``, ``ThrowError``,
  ``StopCustomServices``...) are refused, whoever sends them;
- the hooks ``StateUpdate`` and ``msb_signed_in`` are called by the orchestrator only;
- a message arriving while the service is starting (or waiting to be restarted) waits in
  its mailbox; one for a stopped, disabled or failed service is refused
  (:class:`ServiceNotRunning`), which the router reports back to the sender.

Every call runs as its own asyncio task (:class:`ServiceCall`), named
``service:<id>/<action>`` so the daemon's watchdog names it too.

Reactor thread only.
"""

from __future__ import annotations

import asyncio
import inspect
from collections import deque
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, fail
from twisted.python.failure import Failure

from hadaemon.bus import Bus, BusMessage
from hadaemon.services.base import HOOKS, RESERVED, CustomService
from hadaemon.services.config import ServiceSettings
from hadaemon.services.errors import ActionRefused, ServiceNotRunning
from hadaemon.services.mailbox import Mailbox, ServiceState
from hadaemon.services.message import QueueMessage
from hadaemon.services.reporting import Reporter
from hadaemon.services.tasks import ServiceCall
from hadaemon.usercode import failure_of

SYSTEM = "orchestrator"  # the source of hook calls

_Resolved = tuple[Callable[..., Any], str] | str  # (function, task name) or why refused


class ServiceRuntime(Mailbox):
    """A loaded service (see the module docstring)."""

    def __init__(
        self,
        instance: CustomService,
        settings: ServiceSettings,
        *,
        bus: Bus,
        loop: asyncio.AbstractEventLoop,
        reporter: Reporter,
        threshold: float,
        service_id: str | None = None,
    ) -> None:
        super().__init__(
            service_id or settings.id, bus, loop, mailbox_size=settings.mailbox_size,
            concurrency=settings.concurrency,
        )
        self.instance = instance
        self.settings = settings
        self.name = type(instance).__name__
        self.threshold = threshold
        self.state = ServiceState.STARTING if settings.enabled else ServiceState.DISABLED
        self._reporter = reporter
        self._resolved: dict[str, _Resolved] = {}
        self._calls: set[ServiceCall] = set()
        self._gated: deque[tuple[str, QueueMessage, Deferred[Any], bool]] = deque()
        self._idle_waiters: list[tuple[Deferred[None], object]] = []

    # -- what it accepts ---------------------------------------------------------------

    def refusal(self, action: str) -> str | None:
        resolved = self._resolved.get(action)
        if resolved is None:
            resolved = self._resolve(action)
        return resolved if isinstance(resolved, str) else None

    def _resolve(self, action: str) -> _Resolved:
        resolved: _Resolved
        if not isinstance(action, str) or not action:
            return f"no action given for service {self.id}"
        if action.startswith("_"):
            resolved = f"{action!r} of service {self.id} is private"
        elif action in RESERVED or action in HOOKS:
            resolved = (
                f"{action!r} of service {self.id} is part of the CustomService API; "
                "other services cannot call it"
            )
        else:
            fn = getattr(type(self.instance), action, None)
            if fn is None:
                resolved = f"service {self.id} has no method {action!r}"
            elif not inspect.iscoroutinefunction(fn):
                resolved = f"{action!r} of service {self.id} is not an async method"
            else:
                resolved = (fn, f"service:{self.id}/{action}")
        if len(self._resolved) < 1024:
            self._resolved[action] = resolved
        return resolved

    # -- the mailbox's handler (the bus calls it in order) -----------------------------

    def receive(self, message: BusMessage) -> object:
        if self._room_waiters:
            self._wake_one()  # a message left the mailbox: one waiting sender may go on
        action = message.address.path
        qm = message if type(message) is QueueMessage else QueueMessage.arrived(
            message, self.id, action)
        state = self.state
        if state is ServiceState.RUNNING:
            return self._dispatch(action, qm)
        if state is ServiceState.STARTING:
            reason = self.refusal(action)
            if reason is not None:
                raise ActionRefused(reason)
            gated: Deferred[Any] = Deferred()
            self._gated.append((action, qm, gated, False))
            return gated
        raise ServiceNotRunning(self.id, str(ServiceState(state)))

    def _dispatch(self, action: str, qm: QueueMessage) -> Deferred[Any] | ServiceCall:
        """Start the action's task; the call tells the bus its outcome (a Completion)."""
        resolved = self._resolved.get(action) or self._resolve(action)
        if isinstance(resolved, str):
            raise ActionRefused(resolved)
        fn, name = resolved
        try:
            coro = fn(self.instance, qm)
        except BaseException as exc:  # e.g. a handler taking no message argument
            return self._not_called(exc, action, qm.source, True)
        call = ServiceCall(coro, self, action, self._loop, qm.source, True)
        self._calls.add(call)
        call.start(name)
        return call

    def _not_called(
        self, exc: BaseException, action: str, source: str, via_bus: bool
    ) -> Deferred[Any]:
        failure = failure_of(exc)
        self._reporter.failed(self.id, action, failure, log=not via_bus, sender=source)
        return fail(failure)

    # -- calls made by the orchestrator --------------------------------------------------

    def call(self, method: str, *args: Any) -> Deferred[Any]:
        """Run ``Start``/``Stop``/a hook of the instance as its own task (not via the bus)."""
        return self.call_with_task(method, *args)[0]

    def call_with_task(
        self, method: str, *args: Any
    ) -> tuple[Deferred[Any], asyncio.Task[Any] | None]:
        """:meth:`call`, also returning the task (None if the method could not be called)."""
        try:
            coro = getattr(self.instance, method)(*args)
            if not inspect.iscoroutine(coro):
                raise TypeError(f"{self.name}.{method} is not an async def method")
        except BaseException as exc:
            return self._not_called(exc, method, SYSTEM, False), None
        call = ServiceCall(coro, self, method, self._loop, source=SYSTEM)
        self._calls.add(call)
        task = call.start(f"service:{self.id}/{method}")
        assert call.deferred is not None  # not a bus delivery
        return call.deferred, task

    def hook(self, method: str, payload: Any) -> Deferred[Any] | None:
        """Deliver a hook (``StateUpdate``, ``msb_signed_in``); waits while starting."""
        qm = QueueMessage(SYSTEM, self.id, method, payload)
        if self.state is ServiceState.RUNNING:
            return self.call(method, qm)
        if self.state is ServiceState.STARTING:
            gated: Deferred[Any] = Deferred()
            self._gated.append((method, qm, gated, True))
            return gated
        return None

    def set_state(self, state: ServiceState) -> None:
        """Change state; waiting messages go on (running) or are refused (not running)."""
        self.state = state
        if not self._gated or state is ServiceState.STARTING:
            return
        gated, self._gated = self._gated, deque()
        for action, qm, d, is_hook in gated:
            if state is ServiceState.RUNNING:
                try:
                    result = self.call(action, qm) if is_hook else self._dispatch(action, qm)
                except Exception:
                    d.errback(Failure())
                else:
                    if isinstance(result, Deferred):
                        result.chainDeferred(d)
                    else:
                        result.when_done(_fire, d)
            elif is_hook:
                d.callback(None)
            else:
                d.errback(ServiceNotRunning(self.id, str(state)))

    def replace_instance(self, instance: CustomService) -> None:
        """Run ``instance`` from now on (a reload; the old one was stopped): its actions
        are looked up afresh."""
        self.instance = instance
        self.name = type(instance).__name__
        self._resolved.clear()
        self._accepted.clear()

    def idle(self, but: object = None) -> Deferred[None]:
        """Fires once no call runs but the one whose task is ``but`` (Start's)."""
        d: Deferred[None] = Deferred()
        self._idle_waiters.append((d, but))
        self._check_idle()
        return d

    def _check_idle(self) -> None:
        waiting = []
        for d, but in self._idle_waiters:
            if d.called:
                continue
            if all(call.task is but for call in self._calls):
                d.callback(None)
            else:
                waiting.append((d, but))
        self._idle_waiters = waiting

    def cancel_calls(self) -> None:
        """Cancel every running call of this service (after its Stop)."""
        for call in list(self._calls):
            call.cancel()

    @property
    def running_calls(self) -> int:
        return len(self._calls)

    # -- CallOwner: what the calls report ------------------------------------------------

    def call_finished(self, call: ServiceCall) -> None:
        self._calls.discard(call)
        if self._idle_waiters:
            self._check_idle()

    def call_failed(self, call: ServiceCall, failure: Failure) -> None:
        # Deliveries through the bus are logged with their traceback by the bus itself.
        self._reporter.failed(self.id, call.action, failure, log=not call.via_bus,
                              sender=call.source)

    def call_blocked(self, call: ServiceCall, seconds: float) -> None:
        self._reporter.blocked(self.id, call.action, seconds, self.threshold)


def _fire(outcome: object, d: Deferred[Any]) -> None:
    if isinstance(outcome, Failure):
        d.errback(outcome)
    else:
        d.callback(outcome)


__all__ = ["SYSTEM", "ServiceRuntime"]
