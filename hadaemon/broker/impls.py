"""Which MQTT brokers this machine can run: mosquitto (a binary, often in sbin, off a
normal user's PATH) and amqtt (a pure-Python broker, the ``broker`` extra)."""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path
from typing import Final

__all__ = ["IMPLS", "amqtt_installed", "find_mosquitto", "find_mosquitto_passwd", "installed"]

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


def amqtt_installed() -> bool:
    """Whether amqtt can be imported (``pip install 'hadaemon[broker]'``)."""
    return importlib.util.find_spec("amqtt") is not None


def installed(impl: str) -> bool:
    """Whether this machine has ``impl`` (one of :data:`IMPLS`)."""
    return find_mosquitto() is not None if impl == "mosquitto" else amqtt_installed()
