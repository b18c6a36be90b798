"""Record framing byte by byte, and the incremental decoder's handling of damage."""

from __future__ import annotations

import struct
import zlib

import msgpack
import pytest

from hadaemon.store import records
from hadaemon.store.records import RecordDecoder
from hadaemon.values import pack


def _v1_frame(payload: bytes) -> bytes:
    """A record of format version 1: length and crc32, no marker."""
    return struct.pack(">II", len(payload), zlib.crc32(payload)) + payload


def _v2_frame(payload: bytes) -> bytes:
    head = b"\xc1REC" + struct.pack(">II", len(payload), zlib.crc32(payload))
    return head + struct.pack(">I", zlib.crc32(head)) + payload


def test_header_bytes() -> None:
    assert records.HEADER == b"HADSTORE\x00\x02"
    assert records.read_header(records.HEADER) == 2
    assert records.read_header(b"HADSTORE\x00\x01") == 1  # the old format is still read
    assert records.read_header(b"") is None
    assert records.read_header(b"HADST") is None  # creation cut short
    with pytest.raises(records.FormatError, match="bad magic"):
        records.read_header(b"SQLite format 3\x00")
    with pytest.raises(records.FormatError, match="bad magic"):
        records.read_header(b"HAX")
    with pytest.raises(records.FormatError, match="version 3 is not supported"):
        records.read_header(b"HADSTORE\x00\x03")


def test_put_record_bytes() -> None:
    packed = pack({"on": True})
    record = records.encode_put("lamp", packed)
    payload = b"\x93\x01\xa4lamp\xc4" + bytes([len(packed)]) + packed
    assert record == _v2_frame(payload)
    assert record[:4] == b"\xc1REC" and len(record) == 16 + len(payload)
    assert msgpack.unpackb(payload) == [1, "lamp", packed]


def test_delete_and_batch_record_bytes() -> None:
    delete = records.encode_delete("k")
    assert delete[16:] == b"\x93\x02\xa1k\xc0"
    batch = records.encode_batch([("a", pack(1)), ("b", None)])
    assert msgpack.unpackb(batch[16:]) == [3, None, [["a", b"\x01"], ["b", None]]]


def _decode(blob: bytes, size: int, version: int = 2) -> tuple[list[records.Record], RecordDecoder]:
    decoder = RecordDecoder(10, version)
    got = []
    for index in range(0, len(blob), size):
        got.extend(decoder.feed(blob[index : index + size]))
    got.extend(decoder.finish())
    return got, decoder


def test_decoder_any_chunking() -> None:
    payloads = [
        msgpack.packb([1, "a", pack(1)]),
        msgpack.packb([2, "a", None]),
        pack([3, None, [["b", pack([2])], ["\udc80", pack("s")], ["c", None]]]),
    ]
    for version, framing in ((2, _v2_frame), (1, _v1_frame)):
        blob = b"".join(map(framing, payloads))
        for size in (1, 2, 7, len(blob)):
            got, decoder = _decode(blob, size, version)
            assert decoder.damage == []
            assert [r.changes for r in got] == [
                [("a", pack(1))],
                [("a", None)],
                [("b", pack([2])), ("\udc80", pack("s")), ("c", None)],
            ]
            assert [r.offset for r in got] == [
                10, 10 + got[0].size, 10 + got[0].size + got[1].size
            ]
            assert decoder.offset == 10 + len(blob)


def _three() -> tuple[bytes, int]:
    first = records.encode_put("a", pack(1)) + records.encode_put("b", pack(2))
    return first + records.encode_put("c", pack("x" * 40)), 10 + len(first)


def test_truncated_last_record() -> None:
    blob, last = _three()
    for cut in (1, 8, 9, 30):
        got, decoder = _decode(blob[:-cut], 1 << 20)
        assert len(got) == 2
        assert decoder.damage == [records.Damage(last, len(blob) - cut + 10 - last,
                                                 "truncated record")]
        assert decoder.offset == 10 + len(blob) - cut


def test_crc_mismatch_and_bad_length() -> None:
    blob, last = _three()
    flipped = bytearray(blob)
    flipped[-3] ^= 0x40
    decoder = RecordDecoder(10)
    assert len(decoder.feed(bytes(flipped))) == 2
    # Records after the damage are read again (version 2 resynchronises).
    assert [r.changes for r in decoder.feed(records.encode_put("d", pack(4)))] == [
        [("d", pack(4))]
    ]
    assert decoder.finish() == []
    assert decoder.damage == [records.Damage(last, 10 + len(blob) - last, "crc mismatch")]

    got, decoder = _decode(blob + b"\0" * 20, 1 << 20)  # zeros: a classic torn extension
    assert len(got) == 3
    assert decoder.damage == [records.Damage(10 + len(blob), 20, "bad marker")]

    # A length its header checksum vouches for, but out of range: a writer bug.
    head = b"\xc1REC" + struct.pack(">II", records.MAX_PAYLOAD + 1, 0)
    got, decoder = _decode(head + struct.pack(">I", zlib.crc32(head)), 1 << 20)
    assert decoder.damage[0].reason.startswith("bad length")


def test_version_1_stops_at_the_first_damage() -> None:
    payloads = [msgpack.packb([1, key, pack(n)]) for n, key in enumerate("abc")]
    blob = b"".join(map(_v1_frame, payloads))
    second = 10 + len(_v1_frame(payloads[0]))
    flipped = bytearray(blob)
    flipped[second - 10 + 9] ^= 0x40  # the second record's payload
    for size in (3, 1 << 20):
        got, decoder = _decode(bytes(flipped), size, version=1)
        assert [r.changes for r in got] == [[("a", pack(0))]]  # no marker to resync on
        assert decoder.damage == [records.Damage(second, 10 + len(blob) - second,
                                                 "crc mismatch")]
    got, decoder = _decode(blob + b"\0" * 20, 7, version=1)
    assert len(got) == 3 and decoder.damage == [records.Damage(10 + len(blob), 20, "bad length 0")]


@pytest.mark.parametrize(
    "payload",
    [
        b"\xc1",  # never-used msgpack byte
        msgpack.packb([1, "k"]),
        msgpack.packb([9, "k", b""]),
        msgpack.packb([1, 5, b""]),
        msgpack.packb([2, "k", b"value"]),
        msgpack.packb([3, None, [["k"]]]),
        msgpack.packb([1, "k", b""]) + b"\x00",
    ],
)
def test_undecodable_payload_with_good_crc(payload: bytes) -> None:
    decoder = RecordDecoder(10)
    bad = records.frame(payload)
    assert decoder.feed(bad) == []
    assert decoder.damage == [records.Damage(10, len(bad), decoder.damage[0].reason)]
    assert decoder.damage[0].reason.startswith("undecodable payload (")
    # Skipped by its length (its crc matched): the next record is read.
    assert len(decoder.feed(records.encode_delete("k"))) == 1


def test_frame_refuses_empty_and_huge(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="payload of 0 bytes"):
        records.frame(b"")
    # the limit is 1 GiB: shrunk here rather than allocating one
    monkeypatch.setattr(records, "MAX_PAYLOAD", 16)
    assert records.frame(b"x" * 16).endswith(b"x" * 16)
    with pytest.raises(ValueError, match=r"payload of 17 bytes \(limit 16\)"):
        records.frame(b"x" * 17)
