"""The store's keys in order, so a prefix query costs O(log n + matches), not a scan.

The registry asks for one device's last known values (``registry/state/<peer>/``) each
time a device is added: with a scan of every key, adding N devices took O(N^2). The
sorted list is kept up to date with each write (one key: a bisect and a list insert or
delete, a ``memmove`` of pointers; many keys: one sort, which is linear on a list that is
sorted but for the new keys at its end) and built once when the log is loaded.
"""

from __future__ import annotations

import bisect
from collections.abc import Collection, Iterable

_MAX_CHAR = chr(0x10FFFF)


class KeyIndex:
    """The keys of a store, sorted. Not thread-safe (the store is reactor-thread only)."""

    __slots__ = ("_keys",)

    def __init__(self, keys: Iterable[str] = ()) -> None:
        self._keys = sorted(keys)

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, key: str) -> None:
        """``key`` is new (not in the index yet)."""
        bisect.insort(self._keys, key)

    def remove(self, key: str) -> None:
        """``key`` is gone (it was in the index)."""
        at = bisect.bisect_left(self._keys, key)
        if at < len(self._keys) and self._keys[at] == key:
            del self._keys[at]

    def update(self, added: Collection[str], removed: Collection[str]) -> None:
        """Keys that are new and keys that are gone, after one write of several."""
        if removed:
            if len(removed) == 1:
                self.remove(next(iter(removed)))
            else:
                gone = set(removed)
                self._keys = [key for key in self._keys if key not in gone]
        if added:
            if len(added) == 1:
                self.add(next(iter(added)))
            else:
                self._keys.extend(added)
                self._keys.sort()

    def prefixed(self, prefix: str) -> list[str]:
        """The keys starting with ``prefix``, sorted (a new list)."""
        keys = self._keys
        if not prefix:
            return keys[:]
        low = bisect.bisect_left(keys, prefix)
        end = _after_prefix(prefix)
        if end is not None:
            return keys[low:bisect.bisect_left(keys, end, low)]
        high = low
        while high < len(keys) and keys[high].startswith(prefix):
            high += 1
        return keys[low:high]


def _after_prefix(prefix: str) -> str | None:
    """The least string greater than every string starting with ``prefix`` (None if
    there is none: the prefix is all U+10FFFF)."""
    stripped = prefix.rstrip(_MAX_CHAR)
    if not stripped:
        return None
    return stripped[:-1] + chr(ord(stripped[-1]) + 1)


__all__ = ["KeyIndex"]
