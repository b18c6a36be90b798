"""Homegear binary RPC values: plain functions, no I/O.

Every value is a big-endian i32 type tag and a payload (``/work/shared/specs`` section 8):

=========  ======  ===========================================================
Void       0x00    nothing
Integer    0x01    i32 (decoded; hadaemon always encodes Integer64)
Boolean    0x02    one byte
String     0x03    i32 length + UTF-8 bytes
Float      0x04    i32 mantissa, i32 exponent: mantissa / 2**30 * 2**exponent
Base64     0x11    as String
Binary     0xD0    i32 length + bytes
Integer64  0xD1    i64
Array      0x100   i32 count + values
Struct     0x101   i32 count + (i32 length + key bytes + value) each
=========  ======  ===========================================================

Floats carry a 30-bit mantissa (about 9 significant digits); NaN, infinities, zero and
subnormals all encode as 0.0 (mantissa = exponent = 0), as the real Homegear does.

Strings decode with ``surrogateescape`` (invalid UTF-8 is kept as lone surrogates and
encodes back to the same bytes). ``lossy=True`` encodes what the real C++ client can
take instead of refusing it: other lone surrogates become U+FFFD (the client drops a
message that is not valid UTF-8) and int dict keys become their decimal strings (struct
keys are strings; the client makes the same conversion on its side).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Sequence
from typing import Any

VOID = 0x00
INTEGER = 0x01
BOOLEAN = 0x02
STRING = 0x03
FLOAT = 0x04
BASE64 = 0x11
BINARY = 0xD0
INTEGER64 = 0xD1
ARRAY = 0x100
STRUCT = 0x101

_I32 = struct.Struct(">i")
_U32 = struct.Struct(">I")
_I64 = struct.Struct(">q")
_FLOAT = struct.Struct(">ii")
_MANTISSA_SCALE = 1 << 30
_VOID = _I32.pack(VOID)
_STRING = _I32.pack(STRING)
_TRUE = _I32.pack(BOOLEAN) + b"\x01"
_FALSE = _I32.pack(BOOLEAN) + b"\x00"
_INTEGER64 = _I32.pack(INTEGER64)
_FLOAT_TAG = _I32.pack(FLOAT)
_ARRAY = _I32.pack(ARRAY)
_STRUCT = _I32.pack(STRUCT)
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
MAX_DEPTH = 100


class BinRpcError(ValueError):
    """Bytes that are not valid Homegear binary RPC, or a value it cannot carry."""


class Base64(str):
    """A string sent with the Base64 type tag (0x11) instead of String."""

    __slots__ = ()


class Integer(int):
    """An int sent with the 32-bit Integer tag (0x01) instead of Integer64.

    Homegear's server sends its packet ids so; every other int goes as Integer64.
    """

    __slots__ = ()


def encode_float(value: float) -> tuple[int, int]:
    """Homegear's (mantissa, exponent) for ``value``."""
    magnitude = abs(value)
    if not math.isfinite(magnitude) or magnitude == 0.0 or magnitude < 2.2250738585072014e-308:
        return 0, 0
    m, e = math.frexp(magnitude)  # 0.5 <= m < 1
    # Round half away from zero (m > 0). Where rounding reaches 2^30 the real encoder
    # keeps it (0x40000000 still fits an i32) rather than renormalising: byte-exact.
    mantissa = math.floor(m * _MANTISSA_SCALE + 0.5)
    return (-mantissa if value < 0 else mantissa), e


def decode_float(mantissa: int, exponent: int) -> float:
    """The float of a (mantissa, exponent) pair; beyond the double range, +/- infinity.

    The largest doubles round up to 2**1024 with a 30-bit mantissa, and a peer may send
    any exponent: neither may crash the decoder.
    """
    try:
        return math.ldexp(mantissa / _MANTISSA_SCALE, exponent)
    except OverflowError:
        return math.copysign(math.inf, mantissa)


def encode_value(value: Any, *, lossy: bool = False) -> bytes:
    """The bytes of one value (type tag included); see the module docstring for
    ``lossy``. A value the wire cannot carry raises :class:`BinRpcError`."""
    out: list[bytes] = []
    _encode(value, out, 0, lossy)
    return b"".join(out)


def _text(value: str, lossy: bool, what: str) -> bytes:
    try:
        return value.encode("utf-8")  # the common case: valid text
    except UnicodeEncodeError:
        pass
    if lossy:
        # Lone surrogates (those surrogateescape cannot map back to bytes as well) become
        # U+FFFD: utf-16 with surrogatepass pairs what can be paired, decoding with
        # "replace" marks the rest.
        return (value.encode("utf-16-le", "surrogatepass")
                .decode("utf-16-le", "replace").encode("utf-8"))
    try:
        return value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError as exc:
        raise BinRpcError(f"{what} holds a lone surrogate ({value[exc.start]!r}), which "
                          "Homegear binary RPC (UTF-8) cannot carry") from None


