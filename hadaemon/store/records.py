"""Framing of the store's append-only log: header, records, and an incremental decoder.

Pure functions without I/O, so the format can be tested byte by byte (see docs/store.md)::

    file    = HEADER record*
    HEADER  = b"HADSTORE" 0x00 0x02           (magic, format version 2: 10 bytes)
    record  = MARKER length:u32be crc:u32be hcrc:u32be payload     (16 + length bytes)
              MARKER = 0xC1 "REC"; crc = crc32(payload); hcrc = crc32 of the 12 bytes before
    payload = msgpack [op, key, value] in the value model of :mod:`hadaemon.values`:
              [1, key, bin]                   put: bin is the packed value
              [2, key, nil]                   delete
              [3, nil, [[key, bin|nil], ...]] batch of puts (bin) and deletes (nil),
                                              applied all or nothing

Version 1 files (``record = length:u32be crc:u32be payload``, no marker) are still read.

A record is valid only as a whole (marker, header checksum, length in range, crc, and a
payload that decodes to one of the shapes above). Damage does not end the log: the decoder
skips the damaged bytes and resynchronises on the next valid record header. Its header
checksum makes a length it vouches for trustworthy, so a record whose payload alone is
damaged is skipped by its length; a damaged header is skipped by scanning for the marker.
``0xC1`` is never used by msgpack and is invalid UTF-8, so the marker shows up in a payload
only inside binary or numeric data, and then its header checksum must match too. Version 1
has no marker: there everything from the first damaged record on is one damaged tail.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from typing import NamedTuple

from hadaemon import values

MAGIC = b"HADSTORE"
VERSION = 2
VERSIONS = (1, 2)
"""Versions this code reads; it writes only :data:`VERSION`."""
HEADER = MAGIC + VERSION.to_bytes(2, "big")
HEADER_SIZE = len(HEADER)

OP_PUT = 1
OP_DELETE = 2
OP_BATCH = 3

MARKER = b"\xc1REC"
_HEAD = struct.Struct(">4sII")  # marker, length, crc32(payload): what hcrc covers
FRAME = struct.Struct(">4sIII")  # ... and hcrc
FRAME_SIZE = FRAME.size
FRAME_V1 = struct.Struct(">II")  # version 1: length, crc32(payload)

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


class Damage(NamedTuple):
    """Bytes the decoder skipped, and why (never quotes data: it may be secret)."""

    offset: int
    size: int
    reason: str


def frame(payload: bytes) -> bytes:
    """Marker, length, crc32 and header checksum in front of ``payload``."""
    if not 0 < len(payload) <= MAX_PAYLOAD:
        raise ValueError(f"record payload of {len(payload)} bytes (limit {MAX_PAYLOAD})")
    head = _HEAD.pack(MARKER, len(payload), zlib.crc32(payload))
    return head + zlib.crc32(head).to_bytes(4, "big") + payload


def encode_put(key: str, packed: bytes) -> bytes:
    """A framed put record; ``packed`` is the value already packed with ``values.pack``."""
    return frame(values.pack([OP_PUT, key, packed]))


def encode_delete(key: str) -> bytes:
    """A framed delete record."""
    return frame(values.pack([OP_DELETE, key, None]))


def encode_batch(changes: Sequence[Change]) -> bytes:
    """One framed record for many changes: its crc makes them land all or nothing."""
    return frame(values.pack([OP_BATCH, None, [[key, packed] for key, packed in changes]]))


def read_header(data: bytes) -> int | None:
    """The format version of a complete valid header; None when ``data`` is a (possibly
    empty) prefix of one, i.e. a file whose creation was cut short; :class:`FormatError`
    otherwise."""
    if len(data) < HEADER_SIZE:
        if HEADER.startswith(data):
            return None
        raise FormatError("not a hadaemon store file (bad magic)")
    if data[: len(MAGIC)] != MAGIC:
        raise FormatError("not a hadaemon store file (bad magic)")
    version = int.from_bytes(data[len(MAGIC) : HEADER_SIZE], "big")
    if version not in VERSIONS:
        known = " and ".join(map(str, VERSIONS))
        raise FormatError(f"store format version {version} is not supported (only {known})")
    return version


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


class _Bad(NamedTuple):
    """A record that cannot be used: ``resume`` is where the next one is expected (only
    when the record's size is known for sure), ``trusted`` when it certainly starts there."""

    reason: str
    resume: int | None = None
    trusted: bool = False


class RecordDecoder:
    """Decodes records from bytes fed in any chunking, skipping damaged bytes.

    Feed the file after its header with :meth:`feed`, then call :meth:`finish`; both return
    the records they completed. ``damage`` lists the skipped byte ranges in file order
    (adjacent ones merged) and ``offset`` is the end of what was consumed.
    """

    def __init__(self, offset: int = HEADER_SIZE, version: int = VERSION) -> None:
        self.offset = offset  # the next record starts here (when not resynchronising)
        self.damage: list[Damage] = []
        self._version = version
        self._buffer = bytearray()
        self._base = offset  # file offset of _buffer[0]
        self._eof = False
        # While resynchronising: where the damage started and why, where the marker
        # search goes on, and the damaged record's own end, tried first.
        self._damaged: tuple[int, str] | None = None
        self._scan = 0
        self._hint: int | None = None

    @property
    def _end(self) -> int:
        return self._base + len(self._buffer)

    def feed(self, data: bytes) -> list[Record]:
        """The records completed by ``data``."""
        self._buffer += data
        return self._run()

    def finish(self) -> list[Record]:
        """End of input: an incomplete record is damage; the records found after it."""
        self._eof = True
        return self._run()

    def _run(self) -> list[Record]:
        records: list[Record] = []
        while self._damaged is None or self._resync():
            if self._version >= 2:
                self._decode_intact(records)
            if self.offset == self._end:
                break
            result = self._parse(self.offset)
            if isinstance(result, Record):
                records.append(result)
                self.offset += result.size
            elif isinstance(result, _Bad):
                if result.trusted and result.resume is not None:
                    self._add_damage(self.offset, result.resume, result.reason)
                    self.offset = result.resume
                else:
                    self._start_resync(result)
            elif self._eof:
                self._start_resync(_Bad("truncated record"))
            else:
                break  # wait for the rest of the record
        keep = self.offset if self._damaged is None else self._scan
        del self._buffer[: keep - self._base]
        self._base = keep
        return records

    def _decode_intact(self, records: list[Record]) -> None:
        """The fast path: decode valid records up to the first one that is incomplete or
        needs a closer look, which :meth:`_parse` then takes (same checks, in order)."""
        buffer, base = self._buffer, self._base
        pos, size = self.offset - base, len(buffer)
        unpack, crc32, head_size = FRAME.unpack_from, zlib.crc32, _HEAD.size
        while size - pos >= FRAME_SIZE:
            marker, length, crc, hcrc = unpack(buffer, pos)
            end = pos + FRAME_SIZE + length
            if (
                marker != MARKER
                or crc32(buffer[pos : pos + head_size]) != hcrc
                or not 0 < length <= MAX_PAYLOAD
                or end > size
            ):
                break
            payload = bytes(buffer[pos + FRAME_SIZE : end])
            if crc32(payload) != crc:
                break
            try:
                changes = _changes(payload)
            except Exception:
                break
            records.append(Record(base + pos, end - pos, changes))
            pos = end
        self.offset = base + pos

    def _parse(self, offset: int) -> Record | _Bad | None:
        """The record at ``offset``, why it is bad, or None if incomplete."""
        buffer, start = self._buffer, offset - self._base
        if self._version >= 2:
            if len(buffer) - start < FRAME_SIZE:
                return None
            bad = _check_head(buffer, start)
            if bad is not None:
                return _Bad(bad)
            _, length, crc, _ = FRAME.unpack_from(buffer, start)
            start += FRAME_SIZE
        else:
            if len(buffer) - start < FRAME_V1.size:
                return None
            length, crc = FRAME_V1.unpack_from(buffer, start)
            if not 0 < length <= MAX_PAYLOAD:
                return _Bad(f"bad length {length}")
            start += FRAME_V1.size
        if len(buffer) - start < length:
            return None
        end = self._base + start + length
        payload = bytes(buffer[start : start + length])
        if zlib.crc32(payload) != crc:
            return _Bad("crc mismatch", end)
        try:
            changes = _changes(payload)
        except Exception as exc:
            # msgpack raises a handful of types on odd input; the crc matched, so this is a
            # writer bug or a newer format, reported like damage. Only the type is named:
            # a decoder message could quote (secret) bytes.
            return _Bad(f"undecodable payload ({type(exc).__name__})", end, trusted=True)
        return Record(offset, end - offset, changes)

    def _head_at(self, offset: int) -> str | bool | None:
        """Why the header at ``offset`` is invalid, None if valid, False if incomplete."""
        start = offset - self._base
        if len(self._buffer) - start < FRAME_SIZE:
            return False
        return _check_head(self._buffer, start)

    def _start_resync(self, bad: _Bad) -> None:
        self._damaged = (self.offset, bad.reason)
        self._scan = self.offset + 1
        self._hint = bad.resume

    def _resync(self) -> bool:
        """Look for the next valid record header; True when found or at the end (the
        damage is then closed and decoding goes on), False to wait for more input."""
        assert self._damaged is not None
        if self._version < 2:  # no marker to find: the damage runs to the end
            self._scan = self._end
            return self._eof and self._resume(self._end)
        if self._hint is not None:
            head = self._head_at(self._hint)
            if head is None:
                return self._resume(self._hint)
            if head is False and not self._eof:
                return False
            if self._hint == self._end:  # the damaged record was the last one
                return self._resume(self._end)
            self._hint = None
        while True:
            found = self._buffer.find(MARKER, self._scan - self._base)
            if found < 0:
                if self._eof:
                    self._scan = self._end
                    return self._resume(self._end)
                self._scan = max(self._scan, self._end - len(MARKER) + 1)
                return False
            candidate = self._base + found
            head = self._head_at(candidate)
            if head is None:
                return self._resume(candidate)
            if head is False and not self._eof:
                self._scan = candidate
                return False
            self._scan = candidate + 1

    def _resume(self, offset: int) -> bool:
        assert self._damaged is not None
        start, reason = self._damaged
        self._add_damage(start, offset, reason)
        self._damaged, self._hint = None, None
        self.offset = offset
        return True

    def _add_damage(self, start: int, end: int, reason: str) -> None:
        if self.damage and self.damage[-1].offset + self.damage[-1].size == start:
            last = self.damage.pop()
            start, reason = last.offset, last.reason
        self.damage.append(Damage(start, end - start, reason))


def _check_head(buffer: bytearray, start: int) -> str | None:
    """Why the version 2 record header at ``start`` is invalid, or None if it is valid."""
    marker, length, _, hcrc = FRAME.unpack_from(buffer, start)
    if marker != MARKER:
        return "bad marker"
    if zlib.crc32(buffer[start : start + _HEAD.size]) != hcrc:
        return "bad header checksum"
    if not 0 < length <= MAX_PAYLOAD:
        return f"bad length {length}"  # a writer bug: the checksum vouches for it
    return None
