"""Prometheus metrics: the daemon's figures read when scraped (see docs/metrics.md).

The ``metrics`` plugin holds a registry of its own; ``render(context)`` (or the plugin's
``render()``) gives the body and content type the ``web`` plugin serves at ``/metrics``.
"""

from __future__ import annotations

from typing import Any

from hadaemon.metrics.collector import DaemonCollector
from hadaemon.metrics.plugin import MetricsPlugin, MetricsSettings

PLUGIN = "metrics"


class MetricsNotRunning(LookupError):
    """``render`` was asked for metrics while the ``metrics`` plugin does not run."""


def render(context: Any) -> tuple[bytes, str]:
    """``GET /metrics``'s body and content type, from the running ``metrics`` plugin.

    ``context`` is any plugin's context. Reactor thread only. Raises
    :class:`MetricsNotRunning` (a ``LookupError``) when the plugin is not enabled or
    failed to start.
    """
    plugin = context.plugin(PLUGIN)
    if not isinstance(plugin, MetricsPlugin):
        raise MetricsNotRunning(
            'the metrics plugin is not running: add "metrics" to [daemon].plugins'
        )
    return plugin.render()


__all__ = ["DaemonCollector", "MetricsNotRunning", "MetricsPlugin", "MetricsSettings", "render"]
