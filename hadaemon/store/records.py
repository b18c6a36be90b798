"""Framing of the store's append-only log: header, records, and an incremental decoder.

Pure functions without I/O, so the format can be tested byte by byte (see docs/store.md)::

    file    = HEADER record*
    HEADER  = b"HADSTORE" 0x00 0x01           (magic, format version 1: 10 bytes)
    record  = length:u32be crc:u32be payload  (crc32 of the payload; 8 + length bytes)
    payload = msgpack [op, key, value] in the value model of :mod:`hadaemon.store.values`:
              [1, key, bin]                   put: bin is the packed value
              [2, key, nil]                   delete
              [3, nil, [[key, bin|nil], ...]] batch of puts (bin) and deletes (nil),
                                              applied all or nothing

A record is valid only as a whole (length in range, crc matches, payload decodes to one of
the shapes above). Everything from the first invalid record on is a damaged tail: after a
crash it is a torn last write; a valid record can never follow an invalid one, since the
store truncates the log at the first bad record before appending again.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from typing import NamedTuple

from hadaemon.store import values

MAGIC = b"HADSTORE"
VERSION = 1
HEADER = MAGIC + VERSION.to_bytes(2, "big")
HEADER_SIZE = len(HEADER)

OP_PUT = 1
OP_DELETE = 2
OP_BATCH = 3

FRAME = struct.Struct(">II")
FRAME_SIZE = FRAME.size

MAX_PAYLOAD = 1 << 30
"""Largest payload accepted; a bigger length field is damage, not a huge record."""

Change = tuple[str, bytes | None]
"""One change to a key: its new packed value, or None for a delete."""


class FormatError(ValueError):
    """The file is not a store log of a version this code reads."""


class Record(NamedTuple):
    """A decoded record: where it sits in the file and the changes it carries, in order."""

    offset: int
    size: int
    changes: list[Change]


class DecodeError(NamedTuple):
    """Where the damaged tail starts and why (never quotes data: it may be secret)."""

    offset: int
    reason: str


def frame(payload: bytes) -> bytes:
    """Length and crc32 in front of ``payload``."""
    if not 0 < len(payload) <= MAX_PAYLOAD:
        raise ValueError(f"record payload of {len(payload)} bytes (limit {MAX_PAYLOAD})")
    return FRAME.pack(len(payload), zlib.crc32(payload)) + payload


def encode_put(key: str, packed: bytes) -> bytes:
    """A framed put record; ``packed`` is the value already packed with ``values.pack``."""
    return frame(values.pack([OP_PUT, key, packed]))


def encode_delete(key: str) -> bytes:
    """A framed delete record."""
    return frame(values.pack([OP_DELETE, key, None]))


def encode_batch(changes: Sequence[Change]) -> bytes:
    """One framed record for many changes: its crc makes them land all or nothing."""
    return frame(values.pack([OP_BATCH, None, [[key, packed] for key, packed in changes]]))


def check_header(data: bytes) -> bool:
    """True for a complete valid header; False when ``data`` is a (possibly empty) prefix
    of one, i.e. a file whose creation was cut short; :class:`FormatError` otherwise."""
    if len(data) < HEADER_SIZE:
        if HEADER.startswith(data):
            return False
        raise FormatError("not a hadaemon store file (bad magic)")
    if data[: len(MAGIC)] != MAGIC:
        raise FormatError("not a hadaemon store file (bad magic)")
    version = int.from_bytes(data[len(MAGIC) : HEADER_SIZE], "big")
    if version != VERSION:
        raise FormatError(f"store format version {version} is not supported (only {VERSION})")
    return True


def _changes(payload: bytes) -> list[Change]:
    decoded = values.unpack(payload)
    if type(decoded) is not list or len(decoded) != 3:
        raise ValueError("payload is not [op, key, value]")
    op, key, value = decoded
    if op == OP_PUT and type(key) is str and type(value) is bytes:
        return [(key, value)]
    if op == OP_DELETE and type(key) is str and value is None:
        return [(key, None)]
    if op == OP_BATCH and key is None and type(value) is list:
        changes: list[Change] = []
        for item in value:
            if (
                type(item) is not list
                or len(item) != 2
                or type(item[0]) is not str
                or not (item[1] is None or type(item[1]) is bytes)
            ):
                raise ValueError("bad batch entry")
            changes.append((item[0], item[1]))
        return changes
    raise ValueError("unknown op or bad field types")


class RecordDecoder:
    """Decodes records from bytes fed in any chunking; stops at the first damaged one.

    ``offset`` is the file offset just past the last good record: where the damaged tail
    starts if there is one, and where the file may be truncated to.
    """

    def __init__(self, offset: int = HEADER_SIZE) -> None:
        self.offset = offset
        self.error: DecodeError | None = None
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Record]:
        """The records completed by ``data`` (none once an error was found)."""
        if self.error is not None:
            return []
        buffer = self._buffer
        buffer += data
        records: list[Record] = []
        pos = 0
        while len(buffer) - pos >= FRAME_SIZE:
            length, crc = FRAME.unpack_from(buffer, pos)
            if not 0 < length <= MAX_PAYLOAD:
                self.error = DecodeError(self.offset, f"bad length {length}")
                break
            end = pos + FRAME_SIZE + length
            if end > len(buffer):
                break  # incomplete: wait for more (or finish() calls it truncated)
            payload = bytes(buffer[pos + FRAME_SIZE : end])
            if zlib.crc32(payload) != crc:
                self.error = DecodeError(self.offset, "crc mismatch")
                break
            try:
                changes = _changes(payload)
            except Exception as exc:
                # msgpack raises a handful of types on odd input; the crc matched, so this
                # is a writer bug or a newer format, reported like damage. Only the type is
                # named: a decoder message could quote (secret) bytes.
                self.error = DecodeError(self.offset, f"undecodable payload ({type(exc).__name__})")
                break
            records.append(Record(self.offset, end - pos, changes))
            self.offset += end - pos
            pos = end
        del buffer[:pos]
        if self.error is not None:
            buffer.clear()
        return records

    def finish(self) -> DecodeError | None:
        """End of input: leftover bytes are a truncated record. Returns the error, if any."""
        if self.error is None and self._buffer:
            self.error = DecodeError(self.offset, "truncated record")
            self._buffer.clear()
        return self.error
