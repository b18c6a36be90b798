"""The ``mqtt`` plugin inside a daemon: config, lookup by other plugins, lifecycle, stop."""

from __future__ import annotations

import pathlib
import textwrap
from typing import Any

from hadaemon.daemon import Daemon
from hadaemon.mqtt import MqttService
from hadaemon.testing import BlockingClient, Broker, run_in_reactor, wait_until

from .util import Lifecycles, daemon_config

USER = textwrap.dedent('''
    from hadaemon.plugin import Plugin

    class User(Plugin):
        name = "user"

        def start(self):
            self.mqtt = self.context.plugin("mqtt")
            self.got = []
            self.mqtt.subscribe("plugin/in", lambda m: self.got.append(m.payload))
            return self.mqtt.publish("plugin/out", "from a plugin")
''')


def test_plugin_shared_by_another_plugin(tmp_path: pathlib.Path, broker: Broker) -> None:
    watcher = BlockingClient(broker).connect()
    watcher.subscribe("#")
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "user.py").write_text(USER)
    sections = {
        "daemon": {"state_dir": str(tmp_path / "state"), "plugins": ["mqtt", "user"],
                   "plugin_dirs": [str(tmp_path / "plugins")]},
        "mqtt": {"host": broker.host, "port": broker.port, "client_id": "daemon-test",
                 "reconnect_min": 0.05},
    }
    config, catalog = daemon_config(tmp_path, sections, {"mqtt": MqttService})

    async def scenario(reactor: Any) -> None:
        daemon = Daemon(config, reactor, catalog=catalog)
        events = Lifecycles(daemon.bus)
        daemon.startService()
        await daemon.started
        assert not daemon.failed, daemon.failed
        assert events.events == ["connected"]
        service = daemon.plugin("mqtt")
        assert isinstance(service, MqttService) and service.connected
        user: Any = daemon.plugin("user")
        watcher.publish("plugin/in", b"hello")
        await wait_until(reactor, lambda: user.got == [b"hello"])
        await daemon.stopService()
        assert events.events == ["connected"]
        assert not service.connected

    run_in_reactor(scenario, timeout=20)
    topics = [m.topic for m in watcher.pending()]
    assert "plugin/out" in topics
    status = [m.payload for m in watcher.pending() if m.topic.endswith("/status")]
    assert status[-1] == b'{"state": "offline"}'
    watcher.close()


def test_schema_errors_and_password_from_env(tmp_path: pathlib.Path) -> None:
    from hadaemon.config import validate
    from hadaemon.config.loader import read

    schemas = {"mqtt": MqttService.schema}
    raw = read({"mqtt": {"port": "abc", "tls_verify": 1, "hots": "x"}}, base_dir=tmp_path,
               environ={})
    _config, errors = validate(raw, schemas)
    text = "\n".join(str(e) for e in errors)
    assert "[mqtt].port: expected an integer" in text
    assert "[mqtt].tls_verify: expected true or false" in text
    assert '[mqtt].hots: unknown key (did you mean "host"?)' in text

    raw = read({"daemon": {"plugins": ["mqtt"]}, "mqtt": {"password": {"env": "MQTT_PW"},
                                                           "username": "u"}},
               base_dir=tmp_path, environ={"MQTT_PW": "from-env"})
    config, errors = validate(raw, schemas)
    assert not errors
    from hadaemon.mqtt import MqttSettings

    settings = MqttSettings.from_config(config.section("mqtt"))
    assert settings.password == "from-env" and "from-env" not in repr(settings)
    raw = read({"mqtt": {"ca_file": "missing.pem"}}, base_dir=tmp_path, environ={})
    _config, errors = validate(raw, schemas)
    assert "missing.pem does not exist" in "\n".join(str(e) for e in errors)
