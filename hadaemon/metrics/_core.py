"""The core's figures as metric families: plugins, bus, reactor, stores, registry, history.

Every figure is read when Prometheus scrapes (the bus and the watchdog keep plain
counters; nothing here runs between scrapes). Reactor thread only: what is read here is
the reactor's own state.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    SummaryMetricFamily,
)

from hadaemon.bus import Bus
from hadaemon.registry import Registry
from hadaemon.store import Store
from hadaemon.watchdog import Watchdog

PLUGIN_STATES = ("starting", "running", "stopped", "failed")
HISTORY_PLUGIN = "history"


def gauge(name: str, doc: str, labels: Iterable[str] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=list(labels))


def counter(name: str, doc: str, labels: Iterable[str] = ()) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, labels=list(labels))


def states(name: str, doc: str, label: str, values: Iterable[str],
           current: Mapping[str, str]) -> GaugeMetricFamily:
    """An enum as Prometheus likes it: one series per state, 1 for the current one."""
    family = gauge(name, doc, (label, "state"))
    choices = tuple(values)
    for key, state in current.items():
        for choice in (*choices, *(() if state in choices else (state,))):
            family.add_metric([key, choice], 1.0 if choice == state else 0.0)
    return family


def plugin_metrics(enabled: Iterable[str], lookup: Callable[[str], Any],
                   failed: Mapping[str, str], started: bool) -> Iterator[Metric]:
    """Each enabled plugin's state (``failed`` comes from the daemon's "started" event)."""
    current: dict[str, str] = {}
    for name in enabled:
        service = lookup(name)
        if name in failed:
            state = "failed"
        elif service is None:
            state = "failed" if started else "starting"
        elif not getattr(service, "running", False):
            state = "stopped"
        else:
            state = "running" if started else "starting"
        current[name] = state
    up = gauge("hadaemon_plugin_up", "Whether the plugin is running (1) or not (0).",
               ("plugin",))
    for name, state in current.items():
        up.add_metric([name], 1.0 if state == "running" else 0.0)
    yield up
    yield states("hadaemon_plugin_state", "The plugin's state: 1 for the current one.",
                 "plugin", PLUGIN_STATES, current)


def bus_metrics(bus: Bus) -> Iterator[Metric]:
    """Messages, queues and handler time by endpoint kind; events published."""
    by_kind = bus.stats()
    labels = ("kind",)
    endpoints = gauge("hadaemon_bus_endpoints", "Registered bus endpoints.", labels)
    queued = gauge("hadaemon_bus_queued_messages",
                   "Messages waiting in the endpoints' queues.", labels)
    in_flight = gauge("hadaemon_bus_in_flight_messages",
                      "Messages being handled (delivered, outcome not known yet).", labels)
    handled = counter("hadaemon_bus_messages",
                      "Messages handled (their outcome known), failed ones included.", labels)
    failed = counter("hadaemon_bus_handler_failures",
                     "Messages whose handler raised or failed.", labels)
    refused = counter("hadaemon_bus_refused_messages",
                      "Messages refused at once: queue full, or no such endpoint.",
                      ("kind", "reason"))
    seconds = SummaryMetricFamily(
        "hadaemon_bus_handler_seconds",
        "Time from delivery to outcome of a sample of messages (about one in 16): "
        "rate(sum)/rate(count) is the handlers' mean time.", labels=list(labels))
    for kind, figures in sorted(by_kind.items()):
        endpoints.add_metric([kind], figures.endpoints)
        queued.add_metric([kind], figures.queued)
        in_flight.add_metric([kind], figures.in_flight)
        handled.add_metric([kind], figures.handled)
        failed.add_metric([kind], figures.failed)
        refused.add_metric([kind, "queue_full"], figures.queue_full)
        refused.add_metric([kind, "unknown_destination"], figures.unknown_destination)
        seconds.add_metric([kind], figures.timed, figures.handler_seconds)
    yield from (endpoints, queued, in_flight, handled, failed, refused, seconds)
    events = counter("hadaemon_bus_events", "Events published on the bus.")
    events.add_metric([], bus.events_published)
    yield events


def reactor_metrics(watchdog: Watchdog) -> Iterator[Metric]:
    """The watchdog's figures: how late its ticks ran, and what blocked the reactor."""
    lag = watchdog.lag
    histogram = HistogramMetricFamily(
        "hadaemon_reactor_lag_seconds",
        "How late the watchdog's ticks ran (a few ticks a second): the reactor's lag.",
        labels=[])
    histogram.add_metric([], [(_le(bound), count) for bound, count in lag.buckets()],
                         lag.total)
    yield histogram
    last = gauge("hadaemon_reactor_lag_last_seconds", "How late the latest tick ran.")
    last.add_metric([], lag.last)
    peak = gauge("hadaemon_reactor_lag_peak_seconds", "The most a tick ran late so far.")
    peak.add_metric([], lag.peak)
    blocked = counter("hadaemon_reactor_blocked",
                      "Times the watchdog reported a callback blocking the reactor for "
                      "longer than the threshold.")
    blocked.add_metric([], watchdog.reported)
    threshold = gauge("hadaemon_reactor_block_threshold_seconds",
                      "The watchdog's threshold ([watchdog].threshold).")
    threshold.add_metric([], watchdog.threshold)
    yield from (last, peak, blocked, threshold)


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)


