"""Which MQTT broker the tests run: mosquitto when installed (it is what installations
run), else amqtt, a pure-Python broker; ``HADAEMON_TEST_BROKER=mosquitto|amqtt`` forces
one."""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path
from typing import Final

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
IMPLS: Final = ("mosquitto", "amqtt")
_SBIN_DIRS: Final = ("/usr/sbin", "/usr/local/sbin", "/usr/bin", "/usr/local/bin")


def _find_tool(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    # sbin is often not on a normal user's PATH, which is where Debian puts mosquitto.
    for directory in _SBIN_DIRS:
        candidate = Path(directory) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def find_mosquitto() -> str | None:
    """The mosquitto binary: on PATH, else in /usr/sbin or /usr/local/sbin."""
    return _find_tool("mosquitto")


def find_mosquitto_passwd() -> str | None:
    """The mosquitto_passwd tool, looked for like mosquitto."""
    return _find_tool("mosquitto_passwd")


def _amqttinstalled() -> bool:
    return importlib.util.find_spec("amqtt") is not None


def installed(impl: str) -> bool:
    """Whether this machine has ``impl``."""
    return find_mosquitto() is not None if impl == "mosquitto" else _amqttinstalled()


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

