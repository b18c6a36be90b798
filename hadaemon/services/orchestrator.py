"""The orchestrator: every service of the plugin, the built-ins, and their lifecycles.

It loads the configured services, gives each a mailbox on the bus and a supervisor,
starts the enabled ones (each Start its own task), delivers ``StateUpdate`` when the
daemon's state changes (``lifecycle/daemon/started``, ``lifecycle/daemon/stopping``,
``lifecycle/mqtt/*``) and ``msb_signed_in`` once the daemon started, forwards subscribed
bus events to services, and stops everything within its timeouts.

Reactor thread only.
"""

from __future__ import annotations

import asyncio
import inspect
import traceback
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.task import deferLater

from hadaemon.aio import as_deferred
from hadaemon.bus import Bus, BusError, EndpointExists, Event, Level, Subscription
from hadaemon.services.base import CustomService
from hadaemon.services.builtins import (
    BuiltinService,
    com_actions,
    logger_actions,
    orchestrator_actions,
)
from hadaemon.services.config import ServiceSettings, ServicesSettings
from hadaemon.services.errors import ServiceLoadError
from hadaemon.services.events import event_to_dict
from hadaemon.services.loading import ServiceLoader
from hadaemon.services.mailbox import ACCEPTING, Mailbox, ServiceState
from hadaemon.services.message import QueueMessage
from hadaemon.services.pip import PipInstaller
from hadaemon.services.reporting import Reporter
from hadaemon.services.routing import Router, ServiceQueue
from hadaemon.services.runtime import ServiceRuntime
from hadaemon.services.supervisor import Supervisor
from hadaemon.services.upstream import Upstream
from hadaemon.usercode import contain

BUILTIN_IDS = ("logger", "orchestrator", "com")