def store_metrics(stores: Mapping[str, Store]) -> Iterator[Metric]:
    """Keys and file size of the state and credentials stores."""
    keys = gauge("hadaemon_store_keys", "Keys in the store.", ("store",))
    size = gauge("hadaemon_store_file_bytes", "The store's file size on disk.", ("store",))
    for name, store in stores.items():
        with contextlib.suppress(Exception):  # closed or broken: its size still tells
            keys.add_metric([name], len(store))
        size_of = file_bytes(store.path)
        if size_of is not None:
            size.add_metric([name], size_of)
    yield keys
    yield size


def registry_metrics(registry: Registry) -> Iterator[Metric]:
    """Devices and variables per adapter, and system variables."""
    devices: dict[str, int] = {}
    variables: dict[str, int] = {}
    for device in registry.devices():
        source = device.source
        devices[source] = devices.get(source, 0) + 1
        count = variables.get(source, 0)
        for channel in device.channels.values():
            count += len(channel.variables)
        variables[source] = count
    device_family = gauge("hadaemon_registry_devices", "Registered devices.", ("source",))
    variable_family = gauge("hadaemon_registry_variables", "Variables of registered devices.",
                            ("source",))
    for source in sorted(devices):
        device_family.add_metric([source], devices[source])
        variable_family.add_metric([source], variables[source])
    system = gauge("hadaemon_system_variables", "System variables.")
    system.add_metric([], len(registry.system_variables()))
    yield from (device_family, variable_family, system)


def history_metrics(plugin: Any, state_dir: pathlib.Path) -> Iterator[Metric]:
    """The history database's size on disk (with its write-ahead log), and the recorder's
    counts when the plugin offers them (``stats()``)."""
    path = history_database(plugin, state_dir)
    if path is not None:
        total = 0
        for suffix in ("", "-wal", "-shm"):
            total += file_bytes(path.with_name(path.name + suffix)) or 0
        size = gauge("hadaemon_history_database_bytes",
                     "The history database's size on disk (with its -wal and -shm files).")
        size.add_metric([], total)
        yield size
    stats = plugin.stats() if callable(getattr(plugin, "stats", None)) else None
    if not isinstance(stats, Mapping):
        return
    changes = counter("hadaemon_history_changes",
                      "Variable changes by outcome: recorded, dropped (the queue was full), "
                      "failed (a write failed), unsupported (not recordable).", ("outcome",))
    for outcome in ("recorded", "dropped", "failed", "unsupported"):
        if _is_number(stats.get(outcome)):
            changes.add_metric([outcome], stats[outcome])
    yield changes
    for key, family in (
        ("queued", gauge("hadaemon_history_queued_changes", "Changes waiting to be written.")),
        ("purged", counter("hadaemon_history_purged_changes", "Old changes purged.")),
        ("purges", counter("hadaemon_history_purges", "Purges run.")),
        ("enabled", gauge("hadaemon_history_enabled",
                          "Whether history records (0: its file is unusable).")),
    ):
        if _is_number(stats.get(key)):
            family.add_metric([], float(stats[key]))
            yield family


def _is_number(value: object) -> bool:
    return isinstance(value, int | float)


def history_database(plugin: Any, state_dir: pathlib.Path) -> pathlib.Path | None:
    """Where the ``history`` plugin keeps its SQLite file: the path it names (``path``,
    ``database_path`` or ``db_path``), else the first ``*.db`` in its state directory."""
    for attribute in ("path", "database_path", "db_path"):
        value = getattr(plugin, attribute, None)
        if isinstance(value, str | os.PathLike):
            return pathlib.Path(value)
    found = sorted((state_dir / "plugins" / HISTORY_PLUGIN).glob("*.db"))
    found += sorted(state_dir.glob(f"{HISTORY_PLUGIN}*.db"))
    return found[0] if found else None


def file_bytes(path: pathlib.Path) -> int | None:
    try:
        return os.stat(path).st_size
    except OSError:
        return None
