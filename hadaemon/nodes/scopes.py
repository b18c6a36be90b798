"""Node, flow and global data, and node credentials, in the daemon's stores.

The client puts the node id first in all six data methods; the daemon maps it to the
node's own scope, its flow's, or the global one (Homegear gets flow and global wrong).
Each key is one store entry, under the plugin's namespace::

    plugin/nodes/node/<node id>/<key>
    plugin/nodes/flow/<flow id>/<key>
    plugin/nodes/global/<key>

Key ``""`` reads the whole scope as a dict (and, with a dict, replaces it). Credentials
are one dict per node in the separate 0600 credentials store, never logged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from hadaemon.nodes.faults import INVALID_PARAMS, Fault

NODE_SCOPE = "node"
FLOW_SCOPE = "flow"
GLOBAL_SCOPE = "global"


class KeyValueStore(Protocol):
    def get(self, key: str, default: Any = None) -> Any: ...
    def put(self, key: str, value: Any) -> None: ...
    def put_many(self, items: dict[str, Any]) -> None: ...
    def delete(self, key: str) -> None: ...
    def items(self, prefix: str = "") -> list[tuple[str, Any]]: ...
    def keys(self, prefix: str = "") -> list[str]: ...


class DataScopes:
    """Reads and writes of the three data scopes (reactor thread only, like the store)."""

    def __init__(self, store: KeyValueStore, key: Callable[..., str]) -> None:
        self._store = store
        self._key = key  # the plugin context's key(): "plugin/<name>/<parts>"

    def prefix(self, scope: str, owner: str | None) -> str:
        parts = [scope] if scope == GLOBAL_SCOPE else [scope, owner]
        return self._key(*parts) + "/"

    def get(self, scope: str, owner: str | None, key: Any) -> Any:
        name = _key_name(key)
        prefix = self.prefix(scope, owner)
        if name == "":
            return {k[len(prefix):]: v for k, v in self._store.items(prefix)}
        return self._store.get(prefix + name)

    def set(self, scope: str, owner: str | None, key: Any, value: Any) -> None:
        name = _key_name(key)
        prefix = self.prefix(scope, owner)
        if name != "":
            try:
                self._store.put(prefix + name, value)
            except TypeError as exc:
                raise Fault(INVALID_PARAMS, f"cannot store {name!r}: {exc}") from None
            return
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise Fault(INVALID_PARAMS, 'key "" replaces the whole store: the value must be '
                        "a dict with string keys")
        # The new values go in one record (all or nothing, a bad value writes none of
        # them); only then are the keys that are not in it removed.
        stale = [k for k in self._store.keys(prefix) if k[len(prefix):] not in value]
        try:
            self._store.put_many({prefix + k: v for k, v in value.items() if k != ""})
        except TypeError as exc:
            raise Fault(INVALID_PARAMS, f"cannot store: {exc}") from None
        for key_name in stale:
            self._store.delete(key_name)


def _key_name(key: Any) -> str:
    if not isinstance(key, str):
        raise Fault(INVALID_PARAMS, f"a data key is a string, got {type(key).__name__}")
    return key


class NodeCredentials:
    """One dict of secrets per node. Errors name keys at most, never values."""

    def __init__(self, store: KeyValueStore, key: Callable[..., str]) -> None:
        self._store = store
        self._key = key

    def get(self, node_id: str) -> dict[str, Any]:
        value = self._store.get(self._key("credentials", node_id))
        return value if isinstance(value, dict) else {}

    def update(self, node_id: str, values: Any) -> None:
        """Write the given keys (the others stay)."""
        if not isinstance(values, dict):
            raise Fault(INVALID_PARAMS, "setNodeCredentials takes a dict")
        merged = {**self.get(node_id), **values}
        try:
            self._store.put(self._key("credentials", node_id), merged)
        except TypeError:
            # The secret store's own message redacts values; do not even chain it.
            raise Fault(INVALID_PARAMS, "credentials must be plain values (str, numbers, "
                        "bool, None, bytes, lists and dicts)") from None
