"""A small pure-Python msgpack codec: the fallback when the C ``msgpack`` is missing.

A node may run under a Python without hadaemon's dependencies, so the ``homegear`` client
carries this. It writes exactly the bytes ``msgpack.packb(obj, use_bin_type=True)`` writes
(the smallest encoding of each item, unsigned formats for positive integers, float 64) and
reads every msgpack format. Extension types come and go as :class:`ExtType`; the value
model on top (which Python types, which ext codes) lives in ``_homegear_values``.

Python 3.7+, standard library only.
"""

from __future__ import annotations

import collections
import struct

TYPE_CHECKING = False  # typing is not imported at run time (a node's memory)
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Any, NamedTuple

    class ExtType(NamedTuple):
        """An extension value: an application-defined type code and its bytes."""

        code: int
        data: bytes
else:
    ExtType = collections.namedtuple("ExtType", ["code", "data"])
    ExtType.__doc__ = "An extension value: an application-defined type code and its bytes."


class FormatError(ValueError):
    """The bytes are not msgpack."""


class BufferFull(ValueError):
    """More bytes are buffered than the unpacker's limit allows."""


class _Incomplete(Exception):
    """Not enough bytes yet (streaming: wait for more)."""


_pack_double = struct.Struct(">Bd").pack
_S8 = struct.Struct(">b")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")
_F32 = struct.Struct(">f")
_F64 = struct.Struct(">d")


def _pack_int(value: int, out: list[bytes]) -> None:
    if 0 <= value < 128:
        out.append(bytes((value,)))
    elif -32 <= value < 0:
        out.append(bytes((value & 0xFF,)))
    elif value > 0:
        if value < 0x100:
            out.append(b"\xcc" + bytes((value,)))
        elif value < 0x10000:
            out.append(b"\xcd" + _U16.pack(value))
        elif value < 0x100000000:
            out.append(b"\xce" + _U32.pack(value))
        elif value < 0x10000000000000000:
            out.append(b"\xcf" + _U64.pack(value))
        else:
            raise OverflowError("int too big for msgpack")
    elif value >= -0x80:
        out.append(b"\xd0" + _S8.pack(value))
    elif value >= -0x8000:
        out.append(b"\xd1" + _I16.pack(value))
    elif value >= -0x80000000:
        out.append(b"\xd2" + _I32.pack(value))
    elif value >= -0x8000000000000000:
        out.append(b"\xd3" + _I64.pack(value))
    else:
        raise OverflowError("int too big for msgpack")


def _pack_length(n: int, fix: int | None, fix_limit: int, codes: bytes, out: list[bytes]) -> None:
    # codes: the 8-, 16- and 32-bit length formats (0 where a format does not exist).
    if fix is not None and n < fix_limit:
        out.append(bytes((fix | n,)))
    elif n < 0x100 and codes[0]:
        out.append(bytes((codes[0], n)))
    elif n < 0x10000:
        out.append(bytes((codes[1],)) + _U16.pack(n))
    elif n < 0x100000000:
        out.append(bytes((codes[2],)) + _U32.pack(n))
    else:
        raise ValueError("object too large for msgpack")


_STR_CODES = bytes((0xD9, 0xDA, 0xDB))
_BIN_CODES = bytes((0xC4, 0xC5, 0xC6))
_ARRAY_CODES = bytes((0, 0xDC, 0xDD))
_MAP_CODES = bytes((0, 0xDE, 0xDF))
_FIXEXT = {1: 0xD4, 2: 0xD5, 4: 0xD6, 8: 0xD7, 16: 0xD8}


