"""Damage in the middle of a real log file costs the damaged record only: loading skips it,
resynchronises on the next record header, saves the damaged bytes aside and rewrites the log.
"""

from __future__ import annotations

import os
import pathlib
import random
import re
import struct
import zlib

import msgpack
import pytest

from hadaemon.store import Store, StoreError, records
from hadaemon.values import pack

from .conftest import StoreFactory

N = 1000


def _value(n: int) -> dict[str, object]:
    # Random bytes: the marker's first byte turns up inside values, as in real data.
    return {"n": n, "blob": random.Random(n).randbytes(n % 40), "f": n / 7}


def _fill(stores: StoreFactory) -> tuple[Store, list[int], bytes]:
    """A closed store of N keys, one record each; the offset of every record; the file."""
    store = stores()
    offsets = []
    for n in range(N):
        offsets.append(os.path.getsize(store.path))
        store.put(f"k{n:04d}", _value(n))
    offsets.append(os.path.getsize(store.path))
    stores.close(store)
    return store, offsets, store.path.read_bytes()


def _check_all_but(store: Store, lost: set[int]) -> None:
    assert len(store) == N - len(lost)
    for n in range(N):
        if n in lost:
            assert f"k{n:04d}" not in store
        else:
            assert store.get(f"k{n:04d}") == _value(n), n


def _saved(warning: str) -> pathlib.Path:
    match = re.search(r"saved to (\S+)", warning)
    assert match, warning
    return pathlib.Path(match.group(1))


def _reopened_clean(stores: StoreFactory, store: Store, lost: set[int]) -> None:
    """The log was rewritten: the damage is neither reported nor saved again."""
    corrupt = sorted(store.path.parent.glob("*.corrupt-*"))
    again = stores.reopen(store)
    assert again.load_warnings == []
    assert store.path.read_bytes()[: records.HEADER_SIZE] == records.HEADER
    _check_all_but(again, lost)
    assert sorted(store.path.parent.glob("*.corrupt-*")) == corrupt
    again.put("after", 1)
    assert stores.reopen(again).get("after") == 1


def test_flipped_byte_in_the_middle_loses_one_record(stores: StoreFactory) -> None:
    store, offsets, data = _fill(stores)
    middle = len(data) // 2
    damaged = bytearray(data)
    damaged[middle] ^= 0x10
    store.path.write_bytes(bytes(damaged))
    hit = max(n for n in range(N) if offsets[n] <= middle)

    again = stores("state.db")
    assert len(again) >= 990  # the bar; in fact exactly one record is lost
    _check_all_but(again, {hit})
    [warning] = again.load_warnings
    size = offsets[hit + 1] - offsets[hit]
    assert warning.startswith(
        f"{store.path}: damaged record at offset {offsets[hit]} ({size} bytes skipped: "
    )
    assert "the records after it were loaded" in warning
    assert _saved(warning).read_bytes() == bytes(damaged[offsets[hit] : offsets[hit + 1]])
    assert any(warning == e.get("warning") for e in stores.events)  # and logged
    _reopened_clean(stores, again, {hit})


# Byte positions inside a record: marker, length (high and low byte), crc, header
# checksum, payload.
FIELDS = {"marker": 1, "length-high": 4, "length-low": 7, "crc": 9, "hcrc": 14, "payload": 20}
REASONS = {"marker": "bad marker", "payload": "crc mismatch"}


@pytest.mark.parametrize("field", FIELDS)
def test_flipped_byte_in_each_field(stores: StoreFactory, field: str) -> None:
    store, offsets, data = _fill(stores)
    hit = 500
    damaged = bytearray(data)
    damaged[offsets[hit] + FIELDS[field]] ^= 0x01
    store.path.write_bytes(bytes(damaged))

    again = stores("state.db")
    _check_all_but(again, {hit})
    [warning] = again.load_warnings
    reason = REASONS.get(field, "bad header checksum")
    size = offsets[hit + 1] - offsets[hit]
    assert f"at offset {offsets[hit]} ({size} bytes skipped: {reason})" in warning
    _reopened_clean(stores, again, {hit})


def test_garbage_inserted_between_records(stores: StoreFactory) -> None:
    store, offsets, data = _fill(stores)
    rng = random.Random(11)
    # Garbage with markers in it, one even followed by a header whose checksum is wrong.
    fake = records.frame(b"\x01")[:12] + b"\0\0\0\0"
    garbage = [
        rng.randbytes(777),
        rng.randbytes(50) + records.MARKER + rng.randbytes(30),
        fake + rng.randbytes(5),
        records.MARKER[:3],  # a marker cut short right before a real record
    ]
    at = [100, 400, 700, 900]
    parts, last = [], 0
    for n, blob in zip(at, garbage, strict=True):
        parts += [data[last : offsets[n]], blob]
        last = offsets[n]
    store.path.write_bytes(b"".join([*parts, data[last:]]))

    again = stores("state.db")
    _check_all_but(again, set())  # every record loads
    assert len(again.load_warnings) == len(garbage)
    shift = 0
    saved = b""
    for warning, n, blob in zip(again.load_warnings, at, garbage, strict=True):
        assert f"at offset {offsets[n] + shift} ({len(blob)} bytes skipped: " in warning
        shift += len(blob)
        saved += blob
    assert "bad marker" in again.load_warnings[0]
    assert "bad header checksum" in again.load_warnings[2]
    assert _saved(again.load_warnings[0]).read_bytes() == saved  # all of it, in order
    assert f"(from its byte {len(garbage[0])})" in again.load_warnings[1]
    _reopened_clean(stores, again, set())


