"""One collector for the whole daemon, read through a plugin's context at scrape time."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client.metrics_core import InfoMetricFamily, Metric

from hadaemon._version import __version__
from hadaemon.metrics import _core, _worlds
from hadaemon.nodes import NodesPlugin
from hadaemon.plugin import PluginContext
from hadaemon.services import ServicesPlugin


class DaemonCollector:
    """Every hadaemon figure, as ``prometheus_client`` metric families.

    ``collect`` runs on the reactor thread only (``generate_latest`` from a ``render``
    called there): it reads the bus, the registry and the plugins, which belong to it.
    A section that fails is left out of that scrape and logged once; the rest is served.
    """

    def __init__(self, context: PluginContext) -> None:
        self.context = context
        self.failed_plugins: dict[str, str] = {}  # from the daemon's "started" event
        self.daemon_started = False
        self._log = context.log
        self._broken: set[str] = set()

    def collect(self) -> Iterator[Metric]:
        context = self.context
        enabled = list(context.daemon_config.core.plugins)
        running = [s for s in (context.plugin(name) for name in enabled) if s is not None]
        core = context.daemon_config.core
        sections: list[tuple[str, Callable[[], Iterable[Metric]]]] = [
            ("info", self._info),
            ("plugins", lambda: _core.plugin_metrics(
                enabled, context.plugin, self.failed_plugins, self.daemon_started)),
            ("bus", lambda: _core.bus_metrics(context.bus)),
            ("stores", lambda: _core.store_metrics(
                {"state": context.store, "credentials": context.credentials})),
            ("registry", lambda: _core.registry_metrics(context.registry)),
            ("nodes", lambda: _worlds.node_metrics(_worlds.of_type(running, NodesPlugin))),
            ("services", lambda: _worlds.service_metrics(
                _worlds.of_type(running, ServicesPlugin))),
            ("mqtt", lambda: _worlds.mqtt_metrics(_worlds.connections_of(running))),
        ]
        if context.watchdog is not None:
            watchdog = context.watchdog
            sections.append(("reactor", lambda: _core.reactor_metrics(watchdog)))
        history = context.plugin(_core.HISTORY_PLUGIN)
        if history is not None:
            sections.append(("history", lambda: _core.history_metrics(history,
                                                                       core.state_dir)))
        for name, section in sections:
            yield from self._safely(name, section)

    def _safely(self, name: str, section: Callable[[], Iterable[Metric]]) -> list[Metric]:
        try:
            families = list(section())  # all of a section or none of it
        except Exception:
            if name not in self._broken:
                self._broken.add(name)
                self._log.failure("metrics: the {section} figures failed; left out",
                                  section=name)
            return []
        self._broken.discard(name)
        return families

    def _info(self) -> Iterator[Metric]:
        info = InfoMetricFamily("hadaemon", "hadaemon's version and the daemon's name.")
        info.add_metric([], {"version": __version__,
                             "daemon": self.context.daemon_config.core.name})
        yield info

    def daemon_event(self, details: Any) -> None:
        """The daemon's "started" event: which plugins failed to start."""
        failed = details.get("failed", {}) if hasattr(details, "get") else {}
        self.failed_plugins = {str(k): str(v) for k, v in dict(failed).items()}
        self.daemon_started = True
