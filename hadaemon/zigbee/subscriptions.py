"""What the adapter subscribes to: what zigbee2mqtt publishes, never the commands.

A subscription to ``<base>/#`` would hand back every ``/set``, ``/get`` and
``bridge/request`` the daemon publishes (a broker delivers a client's own publishes to
its matching subscriptions: work for nothing on every command, and an echo that looks
like a report). The filters here match only zigbee2mqtt's side of the API: the bridge
topics by name, ``<base>/+`` and ``<base>/+/availability`` for devices and groups, and,
for a friendly name holding ``/`` (``Kitchen/lamp``), its state and availability topics
exactly (``<base>/+/+`` would match ``<base>/lamp/set`` too). Reactor thread only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from hadaemon.mqtt import Message, MqttClient

# bridge/request/* is ours; logging, extensions, definitions... are not used.
BRIDGE_TOPICS = ("state", "info", "devices", "groups", "event", "response/#")


def fixed_filters(base: str) -> list[str]:
    """The filters every network needs, whatever its devices are called."""
    return [*(f"{base}/bridge/{topic}" for topic in BRIDGE_TOPICS),
            f"{base}/+", f"{base}/+/availability"]


def name_filters(base: str, names: Iterable[str]) -> set[str]:
    """Exact filters for friendly names the wildcards above do not reach."""
    out: set[str] = set()
    for name in names:
        if "/" not in name or "+" in name or "#" in name or "" in name.split("/"):
            continue  # one level (the wildcards get it), or not a valid topic at all
        out.update((f"{base}/{name}", f"{base}/{name}/availability"))
    return out


class Subscriptions:
    """The adapter's filters on the shared connection, following renames and joins."""

    def __init__(self, mqtt: MqttClient, base: str, callback: Callable[[Message], object],
                 name: str) -> None:
        self._mqtt = mqtt
        self._base = base
        self._callback = callback
        self._name = name
        self._active: dict[str, Any] = {}

    @property
    def filters(self) -> list[str]:
        return sorted(self._active)

    def start(self) -> None:
        for pattern in fixed_filters(self._base):
            self._add(pattern)

    def follow(self, names: Iterable[str]) -> None:
        """Subscribe the exact topics of multi-level ``names``; drop those now unused."""
        fixed = set(fixed_filters(self._base))
        wanted = name_filters(self._base, names)
        for pattern in [p for p in self._active if p not in fixed and p not in wanted]:
            self._active.pop(pattern).cancel()
        for pattern in sorted(wanted - set(self._active)):
            self._add(pattern)

    def stop(self) -> None:
        active, self._active = self._active, {}
        for subscription in active.values():
            subscription.cancel()

    def _add(self, pattern: str) -> None:
        self._active[pattern] = self._mqtt.subscribe(pattern, self._callback, qos=1,
                                                     name=self._name)


__all__ = ["BRIDGE_TOPICS", "Subscriptions", "fixed_filters", "name_filters"]
