"""The public face of an MQTT connection: what adapters and plugins may use of it.

One :class:`MqttClient` protocol for every user of the shared connection. The ``mqtt``
plugin (:class:`~hadaemon.mqtt.plugin.MqttService`, found with
``context.plugin("mqtt")``) provides it; so does
:class:`~hadaemon.mqtt.connection.MqttConnection` for code with a connection of its own
(the simulator, command-line tools), and the zigbee test kit's in-memory
``FakeConnection``. Code that speaks MQTT types against :class:`MqttClient` and takes
the plain data it hands over (:class:`~hadaemon.mqtt.connection.Message`,
:class:`~hadaemon.mqtt.connection.MqttSubscription`, the publish errors) from
``hadaemon.mqtt``; the connection's modules are its own business.

Readiness is :attr:`MqttClient.connected` for "now", and for changes the bus event
``Lifecycle(<plugin name>, "connected" | "reconnected" | "disconnected")`` on
``lifecycle/<plugin name>/<state>`` (``details["reason"]`` says why a link dropped).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from twisted.internet.defer import Deferred

from hadaemon.mqtt.connection import MessageCallback, MqttSubscription


@runtime_checkable
class MqttClient(Protocol):
    """A broker connection as its users see it. Reactor thread only, every member."""

    @property
    def connected(self) -> bool:
        """Whether the broker accepted us and the connection is up right now."""
        ...

    def publish(
        self, topic: str, payload: bytes | str, *, qos: int = 1, retain: bool = False
    ) -> Deferred[None]:
        """Publish; fires once written (QoS 0) or acknowledged (QoS 1).

        QoS 1 publishes made while disconnected wait in a bounded queue and go out after
        the reconnect. Fails with ``ValueError`` (a topic with wildcards, a QoS other than
        0 and 1), ``NotConnected`` (QoS 0 while disconnected), ``OutboxFull`` or
        ``ConnectionStopped``, all as a failed Deferred, never raised.
        """
        ...

    def subscribe(
        self, pattern: str, callback: MessageCallback, *, qos: int = 1, name: str | None = None
    ) -> MqttSubscription:
        """``callback(message)`` for every message on a topic ``pattern`` matches, until
        the subscription's ``cancel()``; kept across reconnects.

        Raises ``InvalidTopic`` (a ``ValueError``) for a malformed filter. The callback
        may return a Deferred or a coroutine; one that fails is logged with ``name``.
        """
        ...

    def after_read(self, callback: Callable[[], object]) -> Callable[[], None]:
        """Call ``callback()`` each time the messages read in one wake-up have all been
        delivered (what it publishes is written at once); returns a remover."""
        ...


__all__ = ["MqttClient"]
