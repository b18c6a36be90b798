"""In-process hosts of a site for the federation core's tests: several real daemons
(each its own ``Daemon``, registry, store and MQTT connection) in one reactor, on a real
broker. For whole processes (``hadaemon run``, kill -9) see conftest.py's site factory.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from hadaemon import values
from hadaemon.builtin.demo import DemoDevices
from hadaemon.bus import ErrorEvent, Event
from hadaemon.config import Config, read, validate
from hadaemon.daemon import Daemon
from hadaemon.federation import Federation
from hadaemon.mqtt import MqttService
from hadaemon.plugin import Catalog, PluginInfo
from hadaemon.registry import Device, RegistryError
from hadaemon.testing import BlockingClient, Broker, wait_until

SITE = "testsite"
CATALOG = Catalog({name: PluginInfo(name, factory, factory.schema, "tests") for name, factory in
                   {"mqtt": MqttService, "federation": Federation,
                    "demo": DemoDevices}.items()})


def host_config(tmp_path: pathlib.Path, name: str, broker: Broker, *,
                plugins: tuple[str, ...] = ("mqtt", "federation"),
                sections: Mapping[str, Mapping[str, Any]] | None = None) -> Config:
    """A validated config of host ``name`` on ``broker`` (its state dir under tmp_path)."""
    extra = {k: dict(v) for k, v in (sections or {}).items()}
    raw: dict[str, Any] = {
        "daemon": {"name": name, "state_dir": str(tmp_path / name / "var"),
                   "plugins": list(plugins), "stop_timeout": 10.0, **extra.pop("daemon", {})},
        "mqtt": {"host": broker.host, "port": broker.port, "keepalive": 5,
                 "status_topic": f"{SITE}/{name}/status", "reconnect_delay": 0.1,
                 "reconnect_delay_max": 0.5, **extra.pop("mqtt", {})},
        "federation": {"site": SITE, "request_timeout": 3.0, "settle_delay": 0.5,
                       **extra.pop("federation", {})},
        "demo": {"interval": 3600.0, "follow": False, "latency": 0.0,
                 **extra.pop("demo", {})},
        **extra,
    }
    schemas = {n: info.schema for n, info in CATALOG.plugins.items()}
    config, errors = validate(read(raw, base_dir=tmp_path, environ={}), schemas)
    assert not errors, "\n".join(map(str, errors))
    return config


class Host:
    """A running in-process daemon and what the tests look at."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.bus = daemon.bus
        self.registry = daemon.registry
        self.events: list[Event] = []
        self.bus.subscribe("#", self.events.append)

    @property
    def fed(self) -> Federation:
        plugin: Any = self.daemon.plugin("federation")  # (typed IService)
        assert isinstance(plugin, Federation)
        return plugin

    def warnings(self) -> list[str]:
        return [e.message for e in self.events
                if isinstance(e, ErrorEvent) and e.source == "federation"]

    def value(self, peer_id: int, channel: int, name: str) -> Any:
        """The registry's value, or None while the device or variable is not there."""
        try:
            return self.registry.get_value(peer_id, channel, name)
        except RegistryError:
            return None

    def mirror(self, host: str, name: str) -> Device | None:
        """The mirror of ``host``'s device called ``name`` (e.g. "Demo lamp"), if any."""
        for device in self.registry.devices():
            if device.info.get("host") == host and device.name == name:
                return device
        return None


async def start_host(config: Config, reactor: Any) -> Host:
    daemon = Daemon(config, reactor, catalog=CATALOG)
    host = Host(daemon)
    daemon.startService()
    await daemon.started
    assert not daemon.failed, daemon.failed
    return host


@asynccontextmanager
async def hosts(reactor: Any, *configs: Config) -> AsyncIterator[list[Host]]:
    """Started hosts, stopped at the end of the block (also when the test fails)."""
    async with AsyncExitStack() as stack:
        started = []
        for config in configs:
            host = await start_host(config, reactor)
            stack.push_async_callback(host.daemon.stopService)
            started.append(host)
        yield started


async def until(reactor: Any, predicate: Any, what: str, timeout: float = 15.0) -> Any:
    """Wait (generously: a loaded machine) for ``predicate``."""
    return await wait_until(reactor, predicate, timeout, what)


class RawHost:
    """Another program taking part in the site by the documented topics and payloads
    (docs/federation.md), on a plain paho client: msgpack maps of the value model."""

    def __init__(self, broker: Broker, name: str) -> None:
        self.name = name
        self.client = BlockingClient(broker, client_id=f"raw-{name}").connect()
        self.client.subscribe(f"{SITE}/{name}/req/+")

    def topic(self, *levels: object) -> str:
        return "/".join([SITE, self.name, *(str(level) for level in levels)])

    def status(self, state: str) -> None:
        self.client.publish(self.topic("status"), json.dumps({"state": state}), retain=True)

    def send(self, topic: str, fields: Mapping[str, Any] | bytes, *, retain: bool = False,
             host: str | None = None) -> None:
        """``fields`` packed with the version and this host's name (or ``host``: a lie)."""
        payload = fields if isinstance(fields, bytes) else values.pack(
            {"v": 1, "host": host or self.name, **fields})
        self.client.publish(topic, payload, retain=retain)

    def describe(self, peer: int, name: str, variables: list[dict[str, Any]]) -> None:
        self.send(self.topic("device", peer), {
            "peer": peer, "source": "raw", "key": f"k{peer}", "name": name, "type": "",
            "channels": [{"index": 0, "variables": variables}]}, retain=True)

    def requests(self) -> list[dict[str, Any]]:
        """Requests received so far (taken: each is returned once)."""
        out: list[dict[str, Any]] = []
        while True:
            try:
                message = self.client.expect(f"{SITE}/{self.name}/req/+", timeout=0)
            except TimeoutError:
                return out
            out.append({"topic": message.topic, **values.unpack(bytes(message.payload))})

    def close(self) -> None:
        self.status("offline")
        self.client.publish(self.topic("status"), b"", retain=True)
        self.client.close()
