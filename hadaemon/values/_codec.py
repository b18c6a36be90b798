"""The value model's msgpack form: ``pack``, ``unpack`` and a streaming unpacker.

Used by the state store and the node wire, so it is plain functions without I/O (and no
Twisted). A value is built from exactly these types and comes back equal and of the same
type:

==================  ======================================================================
Python              msgpack
==================  ======================================================================
``None``            nil
``bool``            true / false
``int``             int when it fits in 64 bits (-2**63 .. 2**64-1), else ext 1
                    (big-endian two's complement, the fewest bytes that hold the sign)
``float``           float 64 (every bit kept: NaN payloads, -0.0, +/-inf)
``str``             str (UTF-8); ext 2 (UTF-8 with 'surrogatepass') when it holds lone
                    surrogates, which plain msgpack str (valid UTF-8 only) cannot carry
``bytes``           bin
``list``            array (a ``tuple`` is stored as an array too: it comes back a list)
``dict``            map; keys must be ``str`` or ``int`` (same encodings as above)
==================  ======================================================================

Types are checked exactly, not with ``isinstance``: an ``IntEnum`` or a ``str`` subclass
would come back as a plain ``int``/``str``, so it is refused instead of silently changing
type. Anything else raises :class:`UnsupportedValue` (a ``TypeError``) that names the type
and where it sits, e.g. ``unsupported type set at [2]['a']``. Nesting is limited to
:data:`MAX_DEPTH` levels, which also catches a value that contains itself.
"""

from __future__ import annotations

from typing import Any

import msgpack

EXT_BIGINT = 1
"""Ext type code of an int outside msgpack's 64-bit range."""

EXT_SURROGATE_STR = 2
"""Ext type code of a str with lone surrogates (UTF-8 encoded with 'surrogatepass')."""

MAX_DEPTH = 256
"""Deepest nesting of lists/dicts accepted (msgpack's packer stops at 512 anyway)."""

_INT_MIN = -(1 << 63)
_INT_MAX = (1 << 64) - 1

PathSegment = int | str
"""One step into a value: a list index, or a dict key (``str`` or ``int``)."""


class UnsupportedValue(TypeError):
    """A value outside the value model; ``path`` says where (list indexes and dict keys)."""

    def __init__(self, type_name: str, reason: str | None = None) -> None:
        self.type_name = type_name
        self.reason = reason
        self.path: list[tuple[str, PathSegment]] = []
        super().__init__(type_name)

    def describe(self, *, redact_keys: bool = False) -> str:
        """The message; ``redact_keys`` hides dict keys, which may be secret data."""
        what = self.reason or f"unsupported type {self.type_name}"
        if not self.path:
            return what
        return f"{what} at {format_path(self.path, redact_keys=redact_keys)}"

    def __str__(self) -> str:
        return self.describe()


def format_path(path: list[tuple[str, PathSegment]], *, redact_keys: bool = False) -> str:
    """``[2]['a']``-style path; with ``redact_keys`` dict keys show as ``[<key>]``."""
    parts = []
    for kind, segment in path:
        if kind == "key" and redact_keys:
            parts.append("[<key>]")
        else:
            parts.append(f"[{segment!r}]")
    return "".join(parts)


def _prepare_str(value: str) -> str | msgpack.ExtType:
    if value.isascii():
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return msgpack.ExtType(EXT_SURROGATE_STR, value.encode("utf-8", "surrogatepass"))
    return value


def _prepare_int(value: int) -> int | msgpack.ExtType:
    if _INT_MIN <= value <= _INT_MAX:
        return value
    # One extra bit for the sign: the fewest bytes whose two's complement holds the value.
    length = (value.bit_length() + 8) // 8
    return msgpack.ExtType(EXT_BIGINT, value.to_bytes(length, "big", signed=True))


def _prepare_key(key: object) -> object:
    kind = type(key)
    if kind is str:
        return _prepare_str(key)  # type: ignore[arg-type]
    if kind is int:
        return _prepare_int(key)  # type: ignore[arg-type]
    raise UnsupportedValue(kind.__name__, f"unsupported dict key type {kind.__name__}")


def _prepare(value: object, depth: int) -> object:
    # Returns a tree msgpack packs natively (ExtType for what it cannot carry). The path of
    # a bad value is collected while the exception unwinds, so the common case pays nothing.
    kind = type(value)
    if value is None or kind is bool or kind is float or kind is bytes:
        return value
    if kind is str:
        return _prepare_str(value)  # type: ignore[arg-type]
    if kind is int:
        return _prepare_int(value)  # type: ignore[arg-type]
    if kind is list or kind is tuple:
        if depth >= MAX_DEPTH:
            raise UnsupportedValue(kind.__name__, _too_deep())
        items: list[object] = []
        index = 0
        sequence: list[object] | tuple[object, ...] = value  # type: ignore[assignment]
        try:
            for index, item in enumerate(sequence):  # noqa: B007
                items.append(_prepare(item, depth + 1))
        except UnsupportedValue as exc:
            exc.path.insert(0, ("index", index))
            raise
        return items
    if kind is dict:
        if depth >= MAX_DEPTH:
            raise UnsupportedValue("dict", _too_deep())
        mapping: dict[object, object] = {}
        key: object = None
        try:
            for key, item in value.items():  # type: ignore[attr-defined]
                mapping[_prepare_key(key)] = _prepare(item, depth + 1)
        except UnsupportedValue as exc:
            if type(key) in (str, int):
                exc.path.insert(0, ("key", key))  # type: ignore[arg-type]
            raise
        return mapping
    raise UnsupportedValue(kind.__name__)


def _too_deep() -> str:
    return f"nested deeper than {MAX_DEPTH} levels (does the value contain itself?)"


def pack(value: Any) -> bytes:
    """The msgpack bytes of ``value``; :class:`UnsupportedValue` outside the value model."""
    prepared = _prepare(value, 0)
    return msgpack.packb(prepared, use_bin_type=True, use_single_float=False)  # type: ignore[no-any-return]


def _ext_hook(code: int, data: bytes) -> object:
    if code == EXT_BIGINT:
        return int.from_bytes(data, "big", signed=True)
    if code == EXT_SURROGATE_STR:
        return data.decode("utf-8", "surrogatepass")
    # Unknown codes mean damaged data or a newer writer: refusing beats a silent ExtType.
    raise ValueError(f"unknown msgpack ext type {code}")


_UNPACK_OPTIONS: dict[str, Any] = {
    "raw": False,
    "strict_map_key": False,
    "use_list": True,
    "ext_hook": _ext_hook,
}


def unpack(data: bytes) -> Any:
    """The value packed in ``data`` (exactly one msgpack object; extra bytes are an error)."""
    return msgpack.unpackb(data, **_UNPACK_OPTIONS)


def make_unpacker(**kw: Any) -> msgpack.Unpacker:
    """A streaming ``msgpack.Unpacker`` decoding the value model (for pipes and sockets).

    ``kw`` goes to ``msgpack.Unpacker`` (``file_like``, ``max_buffer_size``, ...); the
    options that define the value model (``raw``, ``strict_map_key``, ``use_list``,
    ``ext_hook``) are fixed and may not be passed.
    """
    fixed = sorted(set(kw) & set(_UNPACK_OPTIONS))
    if fixed:
        raise TypeError(f"make_unpacker: {', '.join(fixed)} is fixed by the value model")
    return msgpack.Unpacker(**_UNPACK_OPTIONS, **kw)
