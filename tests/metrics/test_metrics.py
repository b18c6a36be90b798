"""The ``metrics`` plugin through a real daemon: figures present, and changing with it.

Each test runs the daemon in a fresh reactor and reads ``render()`` the way Prometheus
would, with ``prometheus_client``'s own parser.
"""

from __future__ import annotations

import pathlib
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import prometheus_client
import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet.threads import deferToThreadPool

from hadaemon import __version__
from hadaemon.app import prepare
from hadaemon.daemon import Daemon
from hadaemon.metrics import MetricsNotRunning, MetricsPlugin, render
from hadaemon.testing import Broker, capture_logs, run_in_reactor, wait_until, write_config

HELPERS = textwrap.dedent('''
    import os, pathlib
    from hadaemon.plugin import Plugin

    class History(Plugin):
        """Stands in for the history plugin: names its database file."""
        name = "history"
        def start(self):
            self.path = self.context.state_dir / "history.db"
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_bytes(b"x" * 3000)
            self.path.with_name("history.db-wal").write_bytes(b"w" * 500)

        def stats(self):
            return {"path": str(self.path), "recorded": 12, "dropped": 1, "failed": 0,
                    "unsupported": 2, "queued": 3, "purged": 40, "purges": 1,
                    "enabled": True, "error": None}
''')

BROKEN_HISTORY = textwrap.dedent('''
    from hadaemon.plugin import Plugin

    class Broken(Plugin):
        """Taken for the history plugin by the metrics; its path cannot be read."""
        name = "history"
        @property
        def database_path(self):
            raise RuntimeError("no path, on purpose")
''')

CRASHER = "import sys\nsys.exit(3)\n"


class Scrape:
    """One scrape: ``value(name, **labels)`` of a sample."""

    def __init__(self, body: bytes) -> None:
        self.text = body.decode()
        self.samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
        self.families = {f.name: f for f in text_string_to_metric_families(self.text)}
        for family in self.families.values():
            for sample in family.samples:
                self.samples[(sample.name, frozenset(sample.labels.items()))] = sample.value

    def value(self, name: str, /, **labels: str) -> float:
        key = (name, frozenset(labels.items()))
        assert key in self.samples, f"no {name}{labels} in:\n{self.text}"
        return self.samples[key]

    def has(self, name: str, /, **labels: str) -> bool:
        return (name, frozenset(labels.items())) in self.samples


def scrape(daemon: Daemon) -> Scrape:
    plugin = daemon.plugin("metrics")
    assert isinstance(plugin, MetricsPlugin)
    body, content_type = plugin.render()
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    return Scrape(body)


def config(tmp_path: pathlib.Path, plugins: list[str], helpers: str = HELPERS,
           **sections: Any) -> Any:
    plugin_dir = tmp_path / "plugins"
    plugin_dir.mkdir(parents=True, exist_ok=True)
    (plugin_dir / "helpers.py").write_text(helpers)
    all_sections = {
        "daemon": {"name": "metrics-test", "state_dir": str(tmp_path / "state"),
                   "plugins": plugins,
                   "plugin_dirs": [str(plugin_dir)], "stop_timeout": 20.0},
        "watchdog": {"threshold": 0.2},
        **sections,
    }
    prepared = prepare(write_config(tmp_path / "hadaemon.toml", all_sections), strict=False)
    prepared.raise_for_errors()
    return prepared


@asynccontextmanager
async def daemon_running(reactor: Any, prepared: Any) -> AsyncIterator[Daemon]:
    daemon = Daemon(prepared.config, reactor, catalog=prepared.catalog)
    daemon.startService()
    try:
        await daemon.started
        yield daemon
    finally:
        await daemon.stopService()


