"""Helpers for the services tests: configs with service files, a running daemon, probes.

Services report to the test through the bus, as they would to a node: ``Probe`` registers
``node:probe`` and records what arrives, so a service under test simply does
``await self.SubmitAction("node:probe", "<tag>", value)``.
"""

from __future__ import annotations

import pathlib
import textwrap
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from hadaemon.bus import Address, Bus, ErrorEvent, Event
from hadaemon.config import Config, read, validate
from hadaemon.daemon import Daemon
from hadaemon.plugin import Catalog, PluginInfo
from hadaemon.services import ServicesPlugin
from hadaemon.testing import wait_until


def plugin_catalog(**extra: Any) -> Catalog:
    """A catalog with the services plugin (and others by name), without entry points."""
    plugins = {"services": ServicesPlugin, **extra}
    return Catalog(
        {name: PluginInfo(name, factory, factory.schema, "tests")
         for name, factory in plugins.items()}
    )


def write_services(directory: pathlib.Path, files: Mapping[str, str]) -> pathlib.Path:
    """Write ``{"Name": source}`` as ``directory/Name.py``.

    A source starting with a newline (an indented block in a test) is dedented; any
    other is written exactly as given.
    """
    directory.mkdir(parents=True, exist_ok=True)
    for name, source in files.items():
        text = textwrap.dedent(source) if source.startswith("\n") else source
        (directory / f"{name}.py").write_text(text)
    return directory


def make_config(
    tmp_path: pathlib.Path,
    files: Mapping[str, str] | None = None,
    services: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    plugins: tuple[str, ...] = ("services",),
    extra_sections: Mapping[str, Mapping[str, Any]] | None = None,
    environ: Mapping[str, str] | None = None,
    **options: Any,
) -> Config:
    """A validated config running the given service files.

    ``services`` are the ``[services.service.<Name>]`` tables; by default every file is
    configured with an empty table.
    """
    directory = write_services(tmp_path / "services", files or {})
    section: dict[str, Any] = {
        "directories": [str(directory)],
        "service": dict(services) if services is not None else {n: {} for n in files or {}},
        "restart_delay": 0.05,
        "stop_timeout": 2.0,
        **options,
    }
    sections: dict[str, Any] = {
        "daemon": {"state_dir": str(tmp_path / "var"), "plugins": list(plugins)},
        "services": section,
        **(extra_sections or {}),
    }
    schemas = {name: info.schema for name, info in plugin_catalog_for(plugins).plugins.items()}
    config, errors = validate(read(sections, base_dir=tmp_path, environ=environ or {}), schemas)
    assert not errors, "\n".join(map(str, errors))
    return config


def plugin_catalog_for(plugins: tuple[str, ...]) -> Catalog:
    extra: dict[str, Any] = {}
    if "mqtt" in plugins:
        from hadaemon.mqtt import MqttService

        extra["mqtt"] = MqttService
    return plugin_catalog(**extra)


class Run:
    """A running daemon with a probe (``node:probe``) and every bus event, both from
    before the start."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.bus = daemon.bus
        self.probe = Probe(daemon.bus)
        self.events = Events(daemon.bus)

    @property
    def orchestrator(self) -> Any:
        services: Any = self.daemon.plugin("services")
        return services.orchestrator

    def runtime(self, service_id: str) -> Any:
        return self.orchestrator.runtimes[service_id]

    def idle(self) -> bool:
        """No service has a message waiting in its mailbox or a call running: what was
        sent so far has had all its effects."""
        for runtime in self.orchestrator.runtimes.values():
            registration = runtime.registration
            if runtime.running_calls or (
                registration is not None and (registration.queued or registration.in_flight)
            ):
                return False
        return True


@asynccontextmanager
async def running(config: Config, reactor: Any) -> AsyncIterator[Run]:
    """A started daemon, stopped at the end of the block (also when the test fails)."""
    plugins = tuple(config.core.plugins)
    daemon = Daemon(config, reactor, catalog=plugin_catalog_for(plugins))
    run = Run(daemon)
    daemon.startService()
    await daemon.started
    assert not daemon.failed, daemon.failed
    try:
        yield run
    finally:
        await daemon.stopService()


class Probe:
    """``node:<name>``: records ``(path, message)`` of everything sent to it."""

    def __init__(self, bus: Bus, name: str = "probe") -> None:
        self.received: list[tuple[str, Any]] = []
        self.registration = bus.register(f"node:{name}", self._on)

    def _on(self, address: Address, message: Any) -> None:
        self.received.append((address.path, message))

    def values(self, path: str) -> list[Any]:
        return [m for p, m in self.received if p == path]

    async def wait(
        self, reactor: Any, path: str, count: int = 1, timeout: float = 5.0
    ) -> list[Any]:
        await wait_until(reactor, lambda: len(self.values(path)) >= count, timeout,
                         f"{count} message(s) {path!r} at the probe (got {self.received})")
        return self.values(path)


class Events:
    """Records bus events matching a pattern."""

    def __init__(self, bus: Bus, pattern: str = "#") -> None:
        self.events: list[Event] = []
        bus.subscribe(pattern, self.events.append)

    def errors(self, source: str | None = None) -> list[ErrorEvent]:
        return [e for e in self.events if isinstance(e, ErrorEvent)
                and (source is None or e.source == source)]

    def texts(self, source: str | None = None) -> list[str]:
        return [e.message for e in self.errors(source)]
