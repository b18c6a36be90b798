"""The ``mqtt`` plugin: the daemon's shared broker connection as a core service.

Other plugins declare ``requires = ("mqtt",)`` (the daemon then starts it before them and
stops it after them), find it with ``context.plugin("mqtt")`` and use it through its
public face, :class:`~hadaemon.mqtt.client.MqttClient`: ``connected``, ``publish``,
``subscribe``, ``after_read``, and the ``lifecycle/mqtt/...`` events on the bus.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

from twisted.internet.defer import Deferred

from hadaemon.config import Section
from hadaemon.mqtt.client import MqttClient
from hadaemon.mqtt.connection import MessageCallback, MqttConnection, MqttSubscription
from hadaemon.mqtt.settings import SCHEMA, MqttSettings
from hadaemon.plugin import Plugin, PluginContext


class MqttService(Plugin):
    """The broker connection shared by zigbee2mqtt, the services' com and other plugins:
    an :class:`MqttClient` over one :class:`MqttConnection`."""

    name = "mqtt"
    description = "MQTT broker connection shared by the adapters"
    schema: ClassVar[Section] = SCHEMA
    stop_timeout: ClassVar[float | None] = 6.0

    def __init__(self, context: PluginContext) -> None:
        super().__init__(context)
        self.settings = MqttSettings.from_config(context.config, context.daemon_config.core.name)
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

    def start(self) -> None:
        self.connection.start()

    def stop(self) -> Deferred[None]:
        # Leaves 1 s of the plugin's own budget for the socket to close.
        return self.connection.stop(timeout=(self.stop_timeout or 6.0) - 1.0)


if TYPE_CHECKING:
    # Both offer the whole public face; mypy checks it here.
    _SERVICE: type[MqttClient] = MqttService
    _CONNECTION: type[MqttClient] = MqttConnection
