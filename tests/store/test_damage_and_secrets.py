"""Damaged tails are reported, saved aside and cut off; credential stores leak nothing."""

from __future__ import annotations

import os
import pathlib
import re
import stat
from collections.abc import Iterator
from typing import Any

import pytest
from twisted.logger import LogEvent, formatEvent

from hadaemon.store import Store

from .conftest import QueuedRunner, StoreFactory

N = 20


def _write_n(store: Store) -> list[int]:
    """Puts N records; returns the file size before each (the offset of each record)."""
    offsets = []
    for n in range(N):
        offsets.append(os.path.getsize(store.path))
        store.put(f"key{n:02d}", {"n": n, "blob": bytes(range(n * 3 % 256)) * 3})
    return offsets


def _saved_aside(warning: str) -> str:
    match = re.search(r"the damaged tail was saved to (\S+)$", warning)
    assert match, warning
    return match.group(1)


@pytest.mark.parametrize("cut", [1, 3, 8, 20])
def test_truncated_tail(stores: StoreFactory, cut: int) -> None:
    store = stores()
    offsets = _write_n(store)
    stores.close(store)
    original = store.path.read_bytes()
    os.truncate(store.path, len(original) - cut)

    again = stores("state.db")
    assert again.keys() == [f"key{n:02d}" for n in range(N - 1)]  # all but the last
    assert again.get("key05") == {"n": 5, "blob": bytes(range(15)) * 3}
    [warning] = again.load_warnings
    damaged = len(original) - cut - offsets[-1]
    assert warning.startswith(
        f"{store.path}: corrupt or truncated record at offset {offsets[-1]} "
        f"({damaged} bytes ignored: truncated record); the damaged tail was saved to "
        f"{store.path}.corrupt-"
    )
    saved = _saved_aside(warning)
    assert pathlib.Path(saved).read_bytes() == original[offsets[-1] : len(original) - cut]
    assert os.path.getsize(store.path) == offsets[-1]  # cut at the bad record
    assert any(warning == e.get("warning") for e in stores.events)  # and logged

    again.put("after", "repair")  # appends after the repair are readable
    third = stores.reopen(again)
    assert third.load_warnings == []
    assert third.get("after") == "repair" and len(third) == N


def test_flipped_byte_in_last_record(stores: StoreFactory) -> None:
    store = stores()
    offsets = _write_n(store)
    stores.close(store)
    data = bytearray(store.path.read_bytes())
    data[-5] ^= 0x01
    store.path.write_bytes(bytes(data))

    again = stores("state.db")
    assert len(again) == N - 1 and "key19" not in again
    [warning] = again.load_warnings
    assert f"at offset {offsets[-1]} ({len(data) - offsets[-1]} bytes ignored: crc" in warning
    assert pathlib.Path(_saved_aside(warning)).read_bytes() == bytes(data[offsets[-1] :])
    again.put("key19", "again")
    assert stores.reopen(again).get("key19") == "again"


def test_zero_filled_tail(stores: StoreFactory) -> None:
    store = stores()
    _write_n(store)
    stores.close(store)
    size = os.path.getsize(store.path)
    with open(store.path, "ab") as f:
        f.write(b"\0" * 4096)  # what a file system may show after a power loss
    again = stores("state.db")
    assert len(again) == N
    assert f"at offset {size} (4096 bytes ignored: bad marker)" in again.load_warnings[0]


def test_repeated_damage_gets_distinct_copies(stores: StoreFactory) -> None:
    store = stores()
    saved = set()
    for round_ in range(3):
        store.put(f"r{round_}", "x" * 50)
        stores.close(store)
        os.truncate(store.path, os.path.getsize(store.path) - 2)
        store = stores("state.db")
        saved.add(_saved_aside(store.load_warnings[0]))
    assert len(saved) == 3 and all(os.path.exists(name) for name in saved)


# -- credentials ------------------------------------------------------------------------


@pytest.fixture
def umask_zero() -> Iterator[None]:
    # With no umask, only the store's own choice of mode keeps others out.
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: object) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)  # type: ignore[call-overload, no-any-return]


def test_secret_files_are_0600(
    stores: StoreFactory, umask_zero: None, queued: QueuedRunner
) -> None:
    plain = stores("plain.db")
    assert _mode(plain.path) == 0o666  # the control: a normal store follows the umask
    secret = stores("creds.db", secret=True, run_in_thread=queued)
    assert _mode(secret.path) == 0o600
    secret.put("token", "s3cret")
    done: list[object] = []
    secret.compact().addBoth(done.append)
    queued.run_next()  # snapshot written
    assert _mode(stores.tmp_path / "creds.db.compact") == 0o600
    queued.run_all()
    assert done == [None]
    assert _mode(secret.path) == 0o600  # the renamed file
    stores.close(secret)
    os.truncate(secret.path, os.path.getsize(secret.path) - 1)
    again = stores("creds.db", secret=True)
    assert _mode(_saved_aside(again.load_warnings[0])) == 0o600


def test_loose_mode_is_fixed(stores: StoreFactory, umask_zero: None) -> None:
    store = stores("creds.db")
    store.put("token", "s3cret")
    stores.close(store)
    os.chmod(store.path, 0o644)
    again = stores("creds.db", secret=True)
    assert _mode(again.path) == 0o600
    assert again.get("token") == "s3cret"
    assert any("set to 0600" in formatEvent(e) for e in stores.events)


MARKER = "MARKER-7f3a"


def _texts(events: list[LogEvent]) -> Iterator[str]:
    for event in events:
        yield formatEvent(event)
        yield repr(event)


def test_secret_values_never_leak(stores: StoreFactory) -> None:
    store = stores("creds.db", secret=True, compact_min_bytes=2048)
    secret_value: dict[str, Any] = {"password": MARKER, "raw": MARKER.encode(), "n": 1}
    errors: list[str] = []
    for n in range(60):  # overwrites: enough for automatic compactions
        store.put(f"cred/{n % 5}", {**secret_value, "n": n})
    store.put("cred/last", secret_value)  # to be cut off below
    for bad in ({MARKER: {1}}, [MARKER, object()], {"x": {MARKER: [set()]}}):
        with pytest.raises(TypeError) as info:
            store.put("cred/bad", bad)
        errors.append(str(info.value))
        assert info.value.__cause__ is None and info.value.__context__ is None
    assert errors[0] == "store value for key 'cred/bad': unsupported type set at [<key>]"
    assert errors[2] == "store value for key 'cred/bad': unsupported type set at [<key>][<key>][0]"
    stores.close(store)
    os.truncate(store.path, os.path.getsize(store.path) - 4)
    again = stores("creds.db", secret=True)
    assert again.load_warnings and again.keys() == [f"cred/{n}" for n in range(5)]
    errors.extend(again.load_warnings)
    errors.extend([repr(store), repr(again)])
    texts = [*errors, *_texts(stores.events)]
    assert any("compacted" in text for text in texts)  # the logs did say things
    for text in texts:
        assert MARKER not in text, text
    # The same mistake in an ordinary store names the dict keys, to help debugging.
    plain = stores("plain.db")
    with pytest.raises(TypeError, match=f"at \\['{MARKER}'\\]"):
        plain.put("k", {MARKER: {1}})