def _pack(obj: Any, out: list[bytes]) -> None:
    kind = type(obj)
    if obj is None:
        out.append(b"\xc0")
    elif kind is bool:
        out.append(b"\xc3" if obj else b"\xc2")
    elif kind is int:
        _pack_int(obj, out)
    elif kind is float:
        out.append(_pack_double(0xCB, obj))
    elif kind is str:
        data = obj.encode("utf-8")
        _pack_length(len(data), 0xA0, 32, _STR_CODES, out)
        out.append(data)
    elif kind is bytes:
        _pack_length(len(obj), None, 0, _BIN_CODES, out)
        out.append(obj)
    elif kind is list or kind is tuple:
        _pack_length(len(obj), 0x90, 16, _ARRAY_CODES, out)
        for item in obj:
            _pack(item, out)
    elif kind is dict:
        _pack_length(len(obj), 0x80, 16, _MAP_CODES, out)
        for key, item in obj.items():
            _pack(key, out)
            _pack(item, out)
    elif kind is ExtType:
        code, data = obj
        size = len(data)
        if size in _FIXEXT:
            out.append(bytes((_FIXEXT[size],)))
        elif size < 0x100:
            out.append(bytes((0xC7, size)))
        elif size < 0x10000:
            out.append(b"\xc8" + _U16.pack(size))
        else:
            out.append(b"\xc9" + _U32.pack(size))
        out.append(_S8.pack(code))
        out.append(data)
    else:
        raise TypeError(f"can not serialize {kind.__name__!r} object")


def packb(obj: Any) -> bytes:
    """msgpack bytes of ``obj`` (None, bool, int, float, str, bytes, list, dict, ExtType)."""
    out: list[bytes] = []
    _pack(obj, out)
    return b"".join(out)


class Unpacker:
    """Streaming decoder: ``feed(bytes)``, then iterate for every complete object.

    ``ext_hook(code, data)`` turns extension values into Python values; map keys may be
    of any hashable type, strings must be valid UTF-8 (``raw=False`` semantics).
    """

    def __init__(
        self,
        ext_hook: Callable[[int, bytes], Any] = ExtType,
        max_buffer_size: int = 100 * 1024 * 1024,
    ) -> None:
        self._buffer = b""
        self._pos = 0
        self._ext_hook = ext_hook
        self._max = max_buffer_size

    def feed(self, data: bytes) -> None:
        if self._pos:
            self._buffer = self._buffer[self._pos :]
            self._pos = 0
        if len(self._buffer) + len(data) > self._max:
            raise BufferFull(f"more than {self._max} bytes buffered")
        self._buffer += data

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        start = self._pos
        try:
            value, self._pos = self._read(start)
        except _Incomplete:
            self._pos = start
            raise StopIteration from None
        return value

    def _take(self, pos: int, n: int) -> tuple[bytes, int]:
        end = pos + n
        if end > len(self._buffer):
            raise _Incomplete
        return self._buffer[pos:end], end

    def _read(self, pos: int) -> tuple[Any, int]:
        buf = self._buffer
        if pos >= len(buf):
            raise _Incomplete
        b = buf[pos]
        pos += 1
        if b <= 0x7F:
            return b, pos
        if b >= 0xE0:
            return b - 0x100, pos
        if 0xA0 <= b <= 0xBF:
            data, pos = self._take(pos, b & 0x1F)
            return self._text(data), pos
        if 0x90 <= b <= 0x9F:
            return self._array(pos, b & 0x0F)
        if 0x80 <= b <= 0x8F:
            return self._map(pos, b & 0x0F)
        reader = _READERS.get(b)
        if reader is None:
            raise FormatError(f"invalid msgpack byte 0x{b:02x}")
        return reader(self, pos)

    @staticmethod
    def _text(data: bytes) -> str:
        return data.decode("utf-8")

    def _array(self, pos: int, n: int) -> tuple[Any, int]:
        items = []
        for _ in range(n):
            item, pos = self._read(pos)
            items.append(item)
        return items, pos

    def _map(self, pos: int, n: int) -> tuple[Any, int]:
        mapping = {}
        for _ in range(n):
            key, pos = self._read(pos)
            value, pos = self._read(pos)
            mapping[key] = value
        return mapping, pos

    def _sized(self, pos: int, width: int) -> tuple[int, int]:
        raw, pos = self._take(pos, width)
        return int.from_bytes(raw, "big"), pos

    def _ext(self, pos: int, size: int) -> tuple[Any, int]:
        raw, pos = self._take(pos, 1 + size)
        return self._ext_hook(_S8.unpack(raw[:1])[0], raw[1:]), pos


