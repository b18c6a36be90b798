"""The MQTT broker connection: paho-mqtt driven by the reactor, shared by every adapter.

``MqttClient`` is its public face, the one interface adapters and plugins use (see
:mod:`hadaemon.mqtt.client`). ``MqttService`` is the ``mqtt`` plugin that provides it to
the others; ``MqttConnection`` is the connection itself, for code that needs one of its
own (the zigbee2mqtt simulator, command-line tools). Adapters and plugins import from
this package only; its modules are its own business.
"""

from hadaemon.backoff import Backoff
from hadaemon.bus.topics import InvalidTopic, matches, validate_filter, validate_topic
from hadaemon.mqtt.client import MqttClient
from hadaemon.mqtt.connection import Message, MessageCallback, MqttConnection, MqttSubscription
from hadaemon.mqtt.machine import ConnectionMachine, State
from hadaemon.mqtt.outbox import (
    ConnectionLost,
    ConnectionStopped,
    NotConnected,
    OutboxFull,
    PublishError,
)
from hadaemon.mqtt.plugin import MqttService, running_embedded
from hadaemon.mqtt.settings import SCHEMA, MqttSettings

__all__ = [
    "SCHEMA",
    "Backoff",
    "ConnectionLost",
    "ConnectionMachine",
    "ConnectionStopped",
    "InvalidTopic",
    "Message",
    "MessageCallback",
    "MqttClient",
    "MqttConnection",
    "MqttService",
    "MqttSettings",
    "MqttSubscription",
    "NotConnected",
    "OutboxFull",
    "PublishError",
    "State",
    "matches",
    "running_embedded",
    "validate_filter",
    "validate_topic",
]
