"""Persistence of the last known values: batched writes of what devices reported.

A changed value is marked dirty on report and written with the others of the same
interval in one ``put_many`` (``flush``); ``load`` gives a device its values back when it
is registered again, after a restart.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

_STATE_KEY = "registry/state/"


class KeyValueStore(Protocol):
    """The part of :class:`hadaemon.store.Store` the registry uses."""

    def get(self, key: str, default: Any = None) -> Any: ...
    def put(self, key: str, value: Any) -> None: ...
    def put_many(self, items: Mapping[str, Any]) -> None: ...
    def delete(self, key: str) -> None: ...
    def items(self, prefix: str = "") -> list[tuple[str, Any]]: ...


class LastKnownValues:
    """Reported values on their way to the store. Reactor thread only."""

    def __init__(
        self, reactor: IReactorTime, store: KeyValueStore, log: Logger, flush_interval: float
    ) -> None:
        self._reactor = reactor
        self._store = store
        self._log = log
        self.flush_interval = flush_interval
        self._dirty: dict[tuple[int, int, str], Any] = {}  # (peer id, channel, name)
        self._flush_call: IDelayedCall | None = None

    def load(self, peer_id: int) -> dict[int, dict[str, Any]]:
        """The persisted values of ``peer_id``, by channel and name."""
        prefix = f"{_STATE_KEY}{peer_id}/"
        out: dict[int, dict[str, Any]] = {}
        for key, value in self._store.items(prefix):
            channel, _, name = key[len(prefix):].partition("/")
            try:
                out.setdefault(int(channel), {})[name] = value
            except ValueError:
                continue
        return out

    def mark_dirty(self, key: tuple[int, int, str], value: Any) -> None:
        self._dirty[key] = value
        if self._flush_call is None:
            self._flush_call = self._reactor.callLater(self.flush_interval, self.flush)

    def flush(self) -> None:
        """Persist the last known values reported since the previous flush (one write)."""
        if self._flush_call is not None:
            if self._flush_call.active():
                self._flush_call.cancel()
            self._flush_call = None
        if not self._dirty:
            return
        dirty = {f"{_STATE_KEY}{peer}/{channel}/{name}": value
                 for (peer, channel, name), value in self._dirty.items()}
        self._dirty = {}
        try:
            self._store.put_many(dirty)
        except TypeError:
            # A value outside the store's value model: keep the others.
            for key, value in dirty.items():
                try:
                    self._store.put(key, value)
                except TypeError as exc:
                    self._log.warn("not persisting {key}: {error}", key=key, error=str(exc))
