"""The ``services`` plugin: microServiceBus-style services inside hadaemon.

Enable it with ``plugins = [..., "services"]`` and a ``[services]`` section (see
:mod:`hadaemon.services.config` and docs/services.md).
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Awaitable, Iterable, Mapping
from typing import Any, ClassVar

from twisted.internet.defer import DeferredList
from twisted.logger import Logger

from hadaemon.aio import as_deferred, running_loop
from hadaemon.bus import Event, Lifecycle, Subscription
from hadaemon.config.schema import Section
from hadaemon.plugin import Plugin, PluginContext
from hadaemon.reload.errors import CodeError, code_error, report_code_error
from hadaemon.reload.interfaces import RestartNeeded
from hadaemon.services.config import (
    SCHEMA,
    ServiceSettings,
    ServicesSettings,
    com_topic_problem,
)
from hadaemon.services.errors import ServiceLoadError
from hadaemon.services.loading import ServiceLoader, check_file
from hadaemon.services.orchestrator import Orchestrator


class ServicesPlugin(Plugin):
    """Runs CustomService files from local directories, supervised, on the bus."""

    name = "services"
    description = "microServiceBus-style services (CustomService files) on the bus"
    schema: ClassVar[Section] = SCHEMA
    # SubmitMessage goes upstream on the mqtt plugin when it is enabled: started first,
    # it is still there while the services stop.
    wants: ClassVar[tuple[str, ...]] = ("mqtt",)

    def __init__(self, context: PluginContext) -> None:
        super().__init__(context)
        self.orchestrator: Orchestrator | None = None
        self._loader: ServiceLoader | None = None
        self._subscriptions: list[Subscription] = []

    @classmethod
    def check_config(cls, section: Mapping[str, Any], config: Any) -> list[str]:
        """``hadaemon check``: service files exist, parse and define their class (nothing
        is run), ids are unique, the com topic is valid, the stop fits the daemon's."""
        settings = ServicesSettings.from_section(section, config.core.name)
        problems: list[str] = []
        loader = ServiceLoader(settings.directories)
        for directory in settings.directories if settings.services else []:
            if not directory.is_dir():
                problems.append(f"directories: {directory} is not a directory")
        ids: dict[str, str] = {}
        for service in settings.services:
            if service.id in ids:
                problems.append(
                    f"service.{service.name}: same id {service.id} as service."
                    f"{ids[service.id]} (ids ignore case)"
                )
                continue
            ids[service.id] = service.name
            try:
                path = loader.find(service.name)
            except Exception as exc:
                problems.append(f"service.{service.name}: {exc}")
                continue
            problems.extend(f"service.{service.name}: {p}" for p in check_file(path))
        topic = com_topic_problem(settings.com_topic)
        if topic:
            problems.append(topic)
        needed = settings.state_update_timeout + settings.stop_timeout + 0.5
        budget = config.core.service_stop_timeout
        if needed > budget:
            problems.append(
                f"stop_timeout + state_update_timeout ({needed - 0.5:g}s, plus 0.5s) must fit "
                f"in [daemon].service_stop_timeout ({budget:g}s)"
            )
        return problems

    def start(self) -> None:
        loop = running_loop()
        if loop is None:
            raise RuntimeError(
                "the services plugin needs a running asyncio loop (Twisted's asyncio "
                "reactor, which every hadaemon entry point installs)"
            )
        settings = ServicesSettings.from_section(
            self.config, self.context.daemon_config.core.name
        )
        problem = com_topic_problem(settings.com_topic)
        if problem:
            raise ValueError(f"[{self.name}]: {problem}")
        self._loader = ServiceLoader(settings.directories)
        self.orchestrator = orchestrator = Orchestrator(
            settings, bus=self.bus, reactor=self.reactor, loop=loop,
            mqtt=lambda: self.context.plugin("mqtt"),
        )
        orchestrator.load(self._loader)
        self._subscriptions = [
            self.bus.subscribe("lifecycle/daemon/started", self._on_lifecycle,
                               name="services: daemon started", event_type=Lifecycle),
            self.bus.subscribe("lifecycle/daemon/stopping", self._on_lifecycle,
                               name="services: daemon stopping", event_type=Lifecycle),
            self.bus.subscribe("lifecycle/mqtt/+", self._on_lifecycle,
                               name="services: mqtt state", event_type=Lifecycle),
        ]
        orchestrator.start_all()
        loaded = len(orchestrator.runtimes)
        self.log.info(
            "{loaded} service(s) loaded ({names}); {failed} failed to load",
            loaded=loaded, names=", ".join(orchestrator.runtimes) or "none",
            failed=len(settings.services) - loaded,
        )

    def _on_lifecycle(self, event: Event) -> None:
        assert isinstance(event, Lifecycle)
        orchestrator = self.orchestrator
        if orchestrator is None:
            return
        if event.component == "daemon" and event.state == Lifecycle.STARTED:
            orchestrator.daemon_started()
        elif event.component == "daemon" and event.state == Lifecycle.STOPPING:
            orchestrator.daemon_stopping()
        elif event.component == "mqtt" and event.state in (
            Lifecycle.CONNECTED, Lifecycle.RECONNECTED, Lifecycle.DISCONNECTED
        ):
            orchestrator.upstream_changed(event.state)

    def services(self) -> dict[str, dict[str, Any]]:
        """Every user service's state (for status displays): state, starts, failures."""
        orchestrator = self.orchestrator
        if orchestrator is None:
            return {}
        out: dict[str, dict[str, Any]] = {}
        for service_id, runtime in orchestrator.runtimes.items():
            supervisor = orchestrator.supervisors[service_id]
            out[service_id] = {
                "id": service_id, "name": runtime.name, "state": str(runtime.state),
                "starts": supervisor.starts, "restarts": max(supervisor.starts - 1, 0),
                "failures": supervisor.failures, "running_calls": runtime.running_calls,
            }
        return out

    async def restart_service(self, service_id: str) -> None:
        """Stop one service (Stop within its timeout) and start it again (KeyError: no
        such service; ValueError: it is disabled in the config)."""
        orchestrator = self.orchestrator
        runtime = orchestrator.find(service_id) if orchestrator is not None else None
        if orchestrator is None or runtime is None:
            raise KeyError(service_id)
        if str(runtime.state) == "disabled":
            raise ValueError(f"service {runtime.id} is disabled in the config")
        supervisor = orchestrator.supervisors[runtime.id]
        await supervisor.stop()
        supervisor.start()

    # -- hot reload (hadaemon.reload calls these; docs/reload.md) ----------------------------

    def watched_files(self) -> list[pathlib.Path]:
        """Each configured service's file (where it would be, if missing) and the files
        of its directory it imports."""
        orchestrator, loader = self._running()
        files: set[pathlib.Path] = set()
        for service in orchestrator.settings.services:
            files.update(loader.files_of(service.name))
            files.update(_candidates(loader, service.name))
        return sorted(files)

    async def files_changed(self, paths: frozenset[pathlib.Path]) -> None:
        """Reload every service whose file, or a module of its directory it imports,
        changed (at once: none waits for another)."""
        orchestrator, loader = self._running()
        affected = [service for service in orchestrator.settings.services
                    if paths & (loader.files_of(service.name)
                                | set(_candidates(loader, service.name)))]
        await _together((self.reload_service(service) for service in affected), self.log)

    async def reload_service(self, service: ServiceSettings) -> bool:
        """Import the service's file afresh in a namespace of its own and swap the new
        class in (Stop, then Start; messages wait meanwhile). Code that does not load is
        reported with its file and line, and the running version is left alone."""
        orchestrator, loader = self._running()
        what = f"service {service.id} not reloaded, the previous version keeps running"
        try:
            cls, namespace = loader.load_fresh(service.name)
        except ServiceLoadError as exc:
            report_code_error(self.bus, self.log, f"service:{service.id}",
                              _code_error(exc, loader), what)
            return False
        try:
            await orchestrator.replace(cls, service)
        except ServiceLoadError as exc:
            loader.discard(namespace)
            report_code_error(self.bus, self.log, f"service:{service.id}",
                              _code_error(exc, loader), what)
            return False
        loader.adopt(service.name, namespace, cls.__name__)
        self.log.info("service {service} reloaded", service=service.id)
        return True

    async def reconfigure(self, section: Mapping[str, Any], config: Any) -> None:
        """Apply a new ``[services]`` section service by service: added services load and
        start, removed ones stop, changed ones restart with their new settings; the
        others run on. Other changed keys need a restart of the plugin."""
        orchestrator, loader = self._running()
        old = orchestrator.settings
        new = ServicesSettings.from_section(section, config.core.name)
        keys = [f.name for f in dataclasses.fields(old) if f.name not in _IN_PLACE
                and getattr(old, f.name) != getattr(new, f.name)]
        if keys:
            raise RestartNeeded(f"[services] {', '.join(keys)} changed")
        before = {s.id: s for s in old.services}
        after = {s.id: s for s in new.services}
        orchestrator.settings = new
        for service_id, service in before.items():
            if service_id not in after:
                if service_id in orchestrator.runtimes:
                    await orchestrator.remove(service_id)
                loader.forget(service.name)
                self.log.info("service {service} removed", service=service_id)
        changed = []
        for service_id, service in after.items():
            runtime = orchestrator.runtimes.get(service_id)
            if runtime is None:
                changed.append(self.reload_service(service))  # added, or failed before
            elif service != before.get(service_id):
                changed.append(self._reconfigure_service(type(runtime.instance), service))
        await _together(changed, self.log)

    async def _reconfigure_service(self, cls: type[Any], service: ServiceSettings) -> bool:
        orchestrator, loader = self._running()
        try:
            await orchestrator.replace(cls, service)
        except ServiceLoadError as exc:
            report_code_error(self.bus, self.log, f"service:{service.id}",
                              _code_error(exc, loader),
                              f"service {service.id} keeps its previous settings")
            return False
        self.log.info("service {service} restarted with its new settings", service=service.id)
        return True

    def _running(self) -> tuple[Orchestrator, ServiceLoader]:
        assert self.orchestrator is not None and self._loader is not None, "not started"
        return self.orchestrator, self._loader

    async def stop(self) -> None:
        for subscription in self._subscriptions:
            subscription.cancel()
        self._subscriptions = []
        try:
            if self.orchestrator is not None:
                await self.orchestrator.close()
        finally:
            if self._loader is not None:
                self._loader.close()


