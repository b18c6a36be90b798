"""Homegear binary RPC as libhomegear-ipc encodes and decodes it, for the test client.

Written from the spec (``/work/shared/specs/homegear-nodes.md`` section 8) and the real
client's code, independently of ``hadaemon.binrpc``: the end-to-end tests check hadaemon's
codec against this one, not against itself. Standard library only.

Conversions as the real module (``PythonVariableConverter``) makes them:

- Python to wire: every int is an Integer64 (an int beyond 64 bits becomes -1, as
  ``PyLong_AsLongLong`` fails), a str that is not valid UTF-8 (lone surrogates) an empty
  String, a dict key its string (``str(key)``), a tuple an Array, anything unknown Void.
- wire to Python: a String (or Base64) is cut at its first NUL, Binary too (both go
  through C strings); a String that is not valid UTF-8 cannot be converted at all and
  raises :class:`Undecodable` (the real module then drops the whole message).
"""

import math
import struct

VOID, INTEGER, BOOLEAN, STRING, FLOAT = 0x00, 0x01, 0x02, 0x03, 0x04
BASE64, BINARY, INTEGER64, ARRAY, STRUCT = 0x11, 0xD0, 0xD1, 0x100, 0x101
I32 = struct.Struct(">i")
U32 = struct.Struct(">I")
I64 = struct.Struct(">q")


class Undecodable(ValueError):
    """A value the real module cannot turn into Python (invalid UTF-8)."""


class Int32(int):
    """An int to send with the 32-bit Integer tag (as Homegear's server does)."""


def encode_float(value):
    """(mantissa, exponent): value = mantissa / 2**30 * 2**exponent."""
    magnitude = abs(value)
    if magnitude == 0 or math.isnan(magnitude) or math.isinf(magnitude) \
            or magnitude < 2.2250738585072014e-308:
        return 0, 0
    mantissa, exponent = math.frexp(magnitude)  # 0.5 <= mantissa < 1
    scaled = int(mantissa * (1 << 30) + 0.5)  # half away from zero; 2**30 is kept as is
    return (-scaled if value < 0 else scaled), exponent


def encode(value):
    """One value, type tag included."""
    if value is None:
        return I32.pack(VOID)
    if isinstance(value, bool):
        return I32.pack(BOOLEAN) + (b"\x01" if value else b"\x00")
    if isinstance(value, Int32):
        return I32.pack(INTEGER) + I32.pack(value)
    if isinstance(value, int):
        if not -(1 << 63) <= value < (1 << 63):
            value = -1
        return I32.pack(INTEGER64) + I64.pack(value)
    if isinstance(value, float):
        return I32.pack(FLOAT) + struct.pack(">ii", *encode_float(value))
    if isinstance(value, str):
        try:
            data = value.encode("utf-8")
        except UnicodeEncodeError:
            data = b""
        return I32.pack(STRING) + I32.pack(len(data)) + data
    if isinstance(value, bytes | bytearray):
        return I32.pack(BINARY) + I32.pack(len(value)) + bytes(value)
    if isinstance(value, list | tuple):
        return I32.pack(ARRAY) + I32.pack(len(value)) + b"".join(encode(v) for v in value)
    if isinstance(value, dict):
        out = [I32.pack(STRUCT), I32.pack(len(value))]
        for key, item in value.items():
            name = key if isinstance(key, str) else str(key)
            data = name.encode("utf-8", "replace")
            out.append(I32.pack(len(data)) + data + encode(item))
        return b"".join(out)
    return I32.pack(VOID)


def framing_string(text):
    data = text.encode("utf-8")
    return I32.pack(len(data)) + data


def request(method, params):
    body = framing_string(method) + I32.pack(len(params)) + b"".join(encode(p) for p in params)
    return b"Bin\x00" + U32.pack(len(body)) + body


def response(value):
    body = encode(value)
    return b"Bin\x01" + U32.pack(len(body)) + body


class Reader:
    def __init__(self, data, raw_strings=False):
        self.data = data
        self.at = 0
        self.raw_strings = raw_strings

    def take(self, n):
        if n < 0 or self.at + n > len(self.data):
            raise ValueError("truncated packet")
        chunk = self.data[self.at:self.at + n]
        self.at += n
        return chunk

    def i32(self):
        return I32.unpack(self.take(4))[0]

    def string(self):
        return self.take(self.i32()).decode("utf-8", "surrogateescape")

    def text(self):
        raw = self.take(self.i32())
        if self.raw_strings:
            return raw.decode("utf-8", "surrogateescape")
        try:
            return raw.split(b"\0", 1)[0].decode("utf-8")  # a C string
        except UnicodeDecodeError:
            raise Undecodable("a string that is not valid UTF-8") from None

    def value(self):
        tag = self.i32()
        if tag == VOID:
            return None
        if tag == INTEGER:
            return self.i32()
        if tag == INTEGER64:
            return I64.unpack(self.take(8))[0]
        if tag == BOOLEAN:
            return self.take(1) != b"\x00"
        if tag in (STRING, BASE64):
            return self.text()
        if tag == BINARY:
            data = self.take(self.i32())
            return data if self.raw_strings else data.split(b"\0", 1)[0]
        if tag == FLOAT:
            mantissa, exponent = self.i32(), self.i32()
            return math.ldexp(mantissa / (1 << 30), exponent)
        if tag == ARRAY:
            return [self.value() for _ in range(self.i32())]
        if tag == STRUCT:
            out = {}
            for _ in range(self.i32()):
                key = self.string()
                out[key] = self.value()
            return out
        raise ValueError(f"unknown type 0x{tag:x}")


def parse(flag, body, raw_strings=False):
    """("request", method, params) or ("response", value)."""
    reader = Reader(body, raw_strings)
    if flag & 0x0F == 0x00:
        method = reader.string()
        return ("request", method, [reader.value() for _ in range(reader.i32())])
    return ("response", reader.value())


class Stream:
    """Splits a byte stream into packets: ``(flag, body, raw packet bytes)``."""

    def __init__(self):
        self.buffer = b""

    def feed(self, data):
        self.buffer += data
        packets = []
        while len(self.buffer) >= 8:
            if self.buffer[:3] != b"Bin":
                raise ValueError(f"not binary RPC: {self.buffer[:8]!r}")
            flag = self.buffer[3]
            size = U32.unpack(self.buffer[4:8])[0]
            if flag & 0x40:  # a header block first; only Authorization is ever read
                if len(self.buffer) < 12 + size:
                    break
                data_size = U32.unpack(self.buffer[8 + size:12 + size])[0]
                end = 12 + size + data_size
                start = 12 + size
            else:
                end = 8 + size
                start = 8
            if len(self.buffer) < end:
                break
            packets.append((flag, self.buffer[start:end], self.buffer[:end]))
            self.buffer = self.buffer[end:]
        return packets