def test_damage_in_the_middle_and_a_torn_tail(stores: StoreFactory) -> None:
    store, offsets, data = _fill(stores)
    damaged = bytearray(data[:-3])  # the last record torn
    damaged[offsets[10] + 30] ^= 0xFF
    store.path.write_bytes(bytes(damaged))

    again = stores("state.db")
    _check_all_but(again, {10, N - 1})
    first, tail = again.load_warnings
    assert f"damaged record at offset {offsets[10]} " in first
    assert tail.startswith(
        f"{store.path}: corrupt or truncated record at offset {offsets[N - 1]} "
        f"({len(damaged) - offsets[N - 1]} bytes ignored: truncated record); the damaged "
        "tail was saved to "
    )
    _reopened_clean(stores, again, {10, N - 1})


def test_a_record_that_embeds_a_marker_is_skipped_whole(stores: StoreFactory) -> None:
    # A value holding a complete record: its own crc fails after the flip, and the
    # decoder skips it by its (checksummed) length instead of reading what it embeds.
    store = stores()
    store.put("before", 1)
    at = os.path.getsize(store.path)
    store.put("carrier", records.encode_put("ghost", pack("boo")))
    store.put("after", 2)
    stores.close(store)
    damaged = bytearray(store.path.read_bytes())
    damaged[at + 18] ^= 0x01
    store.path.write_bytes(bytes(damaged))
    again = stores("state.db")
    assert again.items() == [("after", 2), ("before", 1)]


def test_many_damaged_places_are_summed_up(stores: StoreFactory) -> None:
    store, offsets, data = _fill(stores)
    damaged = bytearray(data)
    hits = set(range(5, N, 20))  # 50 damaged records
    for n in hits:
        damaged[offsets[n] + 20] ^= 0x01
    store.path.write_bytes(bytes(damaged))
    again = stores("state.db")
    _check_all_but(again, hits)
    assert len(again.load_warnings) == 21
    assert again.load_warnings[-1].startswith(f"{store.path}: 30 more damaged places from offset ")
    assert _saved(again.load_warnings[0]).stat().st_size == sum(
        offsets[n + 1] - offsets[n] for n in hits
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_flips_cost_only_the_records_they_hit(stores: StoreFactory, seed: int) -> None:
    store, offsets, data = _fill(stores)
    rng = random.Random(seed)
    damaged = bytearray(data)
    flips = rng.sample(range(records.HEADER_SIZE, len(data)), 60)
    for at in flips:
        damaged[at] ^= 1 << rng.randrange(8)
    store.path.write_bytes(bytes(damaged))
    hit = {max(n for n in range(N) if offsets[n] <= at) for at in flips}
    again = stores("state.db")
    _check_all_but(again, hit)  # every other record loads, none with a wrong value
    # Exactly the damaged records' bytes were skipped and saved aside.
    assert _saved(again.load_warnings[0]).stat().st_size == sum(
        offsets[n + 1] - offsets[n] for n in hit
    )


def test_failed_rewrite_leaves_the_log_alone(
    stores: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, offsets, data = _fill(stores)
    damaged = bytearray(data)
    damaged[offsets[3] + 20] ^= 0x01
    store.path.write_bytes(bytes(damaged))

    def refuse(*args: object) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "rename", refuse)
    with pytest.raises(StoreError, match=r"could not rewrite the log .*Input/output error"):
        stores("state.db")
    monkeypatch.undo()
    assert store.path.read_bytes() == bytes(damaged)  # untouched; no .compact left over
    assert not (store.path.parent / "state.db.compact").exists()
    again = stores("state.db")  # the next open finds the damage again: nothing is lost
    _check_all_but(again, {3})


# -- format version 1 ---------------------------------------------------------------------


def _v1_file(path: pathlib.Path, items: list[tuple[str, object]]) -> list[int]:
    """A version 1 log (no marker, no header checksum), as earlier hadaemon wrote it."""
    blob, offsets = b"HADSTORE\x00\x01", []
    for key, value in items:
        offsets.append(len(blob))
        payload = msgpack.packb([1, key, pack(value)])
        blob += struct.pack(">II", len(payload), zlib.crc32(payload)) + payload
    path.write_bytes(blob)
    return offsets


def test_version_1_file_is_read_and_rewritten(stores: StoreFactory) -> None:
    path = stores.tmp_path / "state.db"
    items = [(f"k{n}", _value(n)) for n in range(50)]
    _v1_file(path, items)
    store = stores("state.db")
    assert store.load_warnings == [] and store.items() == sorted(items)
    assert path.read_bytes()[: records.HEADER_SIZE] == records.HEADER
    store.put("new", True)
    again = stores.reopen(store)
    assert again.load_warnings == [] and again.get("new") is True and len(again) == 51


def test_version_1_damage_ends_the_log_as_before(stores: StoreFactory) -> None:
    path = stores.tmp_path / "state.db"
    items = [(f"k{n}", _value(n)) for n in range(50)]
    offsets = _v1_file(path, items)
    data = bytearray(path.read_bytes())
    data[offsets[20] + 12] ^= 0x01
    path.write_bytes(bytes(data))
    store = stores("state.db")
    assert store.items() == sorted(items[:20])  # no marker to resynchronise on
    [warning] = store.load_warnings
    assert f"at offset {offsets[20]} ({len(data) - offsets[20]} bytes ignored: crc" in warning
    assert _saved(warning).read_bytes() == bytes(data[offsets[20] :])
    assert stores.reopen(store).load_warnings == []  # rewritten in the new format
