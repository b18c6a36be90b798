"""Homegear binary RPC packets: framing and an incremental decoder, no I/O.

``b"Bin"``, a flag byte (0x00 request, 0x01 response; 0x40 / 0x41 the same with a header
block), a big-endian u32 length of the rest, then the body. With a header block the length
is the header's, followed by the header, a u32 data length and the data. A request body
is a method name (framing string), an i32 parameter count and the parameters; a response
body is one value. Faults are responses holding ``{faultCode, faultString}`` (always flag
0x01, never Homegear's old 0xFF).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hadaemon.binrpc.values import (
    BinRpcError,
    Reader,
    encode_string,
    encode_value,
)

MAGIC = b"Bin"
REQUEST = 0x00
RESPONSE = 0x01
HEADER_FLAG = 0x40
MAX_DATA = 100 * 1024 * 1024
MAX_HEADER = 10 * 1024 * 1024

_U32 = struct.Struct(">I")
_I32 = struct.Struct(">i")


@dataclass(frozen=True)
class Request:
    method: str
    params: list[Any]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Response:
    value: Any
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def is_fault(self) -> bool:
        return isinstance(self.value, dict) and set(self.value) == {"faultCode", "faultString"}


Packet = Request | Response


def encode_request(method: str, params: list[Any], *, lossy: bool = False) -> bytes:
    """A request packet (``lossy``: see :mod:`hadaemon.binrpc.values`)."""
    return encode_request_encoded(method, [encode_value(p, lossy=lossy) for p in params])


def encode_request_encoded(method: str, params: Sequence[bytes]) -> bytes:
    """A request whose parameters are already encoded values (an encoding shared by
    many packets is made once)."""
    return _frame(REQUEST, encode_string(method) + _I32.pack(len(params)) + b"".join(params))


def encode_response(value: Any, *, lossy: bool = False) -> bytes:
    """A response packet (``lossy``: see :mod:`hadaemon.binrpc.values`)."""
    return _frame(RESPONSE, encode_value(value, lossy=lossy))


def encode_fault(code: int, message: str) -> bytes:
    """A fault response: exactly the two keys, code first, sent as a normal response."""
    return encode_response({"faultCode": code, "faultString": message})


def _frame(flag: int, body: bytes) -> bytes:
    if len(body) > MAX_DATA:
        raise BinRpcError(f"packet of {len(body)} bytes exceeds the {MAX_DATA >> 20} MiB limit")
    return MAGIC + bytes([flag]) + _U32.pack(len(body)) + body


def encode_with_headers(flag: int, headers: dict[str, str], body: bytes) -> bytes:
    """A packet with a header block (what some clients send; the real one only parses it)."""
    block = _U32.pack(len(headers)) + b"".join(
        encode_string(k) + encode_string(v) for k, v in headers.items()
    )
    return (MAGIC + bytes([flag | HEADER_FLAG]) + _U32.pack(len(block)) + block
            + _U32.pack(len(body)) + body)


def parse_body(
    flag: int, body: bytes, headers: dict[str, str] | None = None, *, plain: bool = False
) -> Packet:
    """Decode one packet's body (``plain``: Base64 values as plain str)."""
    reader = Reader(body, plain=plain)
    if flag & ~HEADER_FLAG == REQUEST:
        method = reader.string()
        count = reader.length("parameter list")
        if count > len(body):
            raise BinRpcError(f"{count} parameters cannot fit in a {len(body)}-byte body")
        params = [reader.value() for _ in range(count)]
        packet: Packet = Request(method, params, headers or {})
    else:
        packet = Response(reader.value(), headers or {})
    if not reader.at_end():
        raise BinRpcError(f"{len(body) - reader.offset} unexpected byte(s) after the body")
    return packet


class Decoder:
    """Incremental decoder: feed bytes split anywhere, get whole packets.

    Sizes are checked as soon as a length is read, so an oversized or malformed packet is
    refused before its body is buffered. After an error the stream cannot be resynced:
    close the connection. ``plain`` decodes Base64 values as plain str.
    """

    def __init__(
        self, max_data: int = MAX_DATA, max_header: int = MAX_HEADER, *, plain: bool = False
    ) -> None:
        self._buffer = bytearray()
        self.max_data = max_data
        self.max_header = max_header
        self.plain = plain

    @property
    def buffered(self) -> int:
        """Bytes of an unfinished packet held."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Packet]:
        self._buffer += data
        packets: list[Packet] = []
        while True:
            packet = self._next()
            if packet is None:
                return packets
            packets.append(packet)

    def _next(self) -> Packet | None:
        buf = self._buffer
        if len(buf) < 3:
            if not MAGIC.startswith(bytes(buf)):
                raise BinRpcError(f"not a Homegear binary RPC packet: starts with {bytes(buf)!r}")
            return None
        if buf[:3] != MAGIC:
            raise BinRpcError(f"not a Homegear binary RPC packet: starts with {bytes(buf[:8])!r}")
        if len(buf) < 8:
            return None
        flag = buf[3]
        if flag & ~HEADER_FLAG not in (REQUEST, RESPONSE):
            raise BinRpcError(f"unknown packet type 0x{flag:02x}")
        size = _U32.unpack_from(buf, 4)[0]
        if not flag & HEADER_FLAG:
            self._check(size, self.max_data, "data")
            if len(buf) < 8 + size:
                return None
            body = bytes(buf[8:8 + size])
            del buf[:8 + size]
            return parse_body(flag, body, plain=self.plain)
        self._check(size, self.max_header, "header")
        if len(buf) < 8 + size + 4:
            return None
        data_size = _U32.unpack_from(buf, 8 + size)[0]
        self._check(data_size, self.max_data, "data")
        end = 12 + size + data_size
        if len(buf) < end:
            return None
        headers = _parse_headers(bytes(buf[8:8 + size]))
        body = bytes(buf[12 + size:end])
        del buf[:end]
        return parse_body(flag, body, headers, plain=self.plain)

    @staticmethod
    def _check(size: int, limit: int, what: str) -> None:
        if size == 0:
            raise BinRpcError(f"invalid packet: {what} length 0")
        if size > limit:
            shown = (f"the {limit >> 20} MiB limit" if limit % (1 << 20) == 0
                     else f"the limit of {limit} bytes")
            raise BinRpcError(f"packet {what} of {size} bytes exceeds {shown}")


def _parse_headers(block: bytes) -> dict[str, str]:
    reader = Reader(block)
    count = reader.u32()
    if count > len(block):
        raise BinRpcError(f"{count} headers cannot fit in a {len(block)}-byte header block")
    headers = {}
    for _ in range(count):
        key = reader.string()
        headers[key] = reader.string()
    return headers