class Orchestrator:
    """All services of one ``services`` plugin (see the module docstring)."""

    def __init__(
        self,
        settings: ServicesSettings,
        *,
        bus: Bus,
        reactor: Any,
        loop: asyncio.AbstractEventLoop,
        mqtt: Callable[[], object | None] = lambda: None,
    ) -> None:
        self.settings = settings
        self._bus = bus
        self._reactor = reactor
        self._loop = loop
        self.reporter = Reporter(bus, reactor.seconds)
        self.targets: dict[str, Mailbox] = {}
        self.runtimes: dict[str, ServiceRuntime] = {}
        self.supervisors: dict[str, Supervisor] = {}
        self.router = Router(
            bus, self.targets, loop, self.reporter, overflow=settings.overflow,
            overflow_timeout=settings.overflow_timeout,
        )
        self.pip = PipInstaller(
            reactor, enabled=settings.pip_install, target=settings.pip_target,
            options=settings.pip_options, timeout=settings.pip_timeout,
        )
        self.queue = ServiceQueue(self.router, self.node_settings, self.pip)
        self.upstream = Upstream(
            mqtt, self.reporter, template=settings.com_topic, node=settings.node_name,
            qos=settings.com_qos, retain=settings.com_retain,
        )
        self.daemon_state = "starting"
        self._upstream_state: str | None = None
        self._subscriptions: dict[str, list[Subscription]] = {}
        self._stopping_hooks: list[Deferred[Any]] = []
        self._closed = False
        size, concurrency = settings.mailbox_size, settings.concurrency
        for service_id, actions, conc in (
            ("logger", logger_actions(self.reporter, bus), 1),
            ("orchestrator", orchestrator_actions(self), 1),
            ("com", com_actions(self.upstream, bus), concurrency),
        ):
            builtin = BuiltinService(service_id, actions, bus, loop, mailbox_size=size,
                                     concurrency=conc)
            builtin.register()
            self.targets[service_id] = builtin

    def node_settings(self) -> dict[str, Any]:
        """``get_settings()``: ``nodeName`` and the configured extra settings."""
        return {"nodeName": self.settings.node_name, **self.settings.settings}

    # -- loading -----------------------------------------------------------------------

    def load(self, loader: ServiceLoader) -> None:
        """Load and construct every configured service; a failing one is reported, skipped."""
        ids: dict[str, str] = {}
        for service in self.settings.services:
            other = ids.get(service.id)
            if other is not None:
                self._load_failed(service.id, ServiceLoadError(
                    f"services {other} and {service.name} both have the id {service.id} "
                    "(ids ignore case); only the first is loaded"
                ))
                continue
            ids[service.id] = service.name
            try:
                cls = loader.load(service.name)
                instance = _construct(cls, service.id, self.queue, service.config_shape())
                self.add(instance, service)
            except ServiceLoadError as exc:
                self._load_failed(service.id, exc)

    def _load_failed(self, service_id: str, exc: ServiceLoadError) -> None:
        self.reporter.event(service_id, f"not loaded: {exc}", Level.ERROR,
                            traceback=exc.traceback)
        if exc.traceback:
            self.reporter.service_log(service_id).error("{traceback}",
                                                        traceback=exc.traceback)

    def add(
        self, instance: CustomService, settings: ServiceSettings, *,
        service_id: str | None = None,
    ) -> ServiceRuntime:
        """Give a constructed service its mailbox, supervisor and subscriptions."""
        runtime = ServiceRuntime(
            instance, settings, bus=self._bus, loop=self._loop, reporter=self.reporter,
            threshold=self.settings.watchdog_threshold, service_id=service_id,
        )
        problems = [
            f"subscribe: {pattern!r} -> {reason}"
            for pattern, action in settings.subscribe.items()
            if (reason := runtime.refusal(action)) is not None
        ]
        if problems:
            raise ServiceLoadError(f"service {runtime.id}: " + "; ".join(problems))
        try:
            runtime.register()
        except EndpointExists:
            raise ServiceLoadError(
                f"service {runtime.id}: the bus address service:{runtime.id} is taken "
                "(another service or plugin uses this id)"
            ) from None
        self.targets[runtime.id] = runtime
        self.runtimes[runtime.id] = runtime
        self.supervisors[runtime.id] = Supervisor(
            runtime, reactor=self._reactor, reporter=self.reporter,
            backoff=self.settings.restart_backoff(self._reactor),
            start_report_timeout=self.settings.start_report_timeout,
            stop_timeout=self.settings.stop_timeout, on_start=self._started_late,
        )
        self._subscribe(runtime, settings)
        return runtime

    # -- hot reload (docs/reload.md) -----------------------------------------------------

    async def replace(self, cls: type[CustomService], settings: ServiceSettings) -> None:
        """Run service ``settings.id`` from a new class (its file reloaded) or with new
        settings: constructed here, then swapped in by its supervisor (messages wait in
        its mailbox meanwhile), or added and started if it was not loaded.
        ServiceLoadError (the constructor raised, a subscribed method is missing): the
        running version is left alone."""
        missing = [f"subscribe: {pattern!r} -> {action!r} is not an async method of "
                   f"{cls.__name__}" for pattern, action in settings.subscribe.items()
                   if not inspect.iscoroutinefunction(getattr(cls, action, None))]
        if missing:
            raise ServiceLoadError(f"service {settings.id}: " + "; ".join(missing))
        instance = _construct(cls, settings.id, self.queue, settings.config_shape())
        runtime = self.runtimes.get(settings.id)
        if runtime is not None and (runtime.settings.mailbox_size, runtime.settings.concurrency
                                    ) != (settings.mailbox_size, settings.concurrency):
            await self.remove(settings.id)  # (a bus endpoint's size is fixed)
            runtime = None
        if runtime is None:
            self.add(instance, settings)
            if settings.enabled:
                self.supervisors[settings.id].start()
            return
        supervisor = self.supervisors[runtime.id]
        if settings.subscribe != runtime.settings.subscribe:
            self._unsubscribe(runtime.id)
            self._subscribe(runtime, settings)
        if settings.enabled != runtime.settings.enabled:
            if settings.enabled:
                runtime.settings = settings
                runtime.replace_instance(instance)
                runtime.set_state(ServiceState.STOPPED)
                supervisor.start()
            else:
                await supervisor.stop()
                runtime.settings = settings
                runtime.replace_instance(instance)
                runtime.set_state(ServiceState.DISABLED)
            return
        runtime.settings = settings
        await supervisor.replace(instance)

    async def remove(self, service_id: str) -> None:
        """A service removed from the config: Stop, then its mailbox goes (messages still
        waiting fail with DestinationGone)."""
        supervisor = self.supervisors.pop(service_id)
        await supervisor.stop()
        self._unsubscribe(service_id)
        runtime = self.runtimes.pop(service_id)
        runtime.unregister()
        self.targets.pop(service_id, None)

    def _unsubscribe(self, service_id: str) -> None:
        for subscription in self._subscriptions.pop(service_id, []):
            subscription.cancel()

    def _subscribe(self, runtime: ServiceRuntime, settings: ServiceSettings) -> None:
        self._subscriptions[runtime.id] = [
            self._bus.subscribe(pattern, partial(self._deliver_event, runtime, action),
                                name=f"service {runtime.id}: {pattern} -> {action}")
            for pattern, action in settings.subscribe.items()
        ]

    # -- starting and stopping -----------------------------------------------------------

    def start_all(self) -> None:
        """Start every enabled service, in config order, none waiting for another."""
        for supervisor in list(self.supervisors.values()):
            supervisor.start()

    def find(self, key: object) -> ServiceRuntime | None:
        """A user service by id or by name, ignoring case."""
        if not isinstance(key, str):
            return None
        lowered = key.lower()
        runtime = self.runtimes.get(lowered) or self.runtimes.get(f"{lowered}_py")
        return runtime

    async def start_service(self, service: object, *, requested_by: str) -> None:
        """``StartService``: a stopped service by id or name, or a new instance."""
        if isinstance(service, CustomService):
            self._start_instance(service, requested_by)
            return
        runtime = self.find(service)
        if runtime is None:
            self.router.warn_sender(requested_by, f"StartService: no service {service!r}")
        elif runtime.state is ServiceState.DISABLED:
            self.router.warn_sender(
                requested_by, f"StartService: service {runtime.id} is disabled in the config"
            )
        else:
            self.supervisors[runtime.id].start()

    def _start_instance(self, instance: CustomService, requested_by: str) -> None:
        service_id = str(getattr(instance, "id", "") or "").lower()
        if not service_id or "/" in service_id or service_id in self.targets:
            self.router.warn_sender(
                requested_by, f"StartService: cannot add a service with id {service_id!r} "
                "(empty, invalid or already used)",
            )
            return
        settings = self.settings.service_settings(type(instance).__name__)
        try:
            self.add(instance, settings, service_id=service_id)
        except ServiceLoadError as exc:
            self.router.warn_sender(requested_by, f"StartService: {exc}")
            return
        self.supervisors[service_id].start()

    async def stop_service(self, service: object, *, requested_by: str) -> None:
        runtime = self.find(service)
        if runtime is None:
            self.router.warn_sender(requested_by, f"StopService: no service {service!r}")
            return
        await self.supervisors[runtime.id].stop()

    def start_custom_services(self) -> None:
        """``StartCustomServices``: start every enabled service that is not running."""
        for supervisor in list(self.supervisors.values()):
            if supervisor.runtime.state in (ServiceState.STOPPED, ServiceState.FAILED):
                supervisor.start()

    async def stop_custom_services(self) -> None:
        """``StopCustomServices``: stop every user service at once, each within its timeout."""
        await _together(supervisor.stop() for supervisor in list(self.supervisors.values()))

    async def close(self) -> None:
        """Stop everything (the plugin stops): StateUpdate('stopping'), Stop, endpoints."""
        if self._closed:
            return
        self._closed = True
        if self.daemon_state != "stopping":
            self.daemon_stopping()
        hooks = [d for d in self._stopping_hooks if not d.called]
        if hooks and self.settings.state_update_timeout > 0:
            await _within(self._reactor, hooks, self.settings.state_update_timeout)
        await self.stop_custom_services()
        for subscriptions in self._subscriptions.values():
            for subscription in subscriptions:
                subscription.cancel()
        self._subscriptions.clear()
        for runtime in self.runtimes.values():
            runtime.unregister()
        # Let the logger write what the Stops said before its endpoint goes.
        logger = self.targets["logger"]
        for _ in range(100):
            registration = logger.registration
            if registration is None or not (registration.queued or registration.in_flight):
                break
            await deferLater(self._reactor, 0, lambda: None)
        for service_id in BUILTIN_IDS:
            self.targets[service_id].unregister()

    # -- state updates -------------------------------------------------------------------

    def daemon_started(self) -> None:
        """``lifecycle/daemon/started``: StateUpdate('started'), then ``msb_signed_in``."""
        self.daemon_state = "started"
        self._hooks("StateUpdate", self.state_message("started"))
        self._hooks("msb_signed_in", self.node_settings())

    def daemon_stopping(self) -> None:
        """``lifecycle/daemon/stopping``: StateUpdate('stopping'); Stop comes after."""
        self.daemon_state = "stopping"
        self._stopping_hooks = self._hooks("StateUpdate", self.state_message("stopping"))

    def upstream_changed(self, state: str) -> None:
        """``lifecycle/mqtt/<state>``: connected, reconnected or disconnected."""
        self._upstream_state = state
        if self.daemon_state != "stopping":
            self._hooks("StateUpdate", self.state_message(state))

    def upstream_state(self) -> str:
        if self._upstream_state is not None:
            return self._upstream_state
        connection = self.upstream.connection()
        if connection is None:
            return "none"
        return "connected" if connection.connected else "disconnected"

    def state_message(self, change: str) -> dict[str, Any]:
        """``msg.message[0]`` of StateUpdate: the original's twin shape, plus ``state``."""
        return {
            "state": change,
            "desired": {"state": "stopped" if self.daemon_state == "stopping" else "started"},
            "reported": {
                "daemon": self.daemon_state,
                "upstream": self.upstream_state(),
                "nodeName": self.settings.node_name,
            },
        }

    def _hooks(self, method: str, payload: Any,
               runtimes: Iterable[ServiceRuntime] | None = None) -> list[Deferred[Any]]:
        calls = []
        for runtime in list(self.runtimes.values()) if runtimes is None else runtimes:
            d = runtime.hook(method, payload)
            if d is not None:
                calls.append(d.addErrback(lambda _: None))  # reported by the call
        return calls

    def _started_late(self, runtime: ServiceRuntime) -> None:
        # A service (re)started after the daemon started never saw those events: it gets
        # the current state right after its Start.
        if self.daemon_state == "started":
            self._hooks("StateUpdate", self.state_message("started"), [runtime])
            self._hooks("msb_signed_in", self.node_settings(), [runtime])

    def _deliver_event(self, runtime: ServiceRuntime, action: str, event: Event) -> None:
        if runtime.state not in ACCEPTING:
            return
        qm = QueueMessage("bus", runtime.id, action, event_to_dict(event))
        qm.address = runtime.address(action)
        qm.reply = _ignore  # the service reports its handler's failures
        try:
            self._bus.hand_on(qm)
        except BusError as exc:
            shown, held = self.reporter.throttled((runtime.id, f"event {action}"))
            if shown:
                more = f" ({held} more held back)" if held else ""
                self.reporter.event(
                    runtime.id, f"event {event.topic} not delivered to {action}: "
                    f"{exc}{more}", Level.WARNING,
                )


