"""The value model of hadaemon's node wire, for the node side (no hadaemon import).

The same model, byte for byte, as ``hadaemon/store/values.py`` in the daemon (a test
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

from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from collections.abc import Iterator

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


def _plain_keys(value: Any) -> bool:
    """Every dict key in ``value`` is a str or an int (the C packer takes any key)."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth >= MAX_DEPTH:
            return False  # the model's way raises the right error
        if type(item) is dict:
            for key, child in item.items():
                if type(key) is not str and type(key) is not int:
                    return False
                if type(child) is dict or type(child) is list:
                    stack.append((child, depth + 1))
        else:
            for child in item:
                if type(child) is dict or type(child) is list:
                    stack.append((child, depth + 1))
    return True


def pack(value: Any) -> bytes:
    """The msgpack bytes of ``value`` in the value model."""
    if _msgpack is not None and (
        (type(value) is not dict and type(value) is not list) or _plain_keys(value)
    ):
        # The C packer with exact types gives the same bytes for everything it takes;
        # ints beyond 64 bits, lone surrogates, tuples and anything else take the
        # model's way below (which converts or refuses them).
        try:
            fast: bytes = _msgpack.packb(value, use_bin_type=True, strict_types=True,
                                         default=_not_plain)
        except (_NotPlain, OverflowError, UnicodeEncodeError, ValueError):
            pass
        else:
            return fast
    prepared = _prepare(value, 0)
    if _msgpack is not None:
        data: bytes = _msgpack.packb(prepared, use_bin_type=True, use_single_float=False)
        return data
    return _pure.packb(prepared)


_RESPONSE_HEAD = b"\x94\x01"  # msgpack-rpc response: array(4), type 1


def pack_ok(msgid: int) -> bytes:
    """``[1, msgid, None, None]``: the answer to a nodeInput that returned nothing."""
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