def _encode(value: Any, out: list[bytes], depth: int, lossy: bool) -> None:
    if depth > MAX_DEPTH:
        raise BinRpcError(f"value nested deeper than {MAX_DEPTH} levels")
    kind = type(value)
    if value is None:
        out.append(_VOID)
    elif kind is str:
        data = _text(value, lossy, "a string")
        out.append(_STRING + _I32.pack(len(data)) + data)
    elif kind is bool:
        out.append(_TRUE if value else _FALSE)
    elif kind is int:
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise BinRpcError(f"integer {value} does not fit in 64 bits")
        out.append(_INTEGER64 + _I64.pack(value))
    elif kind is float:
        out.append(_FLOAT_TAG + _FLOAT.pack(*encode_float(value)))
    elif kind is dict:
        out.append(_STRUCT + _I32.pack(len(value)))
        for key, item in value.items():
            data = _key(key, lossy)
            out.append(_I32.pack(len(data)) + data)
            _encode(item, out, depth + 1, lossy)
    elif kind is list or kind is tuple:
        out.append(_ARRAY + _I32.pack(len(value)))
        for item in value:
            _encode(item, out, depth + 1, lossy)
    elif isinstance(value, Integer):
        if not -(1 << 31) <= value < (1 << 31):
            raise BinRpcError(f"integer {int(value)} does not fit in 32 bits (Integer)")
        out.append(_I32.pack(INTEGER) + _I32.pack(value))
    elif isinstance(value, int):
        _encode(int(value), out, depth, lossy)
    elif isinstance(value, float):
        _encode(float(value), out, depth, lossy)
    elif isinstance(value, str):
        data = _text(value, lossy, "a string")
        tag = _I32.pack(BASE64) if isinstance(value, Base64) else _STRING
        out.append(tag + _I32.pack(len(data)) + data)
    elif isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        out.append(_I32.pack(BINARY) + _I32.pack(len(data)) + data)
    elif isinstance(value, list | tuple):
        _encode(list(value), out, depth, lossy)
    elif isinstance(value, dict):
        _encode(dict(value), out, depth, lossy)
    else:
        raise BinRpcError(f"cannot encode {type(value).__name__} as Homegear binary RPC")


def _key(key: Any, lossy: bool) -> bytes:
    if isinstance(key, str):
        return _text(key, lossy, "a struct key")
    if lossy and isinstance(key, int) and not isinstance(key, bool):
        return str(int(key)).encode()
    raise BinRpcError(f"struct keys are strings, got {type(key).__name__} {key!r}")


def encoded_array(items: Sequence[bytes]) -> bytes:
    """An Array of values already encoded (to share an encoding between packets)."""
    return _ARRAY + _I32.pack(len(items)) + b"".join(items)


class Reader:
    """Reads values from a complete body; every read is bounds-checked."""

    def __init__(self, data: bytes | memoryview, offset: int = 0, *, plain: bool = False) -> None:
        self.data = memoryview(data)
        self.offset = offset
        self._decoders = _PLAIN_DECODERS if plain else _DECODERS

    def _take(self, n: int) -> memoryview:
        if n < 0 or self.offset + n > len(self.data):
            raise BinRpcError(
                f"truncated: needed {n} byte(s) at offset {self.offset}, "
                f"{len(self.data) - self.offset} left"
            )
        chunk = self.data[self.offset:self.offset + n]
        self.offset += n
        return chunk

    def i32(self) -> int:
        value: int = _I32.unpack(self._take(4))[0]
        return value

    def u32(self) -> int:
        value: int = _U32.unpack(self._take(4))[0]
        return value

    def length(self, what: str) -> int:
        n = self.i32()
        if n < 0:
            raise BinRpcError(f"negative {what} length {n} at offset {self.offset - 4}")
        return n

    def string(self) -> str:
        """A framing string (no type tag): i32 length + UTF-8."""
        return bytes(self._take(self.length("string"))).decode("utf-8", "surrogateescape")

    def value(self, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            raise BinRpcError(f"value nested deeper than {MAX_DEPTH} levels")
        at = self.offset
        tag = self.i32()
        decoder = self._decoders.get(tag)
        if decoder is None:
            raise BinRpcError(f"unknown value type 0x{tag & 0xFFFFFFFF:x} at offset {at}")
        return decoder(self, depth)

    def at_end(self) -> bool:
        return self.offset == len(self.data)


def _array(r: Reader, depth: int) -> list[Any]:
    count = r.length("array")
    if count > len(r.data) - r.offset:  # each value takes at least 4 bytes: cheap sanity
        raise BinRpcError(f"array of {count} items cannot fit in the packet")
    return [r.value(depth + 1) for _ in range(count)]


def _struct(r: Reader, depth: int) -> dict[str, Any]:
    count = r.length("struct")
    if count > len(r.data) - r.offset:
        raise BinRpcError(f"struct of {count} members cannot fit in the packet")
    out: dict[str, Any] = {}
    for _ in range(count):
        key = r.string()
        out[key] = r.value(depth + 1)
    return out


_DECODERS: dict[int, Callable[[Reader, int], Any]] = {
    VOID: lambda r, d: None,
    INTEGER: lambda r, d: r.i32(),
    BOOLEAN: lambda r, d: bytes(r._take(1)) != b"\x00",
    STRING: lambda r, d: r.string(),
    BASE64: lambda r, d: Base64(r.string()),
    FLOAT: lambda r, d: decode_float(r.i32(), r.i32()),
    BINARY: lambda r, d: bytes(r._take(r.length("binary"))),
    INTEGER64: lambda r, d: _I64.unpack(r._take(8))[0],
    ARRAY: _array,
    STRUCT: _struct,
}


_PLAIN_DECODERS = {**_DECODERS, BASE64: lambda r, d: r.string()}
"""Base64 as a plain str: what hadaemon's value model holds (exact types only)."""


def decode_value(data: bytes, *, plain: bool = False) -> Any:
    """Decode exactly one value filling ``data`` (``plain``: Base64 as a plain str)."""
    reader = Reader(data, plain=plain)
    value = reader.value()
    if not reader.at_end():
        raise BinRpcError(f"{len(data) - reader.offset} byte(s) after the value")
    return value


def encode_string(text: str) -> bytes:
    """A framing string (method names, header keys): i32 length + UTF-8, no type tag."""
    data = text.encode("utf-8", "surrogateescape")
    return _I32.pack(len(data)) + data
