"""The MQTT broker connection: paho-mqtt driven by the reactor, shared by every adapter.

``MqttService`` is the ``mqtt`` plugin; ``MqttConnection`` is the connection itself, for
code that needs one of its own (the zigbee2mqtt simulator, command-line tools).
"""

from hadaemon.backoff import Backoff
from hadaemon.mqtt.connection import Message, MessageCallback, MqttConnection, MqttSubscription
from hadaemon.mqtt.machine import ConnectionMachine, State
from hadaemon.mqtt.outbox import (
    ConnectionLost,
    ConnectionStopped,
    NotConnected,
    OutboxFull,
    PublishError,
)
from hadaemon.mqtt.plugin import MqttService
from hadaemon.mqtt.settings import SCHEMA, MqttSettings
from hadaemon.mqtt.topics import InvalidTopic, matches, validate_filter, validate_topic

__all__ = [
    "SCHEMA",
    "Backoff",
    "ConnectionLost",
    "ConnectionMachine",
    "ConnectionStopped",
    "InvalidTopic",
    "Message",
    "MessageCallback",
    "MqttConnection",
    "MqttService",
    "MqttSettings",
    "MqttSubscription",
    "NotConnected",
    "OutboxFull",
    "PublishError",
    "State",
    "matches",
    "validate_filter",
    "validate_topic",
]