def _ignore(outcome: object) -> None:
    """An event's outcome: the service reported a failure of its handler already."""


def _construct(
    cls: type[CustomService], service_id: str, queue: ServiceQueue, config: dict[str, Any]
) -> CustomService:
    try:
        return cls(service_id, queue, config)
    except BaseException as exc:
        error = contain(exc)
        raise ServiceLoadError(
            f"{cls.__name__}({service_id!r}, queue, config) raised "
            f"{type(error).__name__}: {error}", traceback.format_exc(),
        ) from exc


async def _together(coros: Iterable[Any]) -> None:
    """Run coroutines as concurrent tasks and wait for all (they never raise)."""
    running = [as_deferred(coro) for coro in coros]
    if running:
        await DeferredList(running, consumeErrors=True)


async def _within(reactor: Any, waiting: list[Deferred[Any]], timeout: float) -> None:
    """Wait until every Deferred fired, or ``timeout`` seconds (nothing is cancelled)."""
    done: Deferred[None] = Deferred()

    def expired() -> None:
        if not done.called:
            done.callback(None)

    timer = reactor.callLater(timeout, expired)

    def finished(_: object) -> None:
        if not done.called:
            timer.cancel()
            done.callback(None)

    DeferredList(waiting, consumeErrors=True).addBoth(finished)
    await done


__all__ = ["BUILTIN_IDS", "Orchestrator"]
