"""The value model of hadaemon's node wire, for the node side (no hadaemon import).

The same model, byte for byte, as ``hadaemon.values`` in the daemon (a test
checks they agree): None, bool, int of any size, float (every bit), str (lone surrogates
included), bytes, list (tuples arrive as lists), dict with str or int keys, nested up to
256 levels. msgpack cannot carry two of them, so they travel as extension types:

- ext **1**: an int outside -2**63 .. 2**64-1, big-endian two's complement in the fewest
  bytes that hold the sign;
- ext **2**: a str with lone surrogates, UTF-8 encoded with ``surrogatepass``.

Uses the C ``msgpack`` when the node's Python has it, else the pure-Python codec next to
this file. Python 3.7+, no third-party requirement.
"""

from __future__ import annotations

import threading

try:  # the C extension is ~10x faster; nodes may run under a Python without it
    import msgpack as _msgpack

    _msgpack.ExtType  # noqa: B018 (an unrelated module named msgpack would lack it)
except (ImportError, AttributeError):
    _msgpack = None

if _msgpack is None:
    try:
        from . import _homegear_msgpack as _pure
    except ImportError:
        import _homegear_msgpack as _pure  # type: ignore[no-redef, import-not-found]

TYPE_CHECKING = False  # typing is not imported at run time (a node's memory)
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Any

EXT_BIGINT = 1
EXT_SURROGATE_STR = 2
MAX_DEPTH = 256
_INT_MIN = -(1 << 63)
_INT_MAX = (1 << 64) - 1

BACKEND = "msgpack" if _msgpack is not None else "pure-python"
"""Which msgpack codec this process uses."""

_ExtType: Any = _msgpack.ExtType if _msgpack is not None else _pure.ExtType


