"""Test infrastructure for hadaemon's tests and users' own: child processes, real MQTT
brokers and clients for them, fresh reactors, the daemon as a process, captured logs,
waiting for a condition.

The pytest fixtures (``processes``, ``broker``, ``shared_broker``, ``broker_factory``) come
from the plugin :mod:`hadaemon.testing.fixtures`; see docs/testing.md.
"""

from hadaemon.testing.broker import Broker
from hadaemon.testing.broker_errors import (
    BrokerError,
    BrokerStartError,
    BrokerUnsupported,
    ConnectRefused,
    PortInUse,
)
from hadaemon.testing.broker_impls import (
    ENV_VAR,
    IMPLS,
    available_impls,
    default_impl,
    find_mosquitto,
    find_mosquitto_passwd,
)
from hadaemon.testing.client import USE_BROKER, BlockingClient, make_client
from hadaemon.testing.credentials import mosquitto_password_line
from hadaemon.testing.daemon import DaemonProcess, toml_dumps, write_config
from hadaemon.testing.logs import CapturedLog, capture_logs
from hadaemon.testing.processes import ChildProcesses, free_tcp_port, kill_group, wait_for_port
from hadaemon.testing.reactors import new_reactor, run_in_reactor
from hadaemon.testing.waiting import poll_until, sleep, wait_until

__all__ = [
    "ENV_VAR",
    "IMPLS",
    "USE_BROKER",
    "BlockingClient",
    "Broker",
    "BrokerError",
    "BrokerStartError",
    "BrokerUnsupported",
    "CapturedLog",
    "ChildProcesses",
    "ConnectRefused",
    "DaemonProcess",
    "PortInUse",
    "available_impls",
    "capture_logs",
    "default_impl",
    "find_mosquitto",
    "find_mosquitto_passwd",
    "free_tcp_port",
    "kill_group",
    "make_client",
    "mosquitto_password_line",
    "new_reactor",
    "poll_until",
    "run_in_reactor",
    "sleep",
    "toml_dumps",
    "wait_for_port",
    "wait_until",
    "write_config",
]