def test_core_figures_present_and_changing(tmp_path: pathlib.Path) -> None:
    prepared = config(tmp_path, ["demo", "metrics", "history", "nosuchplugin"],
                      demo={"interval": 0.05})

    async def scenario(reactor: Any) -> tuple[Scrape, Scrape]:
        async with daemon_running(reactor, prepared) as daemon:
            before = scrape(daemon)
            bus = daemon.bus
            bus.register("test:ok", lambda address, message: None)
            bus.register("test:bad", lambda address, message: 1 / 0)
            bus.register("test:tiny", lambda address, message: None, queue_size=1)
            for i in range(40):
                bus.post("test:ok", i)
            bus.post("test:bad", "boom")
            bus.post("test:tiny", 1)
            bus.post("test:tiny", 2)  # refused: its queue holds one
            bus.post("test:nobody", 3)  # refused: no such endpoint
            await wait_until(reactor, lambda: bus.stats()["test"].handled == 42,
                             what="the messages handled")
            for n in range(25):
                daemon.store.put(f"test/{n}", n)
            # Block the reactor past the watchdog's threshold: a lag of ~0.4 s.
            reactor.callLater(0, time.sleep, 0.4)
            reported = daemon.watchdog.reported if daemon.watchdog else 0
            await wait_until(reactor, lambda: daemon.watchdog is not None
                             and daemon.watchdog.reported > reported, what="a block report")
            await wait_until(reactor, lambda: daemon.watchdog is not None
                             and daemon.watchdog.lag.peak >= 0.3, what="the lag", timeout=5)
            return before, scrape(daemon)

    before, after = run_in_reactor(scenario, timeout=60)
    # plugins and their states
    assert after.value("hadaemon_plugin_up", plugin="demo") == 1
    assert after.value("hadaemon_plugin_state", plugin="demo", state="running") == 1
    assert after.value("hadaemon_plugin_state", plugin="demo", state="failed") == 0
    assert after.value("hadaemon_plugin_up", plugin="nosuchplugin") == 0
    assert after.value("hadaemon_plugin_state", plugin="nosuchplugin", state="failed") == 1
    assert after.value("hadaemon_info", daemon="metrics-test", version=__version__) == 1
    # the bus, by kind
    assert not before.has("hadaemon_bus_messages_total", kind="test")
    assert after.value("hadaemon_bus_messages_total", kind="test") == 42
    assert after.value("hadaemon_bus_handler_failures_total", kind="test") == 1
    assert after.value("hadaemon_bus_refused_messages_total", kind="test",
                       reason="queue_full") == 1
    assert after.value("hadaemon_bus_refused_messages_total", kind="test",
                       reason="unknown_destination") == 1
    assert after.value("hadaemon_bus_endpoints", kind="test") == 3
    assert after.value("hadaemon_bus_queued_messages", kind="test") == 0
    timed = after.value("hadaemon_bus_handler_seconds_count", kind="test")
    assert 3 <= timed <= 42  # a sample: at least each endpoint's first message
    assert after.value("hadaemon_bus_handler_seconds_sum", kind="test") > 0
    assert (after.value("hadaemon_bus_events_total")
            > before.value("hadaemon_bus_events_total"))
    # the reactor's lag, from the watchdog
    assert after.value("hadaemon_reactor_lag_peak_seconds") >= 0.3
    assert after.value("hadaemon_reactor_blocked_total") >= 1
    assert (after.value("hadaemon_reactor_lag_seconds_count")
            > before.value("hadaemon_reactor_lag_seconds_count"))
    assert (after.value("hadaemon_reactor_lag_seconds_bucket", le="0.25")
            < after.value("hadaemon_reactor_lag_seconds_bucket", le="+Inf"))
    # stores, registry, history, the process
    assert (after.value("hadaemon_store_keys", store="state")
            == before.value("hadaemon_store_keys", store="state") + 25)
    assert after.value("hadaemon_store_file_bytes", store="state") > before.value(
        "hadaemon_store_file_bytes", store="state")
    assert after.value("hadaemon_store_keys", store="credentials") == 0
    assert after.value("hadaemon_registry_devices", source="demo") >= 1
    assert after.value("hadaemon_registry_variables", source="demo") >= 1
    assert after.value("hadaemon_history_database_bytes") == 3500
    assert after.value("hadaemon_history_changes_total", outcome="recorded") == 12
    assert after.value("hadaemon_history_changes_total", outcome="unsupported") == 2
    assert after.value("hadaemon_history_queued_changes") == 3
    assert after.value("hadaemon_history_purged_changes_total") == 40
    assert after.value("hadaemon_history_enabled") == 1
    if sys.platform == "linux":
        assert after.value("process_resident_memory_bytes") > 10_000_000