class UnsupportedValue(TypeError):
    """A value outside the value model; the message says which type and where."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what
        self.path = ""

    def __str__(self) -> str:
        return f"{self.what} at {self.path}" if self.path else self.what


def _str(value: str) -> Any:
    if value.isascii():
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return _ExtType(EXT_SURROGATE_STR, value.encode("utf-8", "surrogatepass"))
    return value


def _int(value: int) -> Any:
    if _INT_MIN <= value <= _INT_MAX:
        return value
    length = (value.bit_length() + 8) // 8
    return _ExtType(EXT_BIGINT, value.to_bytes(length, "big", signed=True))


def _prepare(value: Any, depth: int) -> Any:
    kind = type(value)
    if value is None or kind is bool or kind is float or kind is bytes:
        return value
    if kind is str:
        return _str(value)
    if kind is int:
        return _int(value)
    if kind is list or kind is tuple:
        if depth >= MAX_DEPTH:
            raise UnsupportedValue(f"nested deeper than {MAX_DEPTH} levels")
        items = []
        for index, item in enumerate(value):
            try:
                items.append(_prepare(item, depth + 1))
            except UnsupportedValue as exc:
                exc.path = f"[{index}]{exc.path}"
                raise
        return items
    if kind is dict:
        if depth >= MAX_DEPTH:
            raise UnsupportedValue(f"nested deeper than {MAX_DEPTH} levels")
        mapping = {}
        for key, item in value.items():
            key_kind = type(key)
            if key_kind is str:
                packed_key = _str(key)
            elif key_kind is int:
                packed_key = _int(key)
            else:
                raise UnsupportedValue(f"unsupported dict key type {key_kind.__name__}")
            try:
                mapping[packed_key] = _prepare(item, depth + 1)
            except UnsupportedValue as exc:
                exc.path = f"[{key!r}]{exc.path}"
                raise
        return mapping
    raise UnsupportedValue(f"unsupported type {kind.__name__}")


def prepare(value: Any) -> Any:
    """A tree msgpack packs as is (ExtType where needed); UnsupportedValue otherwise."""
    return _prepare(value, 0)


class _NotPlain(Exception):
    """The C packer met something the value model converts (or refuses)."""


def _not_plain(obj: Any) -> Any:
    raise _NotPlain


_PLAIN_KEYS = frozenset((str, int))
_LEAVES = frozenset((str, int, float, bool, type(None), bytes))
_SMALL_DICT = 8


def _plain_keys(value: Any, depth: int = 0) -> bool:
    """Every dict key in ``value`` (a dict or list) is a str or an int: the C packer takes
    any key, the model only these. The common shapes (a dict of scalars, a list of them)
    are checked without a Python loop."""
    if depth >= MAX_DEPTH:
        return False  # the model's way raises the right error
    if type(value) is dict and len(value) <= _SMALL_DICT:
        # A node message: a few keys. A plain loop beats building iterators here.
        for key, item in value.items():
            if type(key) is not str and type(key) is not int:
                return False
            kind = type(item)
            if (kind is dict or kind is list) and not _plain_keys(item, depth + 1):
                return False
        return True
    if type(value) is dict:
        if not all(map(_PLAIN_KEYS.__contains__, map(type, value))):
            return False
        value = value.values()
    if all(map(_LEAVES.__contains__, map(type, value))):
        return True
    for child in value:
        kind = type(child)
        if (kind is dict or kind is list) and not _plain_keys(child, depth + 1):
            return False
    return True


_local = threading.local()


def _packer() -> Any:
    """This thread's C packer (a Packer is not thread-safe; making one per call costs
    more than packing a small message)."""
    try:
        return _local.packer
    except AttributeError:
        packer = _local.packer = _msgpack.Packer(
            use_bin_type=True, strict_types=True, default=_not_plain
        )
        return packer


def pack(value: Any) -> bytes:
    """The msgpack bytes of ``value`` in the value model."""
    if _msgpack is not None and (
        (type(value) is not dict and type(value) is not list) or _plain_keys(value)
    ):
        # The C packer with exact types gives the same bytes for everything it takes;
        # ints beyond 64 bits, lone surrogates, tuples and anything else take the
        # model's way below (which converts or refuses them). benchmarks/shortcuts.py:
        # 0.6-1.0 us against 1.4-2.3 us the model's way for a small message.
        try:
            fast: bytes = _packer().pack(value)
        except (_NotPlain, OverflowError, UnicodeEncodeError, ValueError):
            _local.__dict__.pop("packer", None)  # older msgpacks keep a half-packed buffer
        else:
            return fast
    prepared = _prepare(value, 0)
    if _msgpack is not None:
        data: bytes = _msgpack.packb(prepared, use_bin_type=True, use_single_float=False)
        return data
    return _pure.packb(prepared)


def copier(value: Any) -> Callable[[], Any]:
    """A function that returns a fresh copy of ``value`` (a tree decoded by this module)
    at each call: new lists and dicts, the same immutable leaves.

    For nodeInfo, which every nodeInput callback gets a copy of: a function built for
    the value's shape makes one faster than decoding its bytes again
    (``benchmarks/shortcuts.py``: 0.7-1.4 us against 2.0-4.0 us, a quarter of the ~5 us
    a message costs the two nodes in ``benchmarks/node_routing.py``). Values too
    deep or too large for that are decoded again instead.
    """
    packed = pack(value)
    leaves: list[Any] = []

    def literal(item: Any, depth: int) -> str:
        kind = type(item)
        if depth > _COPIER_DEPTH or len(leaves) > _COPIER_LEAVES:
            raise _NotPlain
        if kind is dict:
            return "{" + ", ".join(
                literal(key, depth + 1) + ": " + literal(child, depth + 1)
                for key, child in item.items()
            ) + "}"
        if kind is list:
            return "[" + ", ".join(literal(child, depth + 1) for child in item) + "]"
        if kind not in _LEAVES:
            raise _NotPlain
        leaves.append(item)
        return f"_{len(leaves) - 1}"

    try:
        body = literal(value, 0)
    except _NotPlain:
        return lambda: unpack(packed)
    # The leaves are the function's default arguments: fast locals, never copied.
    arguments = ", ".join(f"_{i}=_leaves[{i}]" for i in range(len(leaves)))
    namespace: dict[str, Any] = {"_leaves": leaves}
    exec(f"def _copy({arguments}):\n    return {body}\n", namespace)
    made: Callable[[], Any] = namespace["_copy"]
    return made


_COPIER_DEPTH = 40  # Python's parser refuses deeply nested literals
_COPIER_LEAVES = 5000


_RESPONSE_HEAD = b"\x94\x01"  # msgpack-rpc response: array(4), type 1


def pack_ok(msgid: int) -> bytes:
    """``[1, msgid, None, None]``: the answer to a nodeInput that returned nothing
    (``benchmarks/shortcuts.py``: 0.3-0.5 us against 0.7-0.9 us through :func:`pack`)."""
    packed_id = _msgpack.packb(msgid) if _msgpack is not None else _pure.packb(msgid)
    return _RESPONSE_HEAD + packed_id + b"\xc0\xc0"


def _ext_hook(code: int, data: bytes) -> Any:
    if code == EXT_BIGINT:
        return int.from_bytes(data, "big", signed=True)
    if code == EXT_SURROGATE_STR:
        return data.decode("utf-8", "surrogatepass")
    raise ValueError(f"unknown msgpack ext type {code}")


def unpack(data: bytes) -> Any:
    """The one value in ``data``."""
    if _msgpack is not None:
        return _msgpack.unpackb(
            data, raw=False, strict_map_key=False, use_list=True, ext_hook=_ext_hook
        )
    return _pure.unpackb(data, ext_hook=_ext_hook)


class Unpacker:
    """Streaming decoder of the value model: ``feed(bytes)``, then iterate."""

    def __init__(self) -> None:
        if _msgpack is not None:
            self._impl: Any = _msgpack.Unpacker(
                raw=False,
                strict_map_key=False,
                use_list=True,
                ext_hook=_ext_hook,
                max_buffer_size=1 << 31,
            )
        else:
            self._impl = _pure.Unpacker(ext_hook=_ext_hook, max_buffer_size=1 << 31)

    def feed(self, data: bytes) -> None:
        self._impl.feed(data)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._impl)
