"""The worlds' figures: node processes, services, MQTT connections.

Read from the running plugins when Prometheus scrapes, through what they already show
(``NodesPlugin.nodes()``, the services' supervisors, ``MqttConnection``'s counters).
Reactor thread only.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client.metrics_core import Metric

from hadaemon.metrics._core import counter, gauge, states
from hadaemon.mqtt import MqttConnection, State
from hadaemon.nodes import NodesPlugin
from hadaemon.nodes.supervisor import ProcessState
from hadaemon.services import ServicesPlugin
from hadaemon.services.mailbox import ServiceState

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def node_metrics(plugins: Iterable[NodesPlugin]) -> Iterator[Metric]:
    """Each node's process: up, state, restarts, crash loop, queue, messages, memory."""
    node = ("node",)
    up = gauge("hadaemon_node_up", "Whether the node's process runs and is connected.", node)
    restarts = counter("hadaemon_node_restarts", "Times the node's process was restarted.",
                       node)
    crash_loop = gauge("hadaemon_node_crash_loop",
                       "Whether the node is crash-looping (exited too often, too fast).", node)
    queued = gauge("hadaemon_node_queued_messages", "Messages waiting for the node.", node)
    messages = counter("hadaemon_node_messages",
                       "Messages for the node, by outcome (delivered, failed, dropped: refused "
                       "at its full queue, lost: in flight when it exited).",
                       ("node", "outcome"))
    rss = gauge("hadaemon_node_resident_memory_bytes", "The node process's resident memory.",
                node)
    current: dict[str, str] = {}
    for plugin in plugins:
        for node_id, info in plugin.nodes().items():
            current[node_id] = str(info["process"])
            running = info["process"] == ProcessState.RUNNING.value
            up.add_metric([node_id], 1.0 if running and info["connected"] else 0.0)
            restarts.add_metric([node_id], info.get("restarts", 0))
            crash_loop.add_metric([node_id], 1.0 if info.get("crash_loop") else 0.0)
            queued.add_metric([node_id], info["queued"])
            for outcome in ("delivered", "failed", "dropped", "lost"):
                messages.add_metric([node_id, outcome], info[outcome])
            pid = info.get("pid")
            size = resident_bytes(pid) if isinstance(pid, int) else None
            if size is not None:
                rss.add_metric([node_id], size)
    yield from (up, restarts, crash_loop, queued, messages, rss)
    yield states("hadaemon_node_state", "The node process's state: 1 for the current one.",
                 "node", [s.value for s in ProcessState], current)


def resident_bytes(pid: int) -> int | None:
    """A process's resident memory, from /proc (None where there is no /proc)."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return None


def service_metrics(plugins: Iterable[ServicesPlugin]) -> Iterator[Metric]:
    """Each service: state, restarts, failed starts in a row, running calls."""
    service = ("service",)
    restarts = counter("hadaemon_service_restarts",
                       "Times the service's Start was called again after the first.", service)
    failures = gauge("hadaemon_service_start_failures",
                     "The service's Start failures in a row (0 once a Start returns).", service)
    calls = gauge("hadaemon_service_running_calls", "The service's calls running now.",
                  service)
    current: dict[str, str] = {}
    for plugin in plugins:
        orchestrator = plugin.orchestrator
        if orchestrator is None:
            continue
        for service_id, supervisor in orchestrator.supervisors.items():
            current[service_id] = str(supervisor.runtime.state)
            restarts.add_metric([service_id], max(supervisor.starts - 1, 0))
            failures.add_metric([service_id], supervisor.failures)
            calls.add_metric([service_id], supervisor.runtime.running_calls)
    yield from (restarts, failures, calls)
    yield states("hadaemon_service_state", "The service's state: 1 for the current one.",
                 "service", [s.value for s in ServiceState], current)


def mqtt_metrics(connections: Iterable[MqttConnection]) -> Iterator[Metric]:
    """Each broker connection (by the plugin that owns it): state, reconnects, traffic."""
    label = ("connection",)
    connected = gauge("hadaemon_mqtt_connected",
                      "Whether the broker connection is up (1) or not (0).", label)
    sessions = counter("hadaemon_mqtt_connections",
                       "Sessions the broker accepted (the first connection and reconnects).",
                       label)
    reconnects = counter("hadaemon_mqtt_reconnects",
                         "Sessions the broker accepted after the first.", label)
    disconnects = counter("hadaemon_mqtt_disconnects",
                          "Sessions lost while up (not counting a clean stop).", label)
    attempts = counter("hadaemon_mqtt_connect_attempts",
                       "Connection attempts (each socket opened or tried).", label)
    received = counter("hadaemon_mqtt_messages_received", "Messages received from the broker.",
                       label)
    sent = counter("hadaemon_mqtt_messages_sent", "Messages published to the broker.", label)
    queued = gauge("hadaemon_mqtt_queued_publishes",
                   "Publishes not acknowledged yet (queued or in flight).", label)
    current: dict[str, str] = {}
    for connection in connections:
        name = connection.component
        machine = connection.machine
        current[name] = str(connection.state)
        connected.add_metric([name], 1.0 if connection.connected else 0.0)
        sessions.add_metric([name], machine.connections)
        reconnects.add_metric([name], max(machine.connections - 1, 0))
        disconnects.add_metric([name], machine.disconnects)
        attempts.add_metric([name], machine.attempt)
        received.add_metric([name], connection.messages_received)
        sent.add_metric([name], connection.messages_sent)
        queued.add_metric([name], connection.queued)
    yield from (connected, sessions, reconnects, disconnects, attempts, received, sent, queued)
    yield states("hadaemon_mqtt_state", "The connection's state: 1 for the current one.",
                 "connection", [s.value for s in State], current)


def of_type(services: Iterable[Any], kind: type[Any]) -> list[Any]:
    return [service for service in services if isinstance(service, kind)]


def connections_of(services: Iterable[Any]) -> list[MqttConnection]:
    """The broker connections the running plugins own (``mqtt``, the simulator...)."""
    found = [getattr(service, "connection", None) for service in services]
    return [c for c in found if isinstance(c, MqttConnection)]