_IN_PLACE = frozenset({"service", "mailbox_size", "concurrency", "settings",
                       "state_update_timeout"})
"""``[services]`` keys a reload applies service by service (the others: a restart)."""


def _candidates(loader: ServiceLoader, name: str) -> list[pathlib.Path]:
    """A service's file; where it may appear if it is missing (or ambiguous)."""
    try:
        return [loader.find(name).resolve()]
    except ServiceLoadError:
        return [(d / f"{name}.py").resolve() for d in loader.directories]


def _code_error(exc: ServiceLoadError, loader: ServiceLoader) -> CodeError:
    """Where a service's code failed: the innermost line of a service directory's file."""
    cause = exc.__cause__
    if cause is None:  # a wrong class, a missing method: the message says where
        return CodeError(*_split_where(str(exc)))
    roots = [str(d.resolve()) + "/" for d in loader.directories]
    inner = None
    tb = cause.__traceback__
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if any(name.startswith(root) for root in roots):
            inner = pathlib.Path(name)
        tb = tb.tb_next
    return code_error(cause, inner)


def _split_where(text: str) -> tuple[str, int | None, str]:
    """``"<file>: <message>"`` as (file, None, message) when it starts with a path."""
    head, sep, rest = text.partition(": ")
    if sep and head.startswith("/"):
        return head, None, rest
    return "", None, text


async def _together(coros: Iterable[Awaitable[Any]], log: Logger) -> None:
    """Run coroutines as concurrent tasks and wait for all; what one raised (a bug: load
    errors are reported where they happen) is logged, the others go on."""
    running = [as_deferred(coro) for coro in coros]
    if running:
        for ok, result in await DeferredList(running, consumeErrors=True):
            if not ok:
                log.failure("a service reload failed", result)


__all__ = ["ServicesPlugin"]
