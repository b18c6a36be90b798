"""Durable key-value storage for state that must survive a restart (see docs/store.md)."""

from hadaemon.store.errors import StoreClosed, StoreError, StoreFormatError, StoreLocked
from hadaemon.store.store import Store
from hadaemon.store.threads import ThreadRunner

__all__ = [
    "Store",
    "StoreClosed",
    "StoreError",
    "StoreFormatError",
    "StoreLocked",
    "ThreadRunner",
]
