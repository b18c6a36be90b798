"""The ``zigbee2mqtt_simulator`` plugin: a simulated zigbee2mqtt on the configured broker.

It connects with the ``[mqtt]`` section's settings (another client id), so the daemon's
zigbee2mqtt adapter sees a network with no hardware. The sample network (17 popular
devices and two groups) is used unless ``devices``/``groups`` name files of your own.
"""

from __future__ import annotations

import pathlib
from typing import Any, ClassVar

from twisted.internet.defer import Deferred

from hadaemon.config import Bool, Float, Int, Path, Section, Str
from hadaemon.mqtt import SCHEMA as MQTT_SCHEMA
from hadaemon.mqtt import MqttConnection, MqttSettings
from hadaemon.plugin import Plugin
from hadaemon.zigbee.simulator import (
    Zigbee2MqttSimulator,
    load_json_file,
    sample_devices,
    sample_groups,
)

SCHEMA = Section(
    {
        "mqtt": Str(default="mqtt", non_empty=True,
                    doc="Section whose broker settings to use (with a client id of its own)."),
        "host": Str(default="", doc="Broker host, when not the one of the mqtt section."),
        "port": Int(default=0, min=0, max=65535, doc="Broker port (0: the mqtt section's)."),
        "base_topic": Str(default="zigbee2mqtt", non_empty=True),
        "devices": Path(default=None, must_exist=True, kind="file",
                        doc="A saved bridge/devices payload (JSON); default: the sample."),
        "groups": Path(default=None, must_exist=True, kind="file",
                       doc="A saved bridge/groups payload; default: the sample's groups "
                       "(none when devices is given)."),
        "availability": Bool(default=True, doc="Publish <name>/availability."),
        "report_interval": Float(default=5.0, min=0.0,
                                 doc="Seconds between simulated sensor reports (0: none)."),
        "latency": Float(default=0.02, min=0.0, doc="Seconds a device takes to answer."),
    },
    doc="A simulated zigbee2mqtt on the broker (zigbee devices without hardware).",
)


class SimulatorPlugin(Plugin):
    """A simulated zigbee2mqtt bridge with a sample network."""

    name = "zigbee2mqtt_simulator"
    description = "simulated zigbee2mqtt bridge (devices without hardware)"
    schema: ClassVar[Section] = SCHEMA
    stop_timeout: ClassVar[float | None] = 4.0
    # After the mqtt plugin when both run: an embedded broker's address is known then.
    wants: ClassVar[tuple[str, ...]] = ("mqtt",)

    simulator: Zigbee2MqttSimulator | None = None
    connection: MqttConnection | None = None

    def start(self) -> None:
        config = self.config
        daemon_config = self.context.daemon_config
        section = daemon_config.section(config["mqtt"])
        if not section:
            section = MQTT_SCHEMA.defaults()
        base = MqttSettings.from_config(section, daemon_config.core.name)
        running = getattr(self.context.plugin(config["mqtt"]), "settings", None)
        if isinstance(running, MqttSettings):
            base = running  # what it connected to (the embedded broker's address)
        elif base.embedded:
            raise RuntimeError(
                f'[{config["mqtt"]}] broker = "embedded", but the {config["mqtt"]!r} plugin '
                "that runs that broker is not running: enable it in [daemon].plugins")
        settings = base.with_client_id(f"{base.client_id}-z2m-sim"[:64], status_topic="")
        overrides: dict[str, Any] = {}
        if config["host"]:
            overrides["host"] = config["host"]
        if config["port"]:
            overrides["port"] = config["port"]
        if overrides:
            from dataclasses import replace

            settings = replace(settings, **overrides)
        base_topic = config["base_topic"].rstrip("/")
        self.connection = MqttConnection(
            self.reactor, settings, bus=None, component=self.name, log=self.log,
            status=False, will=(f"{base_topic}/bridge/state", b'{"state": "offline"}'),
        )
        devices = self.load_devices()
        groups = self.load_groups()
        self.simulator = self.make_simulator(devices, groups)
        self.simulator.start()
        self.connection.start()

    def load_devices(self) -> list[Any]:
        path = self.config["devices"]
        loaded = load_json_file(pathlib.Path(path)) if path else sample_devices()
        if not isinstance(loaded, list):
            raise ValueError(f"{path}: a bridge/devices payload is a JSON list")
        return loaded

    def load_groups(self) -> list[Any]:
        path = self.config["groups"]
        if path:
            loaded = load_json_file(pathlib.Path(path))
            if not isinstance(loaded, list):
                raise ValueError(f"{path}: a bridge/groups payload is a JSON list")
            return loaded
        return [] if self.config["devices"] else sample_groups()

    def make_simulator(self, devices: list[Any], groups: list[Any]) -> Zigbee2MqttSimulator:
        """Subclasses may return a simulator of their own (see plugins/)."""
        assert self.connection is not None
        return Zigbee2MqttSimulator(
            self.reactor, self.connection, devices, groups=groups,
            base_topic=self.config["base_topic"], availability=self.config["availability"],
            latency=self.config["latency"], report_interval=self.config["report_interval"],
            log=self.log,
        )

    def stop(self) -> Deferred[Any] | None:
        if self.simulator is None or self.connection is None:
            return None
        connection = self.connection
        return self.simulator.stop().addBoth(lambda _: connection.stop(timeout=2.0))
