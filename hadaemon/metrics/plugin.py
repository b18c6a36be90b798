"""The ``metrics`` plugin: the daemon's figures in Prometheus' text format.

It serves nothing itself: the ``web`` plugin calls :meth:`MetricsPlugin.render` for
``GET /metrics``. Its registry is its own (never ``prometheus_client``'s global one), so
two daemons in one process, or a host program that embeds one, keep their figures apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from prometheus_client import (
    CollectorRegistry,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
    openmetrics,
)

from hadaemon.bus import Event, Lifecycle, Subscription
from hadaemon.config import Bool, Section, Settings, setting
from hadaemon.metrics.collector import DaemonCollector
from hadaemon.plugin import Plugin, PluginContext

# The classic text format, which every Prometheus reads (prometheus_client's own "latest"
# names a newer version that Prometheus 2 does not know; the body is the same for names
# like ours).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS = "application/openmetrics-text"


@dataclass(frozen=True, kw_only=True)
class MetricsSettings(Settings):
    section_doc: ClassVar[str] = (
        "Prometheus metrics (docs/metrics.md), served at /metrics by the web plugin."
    )

    process: bool = setting(Bool(
        default=True,
        doc="Also the process's figures (process_*: resident memory, CPU, open files) "
            "and Python's (python_info, python_gc_*).",
    ))


class MetricsPlugin(Plugin):
    """Collects the daemon's figures when scraped; see docs/metrics.md for the list."""

    name = "metrics"
    description = "Prometheus metrics of the daemon (served at /metrics by the web plugin)"
    schema: ClassVar[Section] = MetricsSettings.schema()

    def __init__(self, context: PluginContext) -> None:
        super().__init__(context)
        self.settings = MetricsSettings.from_section(context.config)
        self.prometheus = CollectorRegistry(auto_describe=False)  # never the global one
        self.collector = DaemonCollector(context)
        self._subscription: Subscription | None = None

    def start(self) -> None:
        self._subscription = self.bus.subscribe(
            "lifecycle/daemon/started", self._daemon_started, name="metrics: daemon started",
            event_type=Lifecycle,
        )
        self.prometheus.register(self.collector)
        if self.settings.process:
            ProcessCollector(registry=self.prometheus)
            PlatformCollector(registry=self.prometheus)
            GCCollector(registry=self.prometheus)

    def stop(self) -> None:
        if self._subscription is not None:
            self._subscription.cancel()
            self._subscription = None

    def _daemon_started(self, event: Event) -> None:
        assert isinstance(event, Lifecycle)
        self.collector.daemon_event(event.details)

    def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """The body and content type of ``GET /metrics`` (reactor thread only).

        ``accept`` is the request's Accept header, if the server passes it on: a scraper
        that asks for OpenMetrics gets it; anyone else the classic text format.
        """
        if accept is not None and OPENMETRICS in accept:
            body: bytes = openmetrics.exposition.generate_latest(  # type: ignore[no-untyped-call]
                self.prometheus
            )
            return body, openmetrics.exposition.CONTENT_TYPE_LATEST
        return generate_latest(self.prometheus), CONTENT_TYPE
