"""Record framing byte by byte, and the incremental decoder's handling of damage."""

from __future__ import annotations

import struct
import zlib

import msgpack
import pytest

from hadaemon.store import records
from hadaemon.store.records import RecordDecoder
from hadaemon.store.values import pack


def test_header_bytes() -> None:
    assert records.HEADER == b"HADSTORE\x00\x01"
    assert records.check_header(records.HEADER) is True
    assert records.check_header(b"") is False
    assert records.check_header(b"HADST") is False  # creation cut short
    with pytest.raises(records.FormatError, match="bad magic"):
        records.check_header(b"SQLite format 3\x00")
    with pytest.raises(records.FormatError, match="bad magic"):
        records.check_header(b"HAX")
    with pytest.raises(records.FormatError, match="version 2 is not supported"):
        records.check_header(b"HADSTORE\x00\x02")


def test_put_record_bytes() -> None:
    packed = pack({"on": True})
    record = records.encode_put("lamp", packed)
    payload = b"\x93\x01\xa4lamp\xc4" + bytes([len(packed)]) + packed
    assert record == struct.pack(">II", len(payload), zlib.crc32(payload)) + payload
    assert msgpack.unpackb(payload) == [1, "lamp", packed]


def test_delete_and_batch_record_bytes() -> None:
    delete = records.encode_delete("k")
    assert delete[8:] == b"\x93\x02\xa1k\xc0"
    batch = records.encode_batch([("a", pack(1)), ("b", None)])
    assert msgpack.unpackb(batch[8:]) == [3, None, [["a", b"\x01"], ["b", None]]]


def test_decoder_any_chunking() -> None:
    blob = (
        records.encode_put("a", pack(1))
        + records.encode_delete("a")
        + records.encode_batch([("b", pack([2])), ("\udc80", pack("s")), ("c", None)])
    )
    for size in (1, 2, 7, len(blob)):
        decoder = RecordDecoder(10)
        got = []
        for index in range(0, len(blob), size):
            got.extend(decoder.feed(blob[index : index + size]))
        assert decoder.finish() is None
        assert [r.changes for r in got] == [
            [("a", pack(1))],
            [("a", None)],
            [("b", pack([2])), ("\udc80", pack("s")), ("c", None)],
        ]
        assert [r.offset for r in got] == [10, 10 + got[0].size, 10 + got[0].size + got[1].size]
        assert decoder.offset == 10 + len(blob)


def _three() -> tuple[bytes, int]:
    first = records.encode_put("a", pack(1)) + records.encode_put("b", pack(2))
    return first + records.encode_put("c", pack("x" * 40)), 10 + len(first)


def test_truncated_last_record() -> None:
    blob, last = _three()
    for cut in (1, 8, 9, 30):
        decoder = RecordDecoder(10)
        got = decoder.feed(blob[:-cut])
        assert len(got) == 2
        error = decoder.finish()
        assert error == records.DecodeError(last, "truncated record")
        assert decoder.offset == last


def test_crc_mismatch_and_bad_length() -> None:
    blob, last = _three()
    flipped = bytearray(blob)
    flipped[-3] ^= 0x40
    decoder = RecordDecoder(10)
    assert len(decoder.feed(bytes(flipped))) == 2
    assert decoder.error == records.DecodeError(last, "crc mismatch")
    assert decoder.feed(records.encode_put("d", pack(4))) == []  # nothing after damage

    decoder = RecordDecoder(10)
    assert len(decoder.feed(blob + b"\0" * 20)) == 3  # zeros: a classic torn extension
    assert decoder.error == records.DecodeError(10 + len(blob), "bad length 0")

    decoder = RecordDecoder(10)
    decoder.feed(struct.pack(">II", records.MAX_PAYLOAD + 1, 0))
    assert decoder.error is not None and decoder.error.reason.startswith("bad length")


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
    assert decoder.feed(records.frame(payload)) == []
    assert decoder.error is not None
    assert decoder.error.offset == 10
    assert decoder.error.reason.startswith("undecodable payload (")


def test_frame_refuses_empty_and_huge() -> None:
    with pytest.raises(ValueError):
        records.frame(b"")
