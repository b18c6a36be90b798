"""MQTT brokers the daemon runs itself: the embedded broker (``[mqtt] broker =
"embedded"``, :mod:`hadaemon.broker.embedded`), and the config and password files that
it and the test brokers of :mod:`hadaemon.testing` are made of."""

from hadaemon.broker.configs import (
    Listener,
    amqtt_config,
    amqtt_password_line,
    mosquitto_config,
    mosquitto_password_line,
)
from hadaemon.broker.embedded import (
    BrokerAddress,
    BrokerUnavailable,
    EmbeddedBroker,
    choose_impl,
    running_address,
)
from hadaemon.broker.impls import IMPLS, amqtt_installed, find_mosquitto, find_mosquitto_passwd

__all__ = [
    "IMPLS",
    "BrokerAddress",
    "BrokerUnavailable",
    "EmbeddedBroker",
    "Listener",
    "amqtt_config",
    "amqtt_installed",
    "amqtt_password_line",
    "choose_impl",
    "find_mosquitto",
    "find_mosquitto_passwd",
    "mosquitto_config",
    "mosquitto_password_line",
    "running_address",
]
