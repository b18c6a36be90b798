"""System variables: named values of the house itself (peer 0, channel -1), persisted.

They belong to no device and no adapter: the registry answers for them at ``device:0``
and in ``get_value``/``put_values`` for peer 0, and publishes their changes from source
``"system"`` like any variable's.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.interfaces import IReactorTime

from hadaemon.bus import Bus, VariableChanged
from hadaemon.registry.errors import InvalidValue, SystemVariableNotFound
from hadaemon.registry.model import SYSTEM_CHANNEL, SYSTEM_PEER_ID
from hadaemon.registry.state import KeyValueStore
from hadaemon.sentinels import UNKNOWN
from hadaemon.values import same

SYSTEM_SOURCE = "system"

_SYSVAR_KEY = "registry/sysvar/"


class SystemVariables:
    """The system variables, loaded from the store on first use. Reactor thread only."""

    def __init__(self, reactor: IReactorTime, bus: Bus, store: KeyValueStore) -> None:
        self._reactor = reactor
        self._bus = bus
        self._store = store
        self._values: dict[str, Any] | None = None

    def get(self, name: str) -> Any:
        values = self.load()
        if name not in values:
            raise SystemVariableNotFound(name)
        return values[name]

    def set(self, name: str, value: Any) -> None:
        """Set (and persist) a system variable; publishes a change from source "system"."""
        if not isinstance(name, str) or not name:
            raise InvalidValue(f"a system variable name is a non-empty string, got {name!r}")
        values = self.load()
        previous = values.get(name, UNKNOWN)
        self._store.put(_SYSVAR_KEY + name, value)  # validates the value model first
        values[name] = value
        if not same(previous, value):
            self._bus.publish(
                VariableChanged(
                    SYSTEM_SOURCE, SYSTEM_PEER_ID, SYSTEM_CHANNEL, name, value,
                    self._reactor.seconds(), previous,
                )
            )

    def delete(self, name: str) -> None:
        values = self.load()
        if name not in values:
            raise SystemVariableNotFound(name)
        del values[name]
        self._store.delete(_SYSVAR_KEY + name)

    def load(self) -> dict[str, Any]:
        """All of them (the live dict, not a copy), read from the store the first time."""
        if self._values is None:
            self._values = {
                k[len(_SYSVAR_KEY):]: v for k, v in self._store.items(_SYSVAR_KEY)
            }
        return self._values
