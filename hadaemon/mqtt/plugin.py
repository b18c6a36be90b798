"""The ``mqtt`` plugin: the daemon's shared broker connection as a core service.

Other plugins declare ``requires = ("mqtt",)`` (the daemon then starts it before them and
stops it after them), find it with ``context.plugin("mqtt")`` and use it through its
public face, :class:`~hadaemon.mqtt.client.MqttClient`: ``connected``, ``publish``,
``subscribe``, ``after_read``, and the ``lifecycle/mqtt/...`` events on the bus.

With ``broker = "embedded"`` it first starts the daemon's own broker
(:class:`hadaemon.broker.EmbeddedBroker`) and connects to it; ``settings`` then holds
the address and credentials the connection uses (plugins that make connections of their
own, like the zigbee2mqtt simulator, take them from there). The broker stops after the
connection, when this plugin stops, after every plugin that needs it.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from twisted.internet.defer import Deferred

from hadaemon.broker import (
    BrokerAddress,
    BrokerUnavailable,
    EmbeddedBroker,
    choose_impl,
    running_address,
)
from hadaemon.config import Config, Section
from hadaemon.mqtt.client import MqttClient
from hadaemon.mqtt.connection import MessageCallback, MqttConnection, MqttSubscription
from hadaemon.mqtt.settings import SCHEMA, MqttSettings, status_prefix
from hadaemon.plugin import Plugin, PluginContext


class MqttService(Plugin):
    """The broker connection shared by zigbee2mqtt, the services' com and other plugins:
    an :class:`MqttClient` over one :class:`MqttConnection`."""

    name = "mqtt"
    description = "MQTT broker connection shared by the adapters"
    schema: ClassVar[Section] = SCHEMA
    stop_timeout: ClassVar[float | None] = 6.0
    _BROKER_STOP: ClassVar[float] = 2.0  # of stop_timeout, for the embedded broker

    def __init__(self, context: PluginContext) -> None:
        super().__init__(context)
        daemon_config = context.daemon_config
        self.settings = MqttSettings.from_config(context.config, daemon_config.core.name,
                                                 status_prefix=status_prefix(daemon_config))
        self.broker: EmbeddedBroker | None = None
        """The embedded broker (``broker = "embedded"``), else None."""
        if self.settings.embedded:
            self.broker = EmbeddedBroker(
                context.reactor, context.state_dir / "broker", log=context.log,
                backoff=self.settings.restart_backoff(), impl=self.settings.broker_impl,
                port=self.settings.broker_port,
            )
        self.connection = MqttConnection(
            context.reactor,
            self.settings,
            bus=context.bus,
            component=context.name,
            log=context.log,
            watchdog=context.watchdog,
        )

    @property
    def connected(self) -> bool:
        """Whether the broker connection is up right now."""
        return self.connection.connected

    def publish(
        self, topic: str, payload: bytes | str, *, qos: int = 1, retain: bool = False
    ) -> Deferred[None]:
        """See :meth:`MqttConnection.publish`."""
        return self.connection.publish(topic, payload, qos=qos, retain=retain)

    def subscribe(
        self, pattern: str, callback: MessageCallback, *, qos: int = 1, name: str | None = None
    ) -> MqttSubscription:
        """See :meth:`MqttConnection.subscribe`."""
        return self.connection.subscribe(pattern, callback, qos=qos, name=name)

    def after_read(self, callback: Callable[[], object]) -> Callable[[], None]:
        """See :meth:`MqttConnection.after_read`."""
        return self.connection.after_read(callback)

    @classmethod
    def check_config(cls, section: Mapping[str, Any], config: Config) -> list[str]:
        """``hadaemon check``: an embedded broker needs mosquitto or amqtt installed."""
        try:
            settings = MqttSettings.from_config(section, config.core.name,
                                                status_prefix=status_prefix(config))
            if settings.embedded:
                choose_impl(settings.broker_impl)
        except (ValueError, BrokerUnavailable) as exc:
            return [str(exc)]
        return []

    def start(self) -> Deferred[None] | None:
        if self.broker is None:
            self.connection.start()
            return None
        return self.broker.start().addCallback(self._connect_to)

    def _connect_to(self, address: BrokerAddress) -> None:
        self.settings = self.settings.at(address.host, address.port, address.username,
                                         address.password)
        # (read at each connect: nothing was connected before the broker ran)
        self.connection.settings = self.settings
        self.connection.start()

    def stop(self) -> Deferred[None]:
        # Leaves 1 s of the plugin's own budget for the socket to close (and the time
        # the embedded broker may take to stop, after the connection).
        budget = (self.stop_timeout or 6.0) - 1.0
        broker = self.broker
        if broker is None:
            return self.connection.stop(timeout=budget)
        d = self.connection.stop(timeout=budget - self._BROKER_STOP)
        return d.addBoth(lambda _: broker.stop(timeout=self._BROKER_STOP - 0.5))


def running_embedded(settings: MqttSettings, state_dir: pathlib.Path,
                     name: str = "mqtt") -> MqttSettings:
    """``settings`` for a client of its own (the command-line tools): with ``broker =
    "embedded"``, aimed at the broker that a running daemon's plugin ``name`` started
    (ValueError when none runs); otherwise unchanged."""
    if not settings.embedded:
        return settings
    # (a plugin's state dir is <state_dir>/plugins/<name>: the daemon's layout)
    address = running_address(state_dir / "plugins" / name / "broker")
    if address is None:
        raise ValueError(f'[{name}] broker = "embedded": no running daemon has started its '
                         f"broker (state dir {state_dir}); start the daemon first")
    return settings.at(address.host, address.port, address.username, address.password)


if TYPE_CHECKING:
    # Both offer the whole public face; mypy checks it here.
    _SERVICE: type[MqttClient] = MqttService
    _CONNECTION: type[MqttClient] = MqttConnection
