"""Supervision of one service: Start, restarts with backoff, Stop within a timeout.

- ``Start`` runs as the service's own task, so no service waits for another's Start.
- A Start that raises is reported (by the call) and restarted after the backoff delay
  (``restart = "never"``: the service is ``failed`` and refuses messages). Meanwhile the
  service is ``starting``: messages wait in its mailbox. A Start that ran for at least the
  longest delay before raising starts the backoff over.
- A Start that has not returned after ``start_report_timeout`` is only reported: Start may
  legitimately run forever.
- ``Stop`` cancels a Start still running (as the original did), then calls ``Stop`` with a
  timeout; one that raises or hangs is reported and the stop goes on. The service's
  remaining calls are then cancelled.
- A disabled service is never started nor stopped.

Reactor thread only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall
from twisted.python.failure import Failure

from hadaemon.backoff import Backoff
from hadaemon.bus import Level
from hadaemon.services.errors import PipInstallPending
from hadaemon.services.mailbox import ServiceState
from hadaemon.services.reporting import Reporter
from hadaemon.services.runtime import ServiceRuntime


class Supervisor:
    """Starts, restarts and stops one :class:`ServiceRuntime`."""

    def __init__(
        self,
        runtime: ServiceRuntime,
        *,
        reactor: Any,
        reporter: Reporter,
        backoff: Backoff | None,
        start_report_timeout: float,
        stop_timeout: float,
        on_start: Callable[[ServiceRuntime], None] = lambda runtime: None,
    ) -> None:
        self.runtime = runtime
        self._reactor = reactor
        self._reporter = reporter
        self.backoff = backoff  # None: never restarted
        self.start_report_timeout = start_report_timeout
        self.stop_timeout = stop_timeout
        self._on_start = on_start
        self.failures = 0  # Start failures in a row (the backoff's count)
        self.starts = 0
        self._start: Deferred[Any] | None = None
        self._needs_stop = False
        self._restart_timer: IDelayedCall | None = None
        self._report_timer: IDelayedCall | None = None

    @property
    def id(self) -> str:
        return self.runtime.id

    def start(self) -> bool:
        """Call Start as its own task (not for disabled or running services)."""
        runtime = self.runtime
        if runtime.state in (ServiceState.DISABLED, ServiceState.RUNNING,
                             ServiceState.STOPPING):
            return False
        self._cancel_timers()
        self.starts += 1
        self._needs_stop = True
        if self.backoff is not None:
            self.backoff.started()
        start, runtime.instance.task = runtime.call_with_task("Start")
        self._start = start
        # Running from the moment Start is called: the messages that waited go to tasks
        # created after Start's, so Start's first step always runs before them.
        runtime.set_state(ServiceState.RUNNING)
        self._reporter.lifecycle(self.id, "starting", attempt=self.starts)
        self._report_timer = self._reactor.callLater(
            self.start_report_timeout, self._start_still_running
        )
        start.addCallbacks(self._start_returned, self._start_raised, errbackArgs=(start,))
        self._on_start(runtime)
        return True

    def _start_still_running(self) -> None:
        self._report_timer = None
        self._reporter.event(
            self.id,
            f"Start has not returned after {self.start_report_timeout}s (fine if it is "
            "meant to run for as long as the service does)",
            Level.INFO,
        )

    def _start_returned(self, _: object) -> None:
        if self._report_timer is not None and self._report_timer.active():
            self._report_timer.cancel()
        self._report_timer = None
        self.failures = 0
        if self.backoff is not None:
            self.backoff.reset()
        if self.runtime.state is ServiceState.RUNNING:
            self._reporter.lifecycle(self.id, "started")

    def _start_raised(self, failure: Failure, start: Deferred[Any]) -> None:
        # The failure itself was logged and published by the call.
        if self._report_timer is not None and self._report_timer.active():
            self._report_timer.cancel()
        self._report_timer = None
        if start is not self._start or self.runtime.state is not ServiceState.RUNNING:
            return  # stopped meanwhile
        pending = failure.value if isinstance(failure.value, PipInstallPending) else None
        if pending is not None:
            # Not the service's fault: start again as soon as the package is there.
            self.runtime.set_state(ServiceState.STARTING)
            self._reporter.lifecycle(self.id, "failed", waiting_for=pending.package)
            pending.pending.addBoth(self._install_finished)
            return
        if self.backoff is None:
            self.runtime.set_state(ServiceState.FAILED)
            self._reporter.event(self.id, "Start failed; not restarted (restart = \"never\")",
                                 Level.ERROR, restart=False)
            self._reporter.lifecycle(self.id, "failed", restart_in=None)
            return
        delay = self.backoff.next_delay()  # (a Start that ran long starts it over)
        self.failures = self.backoff.failures
        self.runtime.set_state(ServiceState.STARTING)
        self._reporter.event(
            self.id, f"Start failed ({self.failures} in a row); restarting in {delay:.3g}s",
            Level.WARNING, restart_in=delay,
        )
        self._reporter.lifecycle(self.id, "failed", restart_in=delay)
        self._restart_timer = self._reactor.callLater(delay, self._restart)

    def _install_finished(self, result: object) -> None:
        if isinstance(result, Failure):
            self._reporter.event(self.id, result.getErrorMessage(), Level.ERROR)
        if self.runtime.state is ServiceState.STARTING:
            self.start()  # a failed installation then fails Start with the pip output

    def _restart(self) -> None:
        self._restart_timer = None
        if self.runtime.state is ServiceState.STARTING:
            self.start()

    async def stop(self) -> None:
        """Stop the service: cancel its Start, call Stop within the timeout, cancel the rest.

        Never raises; a Stop that raises or hangs is reported.
        """
        runtime = self.runtime
        self._cancel_timers()
        if runtime.state in (ServiceState.DISABLED, ServiceState.STOPPED,
                             ServiceState.STOPPING):
            return
        runtime.set_state(ServiceState.STOPPING)
        self._reporter.lifecycle(self.id, "stopping")
        start, self._start = self._start, None
        if start is not None and not start.called:
            start.cancel()  # cancels Start's task, as the original did before Stop
        if self._needs_stop:
            self._needs_stop = False
            await self._call_stop()
        runtime.cancel_calls()
        runtime.set_state(ServiceState.STOPPED)
        self._reporter.lifecycle(self.id, "stopped")

    async def replace(self, instance: Any) -> None:
        """Hot reload: the service runs ``instance`` (a new class's) from now on.

        Messages arriving meanwhile wait in the mailbox (the service is ``starting``);
        the calls already running may finish (within the Stop timeout), then the old
        instance gets ``Stop`` and the new one ``Start``, which then takes the waiting
        messages. A service that was stopped on request or disabled only gets the new
        instance (started when it is started). A new Start that raises is handled as
        any: reported and restarted with the backoff, the messages still waiting.
        """
        runtime = self.runtime
        if runtime.state in (ServiceState.DISABLED, ServiceState.STOPPED,
                             ServiceState.STOPPING):
            runtime.replace_instance(instance)
            return
        self._cancel_timers()
        runtime.set_state(ServiceState.STARTING)  # from now on messages wait
        self._reporter.lifecycle(self.id, "reloading")
        start, self._start = self._start, None
        idle = runtime.idle(but=getattr(runtime.instance, "task", None))
        idle.addTimeout(self.stop_timeout, self._reactor)
        try:
            await idle
        except defer.TimeoutError:
            self._reporter.event(
                self.id, f"calls still running {self.stop_timeout}s into the reload are "
                "cancelled", Level.WARNING,
            )
        if start is not None and not start.called:
            start.cancel()
        if self._needs_stop:
            self._needs_stop = False
            await self._call_stop()
        runtime.cancel_calls()
        runtime.replace_instance(instance)
        if runtime.state is not ServiceState.STARTING:
            return  # stopped meanwhile (the daemon is stopping): not started again
        self.failures = 0
        if self.backoff is not None:
            self.backoff.reset()
        self.start()

    async def _call_stop(self) -> None:
        """``Stop`` within the timeout; one that raises or hangs is reported."""
        stop = self.runtime.call("Stop")
        stop.addTimeout(self.stop_timeout, self._reactor)
        try:
            await stop
        except defer.TimeoutError:
            self._reporter.event(
                self.id, f"Stop did not return within {self.stop_timeout}s; going on "
                "without it", Level.ERROR,
            )
        except Exception:
            pass  # reported by the call, with its traceback

    def _cancel_timers(self) -> None:
        for timer in (self._restart_timer, self._report_timer):
            if timer is not None and timer.active():
                timer.cancel()
        self._restart_timer = self._report_timer = None


__all__ = ["Supervisor"]
