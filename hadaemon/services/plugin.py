"""The ``services`` plugin: microServiceBus-style services inside hadaemon.

Enable it with ``plugins = [..., "services"]`` and a ``[services]`` section (see
:mod:`hadaemon.services.config` and docs/services.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from hadaemon.aio import running_loop
from hadaemon.bus import Event, Lifecycle, Subscription
from hadaemon.config.schema import Section
from hadaemon.plugin import Plugin, PluginContext
from hadaemon.services.config import SCHEMA, ServicesSettings, com_topic_problem
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


__all__ = ["ServicesPlugin"]
