"""The value model: the values hadaemon stores, sends between worlds and compares.

One owner for every layer: the state store and the node wire pack with it, the node
router copies with it, the registry and the zigbee adapter decide with it whether a
value changed. Plain functions, no I/O and no Twisted (see docs/values.md):

- :func:`pack` / :func:`unpack` / :func:`make_unpacker`: the msgpack form; which types
  round-trip exactly, and :class:`UnsupportedValue` for anything else;
- :func:`copy`: new lists and dicts, shared immutable leaves (cheaper than a round trip);
- :func:`same`: one equality (``True`` is not ``1``, ``1`` is ``1.0``, NaN is NaN).
"""

from hadaemon.values._codec import (
    EXT_BIGINT,
    EXT_SURROGATE_STR,
    MAX_DEPTH,
    UnsupportedValue,
    make_unpacker,
    pack,
    unpack,
)
from hadaemon.values._copy import copy
from hadaemon.values._same import same

__all__ = [
    "EXT_BIGINT",
    "EXT_SURROGATE_STR",
    "MAX_DEPTH",
    "UnsupportedValue",
    "copy",
    "make_unpacker",
    "pack",
    "same",
    "unpack",
]