def test_worlds_nodes_services_and_mqtt(tmp_path: pathlib.Path, broker: Broker) -> None:
    (tmp_path / "crasher.py").write_text(CRASHER)
    services = tmp_path / "services"
    services.mkdir()
    (services / "Echo.py").write_text(textwrap.dedent('''
        from base_service import CustomService

        class Echo(CustomService):
            async def Start(self):
                pass

            async def Stop(self):
                pass
    '''))
    prepared = config(
        tmp_path, ["mqtt", "services", "nodes", "metrics"],
        mqtt={"host": broker.host, "port": broker.port, "client_id": "metrics-test",
              "reconnect_delay": 0.05, "reconnect_delay_max": 0.2},
        services={"directories": [str(services)], "service": {"Echo": {}}},
        nodes={"restart_delay": 0.05, "restart_delay_max": 0.1, "crash_loop_restarts": 3,
               "crash_loop_window": 60.0, "start_deadline": 0.5,
               "node": [{"id": "crasher", "file": str(tmp_path / "crasher.py"),
                         "outputs": 0}]},
    )

    async def scenario(reactor: Any) -> tuple[Scrape, Scrape]:
        async with daemon_running(reactor, prepared) as daemon:
            mqtt = daemon.plugin("mqtt")
            await wait_until(reactor, lambda: mqtt.connected, what="the broker connection",
                             timeout=10)
            first = scrape(daemon)
            await deferToThreadPool(reactor, reactor.getThreadPool(), broker.restart)
            await wait_until(reactor, lambda: mqtt.connection.machine.connections == 2,
                             what="the reconnection", timeout=20)
            await mqtt.publish("metrics/test", "counted")
            await wait_until(reactor, lambda: daemon.plugin("nodes").nodes()["crasher"][
                "crash_loop"], what="the crash loop", timeout=20)
            return first, scrape(daemon)

    first, later = run_in_reactor(scenario, timeout=90)
    # MQTT: up, then a reconnect counted
    assert first.value("hadaemon_mqtt_connected", connection="mqtt") == 1
    assert first.value("hadaemon_mqtt_state", connection="mqtt", state="connected") == 1
    assert first.value("hadaemon_mqtt_reconnects_total", connection="mqtt") == 0
    assert later.value("hadaemon_mqtt_connections_total", connection="mqtt") == 2
    assert later.value("hadaemon_mqtt_reconnects_total", connection="mqtt") == 1
    assert later.value("hadaemon_mqtt_disconnects_total", connection="mqtt") == 1
    assert later.value("hadaemon_mqtt_messages_sent_total", connection="mqtt") >= 1
    # nodes: restarts and the crash loop
    assert later.value("hadaemon_node_restarts_total", node="crasher") >= 3
    assert later.value("hadaemon_node_restarts_total", node="crasher") > first.value(
        "hadaemon_node_restarts_total", node="crasher")
    assert later.value("hadaemon_node_crash_loop", node="crasher") == 1
    assert later.value("hadaemon_node_up", node="crasher") == 0
    # services
    assert later.value("hadaemon_service_state", service="echo_py", state="running") == 1
    assert later.value("hadaemon_service_restarts_total", service="echo_py") == 0
    assert later.value("hadaemon_bus_endpoints", kind="service") >= 1


def test_a_failing_section_is_left_out_and_the_rest_served(tmp_path: pathlib.Path) -> None:
    # The metrics take a plugin named "history" for the history database; this one's
    # path raises: that figure is left out, logged once, and everything else is served.
    prepared = config(tmp_path, ["metrics", "history"], helpers=BROKEN_HISTORY)

    async def scenario(reactor: Any) -> tuple[Scrape, Scrape]:
        async with daemon_running(reactor, prepared) as daemon:
            return scrape(daemon), scrape(daemon)

    with capture_logs() as logs:
        once, twice = run_in_reactor(scenario, timeout=30)
    for result in (once, twice):
        assert not result.has("hadaemon_history_database_bytes")
        assert result.value("hadaemon_plugin_up", plugin="metrics") == 1
    assert logs.text().count("the history figures failed") == 1, logs.text()
    assert "no path, on purpose" in logs.text()


def test_own_registry_openmetrics_and_render_without_the_plugin(
    tmp_path: pathlib.Path,
) -> None:
    prepared = config(tmp_path, ["heartbeat", "metrics"], metrics={"process": False})
    bare = config(tmp_path / "bare", ["heartbeat"])

    async def scenario(reactor: Any) -> tuple[tuple[bytes, str], bytes, Exception]:
        async with daemon_running(reactor, prepared) as daemon:
            plugin = daemon.plugin("metrics")
            assert isinstance(plugin, MetricsPlugin)
            openmetrics = plugin.render(accept="application/openmetrics-text; version=1.0.0")
            classic, _ = render(plugin.context)
        async with daemon_running(reactor, bare) as other:
            with pytest.raises(MetricsNotRunning) as raised:
                render(other.plugin("heartbeat").context)
        return openmetrics, classic, raised.value

    (body, content_type), classic, error = run_in_reactor(scenario, timeout=30)
    assert content_type.startswith("application/openmetrics-text")
    families = {f.name: f for f in openmetrics_families(body.decode())}
    assert families["hadaemon_plugin_up"].samples
    assert "process_resident_memory_bytes" not in classic.decode()  # process = false
    assert b"hadaemon_bus_events_total" in classic
    assert 'add "metrics" to [daemon].plugins' in str(error)
    # prometheus_client's global registry never sees hadaemon's figures
    assert b"hadaemon_" not in prometheus_client.generate_latest(prometheus_client.REGISTRY)