def _fixed(fmt: struct.Struct) -> Callable[[Unpacker, int], tuple[Any, int]]:
    def read(self: Unpacker, pos: int) -> tuple[Any, int]:
        raw, pos = self._take(pos, fmt.size)
        return fmt.unpack(raw)[0], pos

    return read


def _string(width: int) -> Callable[[Unpacker, int], tuple[Any, int]]:
    def read(self: Unpacker, pos: int) -> tuple[Any, int]:
        n, pos = self._sized(pos, width)
        data, pos = self._take(pos, n)
        return self._text(data), pos

    return read


def _binary(width: int) -> Callable[[Unpacker, int], tuple[Any, int]]:
    def read(self: Unpacker, pos: int) -> tuple[Any, int]:
        n, pos = self._sized(pos, width)
        return self._take(pos, n)

    return read


def _container(width: int, is_map: bool) -> Callable[[Unpacker, int], tuple[Any, int]]:
    def read(self: Unpacker, pos: int) -> tuple[Any, int]:
        n, pos = self._sized(pos, width)
        return self._map(pos, n) if is_map else self._array(pos, n)

    return read


def _fixext(size: int) -> Callable[[Unpacker, int], tuple[Any, int]]:
    def read(self: Unpacker, pos: int) -> tuple[Any, int]:
        return self._ext(pos, size)

    return read


def _ext(width: int) -> Callable[[Unpacker, int], tuple[Any, int]]:
    def read(self: Unpacker, pos: int) -> tuple[Any, int]:
        n, pos = self._sized(pos, width)
        return self._ext(pos, n)

    return read


def _constant(value: Any) -> Callable[[Unpacker, int], tuple[Any, int]]:
    def read(self: Unpacker, pos: int) -> tuple[Any, int]:
        return value, pos

    return read


_READERS: dict[int, Callable[[Unpacker, int], tuple[Any, int]]] = {
    0xC0: _constant(None),
    0xC2: _constant(False),
    0xC3: _constant(True),
    0xC4: _binary(1),
    0xC5: _binary(2),
    0xC6: _binary(4),
    0xC7: _ext(1),
    0xC8: _ext(2),
    0xC9: _ext(4),
    0xCA: _fixed(_F32),
    0xCB: _fixed(_F64),
    0xCC: _fixed(struct.Struct(">B")),
    0xCD: _fixed(_U16),
    0xCE: _fixed(_U32),
    0xCF: _fixed(_U64),
    0xD0: _fixed(_S8),
    0xD1: _fixed(_I16),
    0xD2: _fixed(_I32),
    0xD3: _fixed(_I64),
    0xD4: _fixext(1),
    0xD5: _fixext(2),
    0xD6: _fixext(4),
    0xD7: _fixext(8),
    0xD8: _fixext(16),
    0xD9: _string(1),
    0xDA: _string(2),
    0xDB: _string(4),
    0xDC: _container(2, False),
    0xDD: _container(4, False),
    0xDE: _container(2, True),
    0xDF: _container(4, True),
}


def unpackb(data: bytes, ext_hook: Callable[[int, bytes], Any] = ExtType) -> Any:
    """The one object in ``data`` (truncated or extra bytes are errors)."""
    unpacker = Unpacker(ext_hook=ext_hook, max_buffer_size=max(len(data), 1))
    unpacker.feed(data)
    try:
        value, end = unpacker._read(0)
    except _Incomplete:
        raise FormatError("truncated msgpack data") from None
    if end != len(data):
        raise FormatError(f"{len(data) - end} extra bytes after the msgpack object")
    return value
