"""Helpers for the zigbee tests: the fixture network, a fake-clock harness, a daemon."""

from __future__ import annotations

import json
import pathlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from hadaemon.bus import Bus, Event, VariableChanged
from hadaemon.daemon import Daemon
from hadaemon.mqtt import MqttService
from hadaemon.registry import Registry
from hadaemon.testing import Broker, wait_until
from hadaemon.zigbee.devices import DynamicDevice, attribute_names
from hadaemon.zigbee.naming import Namer
from hadaemon.zigbee.network import Network, NetworkSettings
from hadaemon.zigbee.plugin import ZigbeeAdapter
from hadaemon.zigbee.simulator_plugin import SimulatorPlugin
from hadaemon.zigbee.testkit import FakeConnection, ReplayReactor, _MemoryStore
from tests.mqtt.util import daemon_config

DATA = pathlib.Path(__file__).parent / "data"
SAMPLE = DATA / "bridge_devices_sample.json"
REAL = DATA / "real_z2m_bridge_devices.json"

__all__ = ["DATA", "REAL", "SAMPLE", "Harness", "daemon_config", "sample", "zigbee_daemon",
           "zigbee_running"]


def sample() -> list[Any]:
    loaded: list[Any] = json.loads(SAMPLE.read_text())
    return loaded


GROUPS = [
    {"id": 1, "friendly_name": "Living room lights", "members": [
        {"ieee_address": "0x00158d0000000001", "endpoint": 11},
        {"ieee_address": "0x00158d0000000003", "endpoint": 11}]},
]


class Harness:
    """The adapter's network on a fake clock with an in-memory broker connection."""

    def __init__(self, devices: list[Any] | None = None, groups: list[Any] | None = None,
                 *, connection: type[FakeConnection] = FakeConnection,
                 before: list[tuple[str, Any]] | None = None, **settings: Any) -> None:
        """``before``: messages delivered before the device list (as retained ones can
        come after a connect)."""
        self.clock = ReplayReactor()
        self.bus = Bus(self.clock)
        self.store = _MemoryStore()
        self.registry = Registry(self.clock, self.bus, self.store)
        self.connection = connection(self.clock, self.bus)
        settings.setdefault("initial_query", False)
        self.network = Network(self.clock, self.connection, self.registry, self.bus,
                               self.store, NetworkSettings(**settings))
        self.events: list[VariableChanged] = []
        self.bus.subscribe("variable/#", self._event)
        self.network.start()
        self.connection.connect()
        for topic, payload in before or []:
            self.deliver(topic, payload)
        self.deliver("zigbee2mqtt/bridge/devices", devices if devices is not None else sample())
        if groups is not None:
            self.deliver("zigbee2mqtt/bridge/groups", groups)

    def _event(self, event: Event) -> None:
        assert isinstance(event, VariableChanged)
        self.events.append(event)

    def deliver(self, topic: str, payload: Any) -> None:
        """One message in one read, as the broker connection hands it on."""
        self.connection.deliver(topic, payload)
        self.connection.read_done()
        self.turn()

    def turn(self) -> None:
        self.clock.advance(0)

    @property
    def sent(self) -> list[tuple[str, Any]]:
        return [(topic, payload) for _t, topic, payload in self.connection.sent]

    def take(self) -> list[tuple[str, Any]]:
        sent = self.sent
        self.connection.sent.clear()
        return sent

    def view(self, name: str) -> Any:
        """A device object as an automation without generated code gets it."""
        link = self.network.find(name)
        assert link is not None, name
        names = attribute_names(link.feature_list(), Namer())
        device = DynamicDevice(link, names)
        if link.kind == "group":
            device._kind = "group"
        self.network.attach_view(device)
        return device

    def peer(self, name: str) -> int:
        target = self.network.find(name)
        assert target is not None and target.peer_id is not None
        return target.peer_id


def zigbee_daemon(tmp_path: pathlib.Path, broker: Broker, *, zigbee: dict[str, Any] | None = None,
                  simulator: dict[str, Any] | None = None, mqtt: dict[str, Any] | None = None,
                  plugins: list[str] | None = None) -> tuple[Any, Any]:
    """Config and catalog for a daemon with mqtt, the simulator and zigbee2mqtt."""
    sections: dict[str, Any] = {
        "daemon": {"state_dir": str(tmp_path / "state"),
                   "plugins": plugins or ["mqtt", "zigbee2mqtt_simulator", "zigbee2mqtt"],
                   "stop_timeout": 10.0},
        "mqtt": {"host": broker.host, "port": broker.port, "client_id": "zigbee-test",
                 "reconnect_delay": 0.05, "reconnect_delay_max": 0.3,
                 "username": broker.username or "", "password": broker.password or "",
                 "tls": broker.tls, **({"ca_file": str(broker.ca_path)} if broker.tls else {}),
                 **(mqtt or {})},
        "zigbee2mqtt": {"query_interval": 0.0, "devices_timeout": 1.0, **(zigbee or {})},
        "zigbee2mqtt_simulator": {"report_interval": 0.0, "latency": 0.0, **(simulator or {})},
    }
    return daemon_config(tmp_path, sections, {
        "mqtt": MqttService, "zigbee2mqtt": ZigbeeAdapter,
        "zigbee2mqtt_simulator": SimulatorPlugin,
    })


@asynccontextmanager
async def zigbee_running(
    reactor: Any, config: Any, catalog: Any
) -> AsyncIterator[tuple[Daemon, Any, Any]]:
    """A daemon of :func:`zigbee_daemon`, once its network is ready: (daemon, network,
    simulator, or None without one); stopped at the end, whatever happened."""
    daemon = Daemon(config, reactor, catalog=catalog)
    daemon.startService()
    try:
        await daemon.started
        network: Any = daemon.plugin("zigbee2mqtt").network  # type: ignore[union-attr]
        plugin: Any = daemon.plugin("zigbee2mqtt_simulator")
        simulator = plugin.simulator if plugin is not None else None
        await wait_until(reactor, lambda: network.ready)
        yield daemon, network, simulator
    finally:
        await daemon.stopService()
