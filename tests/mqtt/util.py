"""Helpers shared by the MQTT tests: waiting in a reactor, recording lifecycle events."""

from __future__ import annotations

from typing import Any

from hadaemon.bus import Bus, Event, Lifecycle
from hadaemon.mqtt import MqttConnection, MqttSettings
from hadaemon.testing import Broker


def settings_for(
    broker: Broker, client_id: str = "hadaemon-test", **overrides: Any
) -> MqttSettings:
    """Settings for a test broker: its credentials and CA, quick reconnects."""
    values: dict[str, Any] = {
        "host": broker.host,
        "port": broker.port,
        "client_id": client_id,
        "username": broker.username or "",
        "password": broker.password or "",
        "tls": broker.tls,
        "ca_file": broker.ca_path,
        "status_topic": f"test/{client_id}/status",
        "reconnect_delay": 0.05,
        "reconnect_delay_max": 0.3,
        "connect_timeout": 3.0,
    }
    if broker.require_client_cert:
        values["cert_file"] = broker.client_cert_path
        values["key_file"] = broker.client_key_path
    values.update(overrides)
    return MqttSettings(**values)


class Lifecycles:
    """Records ``lifecycle/<component>/+`` events published on a bus."""

    def __init__(self, bus: Bus, component: str = "mqtt") -> None:
        self.events: list[str] = []
        bus.subscribe(f"lifecycle/{component}/+", self._on)

    def _on(self, event: Event) -> None:
        assert isinstance(event, Lifecycle)
        self.events.append(event.state)


def connection(reactor: Any, broker: Broker, bus: Bus | None = None, **kw: Any) -> MqttConnection:
    return MqttConnection(reactor, settings_for(broker, **kw), bus=bus)


def daemon_config(
    tmp_path: Any, sections: dict[str, Any], factories: dict[str, Any], environ: Any = None
) -> tuple[Any, Any]:
    """A validated config and a catalog holding ``factories`` (our plugins, by name) plus
    whatever ``[daemon].plugin_dirs`` hold; installed entry points are left out, so the
    test does not depend on how the package was installed."""
    import pathlib

    from hadaemon.config import validate
    from hadaemon.config.loader import read
    from hadaemon.plugin import PluginInfo, discover

    dirs = [pathlib.Path(d) for d in sections.get("daemon", {}).get("plugin_dirs", [])]
    catalog = discover(dirs, entry_points=False)
    for name, factory in factories.items():
        catalog.plugins[name] = PluginInfo(name, factory, factory.schema, "test")
    config, errors = validate(read(sections, base_dir=tmp_path, environ=environ or {}),
                              catalog.schemas())
    assert not errors, "\n".join(str(e) for e in errors)
    return config, catalog
