"""Errors a user of the store can tell apart; texts name files and keys, never values."""

from __future__ import annotations


class StoreError(Exception):
    """Base of the store's own errors."""


class StoreClosed(StoreError):
    """The store is not open (never opened, or closed): writes are refused."""


class StoreLocked(StoreError):
    """Another process has the store file open: two writers would corrupt it."""


class StoreFormatError(StoreError):
    """The file is not a store log this code can read; it is left untouched."""
