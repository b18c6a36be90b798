"""Which MQTT broker the tests run: mosquitto when installed (it is what installations
run), else amqtt, a pure-Python broker; ``HADAEMON_TEST_BROKER=mosquitto|amqtt`` forces
one."""

from __future__ import annotations

import os
from typing import Final

from hadaemon.broker.impls import IMPLS, find_mosquitto, find_mosquitto_passwd, installed
from hadaemon.testing.broker_errors import BrokerError, BrokerUnsupported

__all__ = [
    "ENV_VAR",
    "IMPLS",
    "available_impls",
    "default_impl",
    "find_mosquitto",
    "find_mosquitto_passwd",
    "installed",
]

ENV_VAR: Final = "HADAEMON_TEST_BROKER"


def _forced_impl() -> str | None:
    value = os.environ.get(ENV_VAR, "").strip().lower()
    if not value:
        return None
    if value not in IMPLS:
        raise BrokerError(f"{ENV_VAR}={value!r}: expected one of {', '.join(IMPLS)}")
    return value


def default_impl() -> str:
    """``$HADAEMON_TEST_BROKER`` if set, else mosquitto if installed, else amqtt."""
    forced = _forced_impl()
    if forced is not None:
        return forced
    for impl in IMPLS:
        if installed(impl):
            return impl
    raise BrokerUnsupported("no MQTT broker for tests: install mosquitto or amqtt")


def available_impls() -> list[str]:
    """Implementations to parametrize over: only the forced one when the env var is set."""
    forced = _forced_impl()
    if forced is not None:
        return [forced]
    return [impl for impl in IMPLS if installed(impl)]

