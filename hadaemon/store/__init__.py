"""Durable key-value storage for state that must survive a restart (see docs/store.md)."""

from hadaemon.store.errors import StoreClosed, StoreError, StoreFormatError, StoreLocked
from hadaemon.store.store import Store, ThreadRunner
from hadaemon.store.values import UnsupportedValue, make_unpacker, pack, unpack

__all__ = [
    "Store",
    "StoreClosed",
    "StoreError",
    "StoreFormatError",
    "StoreLocked",
    "ThreadRunner",
    "UnsupportedValue",
    "make_unpacker",
    "pack",
    "unpack",
]
