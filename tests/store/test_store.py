"""The store on a fake clock, with run_in_thread doubles: API, fsync batching, compaction."""

from __future__ import annotations

import errno
import os
import stat
from typing import Any

import pytest
from twisted.internet.defer import Deferred

from hadaemon.store import Store, StoreClosed, StoreFormatError, StoreLocked, records

from .conftest import QueuedRunner, StoreFactory


def fired(d: Deferred[Any]) -> list[object]:
    results: list[object] = []
    d.addBoth(results.append)
    return results


def test_put_get_delete_keys_items_prefix(stores: StoreFactory) -> None:
    store = stores()
    assert len(store) == 0 and store.get("x") is None and store.get("x", 5) == 5
    store.put("dev/1/state", {"on": True})
    store.put("dev/2/state", {"on": False})
    store.put("dev/10/state", [1, 2])
    store.put("sys/var", "v")
    store.put("dev/2/state", {"on": True, "level": 3})  # overwrite
    assert store.get("dev/2/state") == {"on": True, "level": 3}
    assert store.keys() == ["dev/1/state", "dev/10/state", "dev/2/state", "sys/var"]
    assert store.keys("dev/1") == ["dev/1/state", "dev/10/state"]
    assert store.items("sys/") == [("sys/var", "v")]
    assert store.items("nothing") == []
    assert "sys/var" in store and "nope" not in store and 3 not in store
    assert len(store) == 4
    store.delete("sys/var")
    size = os.path.getsize(store.path)
    store.delete("sys/var")  # missing: no error, no record
    store.delete("never")
    assert os.path.getsize(store.path) == size
    assert "sys/var" not in store and store.get("sys/var") is None
    store.put("", None)  # empty key and a None value are real entries
    assert "" in store and store.get("", "default") is None


def test_reopen_restores_everything(stores: StoreFactory) -> None:
    store = stores()
    store.put("a", 1)
    store.put_many({"b": [2], "c": {"d": b"\x00"}})
    store.put("a", 10)
    store.delete("b")
    store.put_many({"e": "x"})
    again = stores.reopen(store)
    assert again.items() == [("a", 10), ("c", {"d": b"\x00"}), ("e", "x")]
    assert again.load_warnings == []


def test_put_many_is_one_write_and_one_record(
    stores: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = stores()
    writes: list[int] = []
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: writes.append(fd) or real_write(fd, data))
    store.put_many({"a": 1, "b": 2, "c": 3})
    store.put_many({})
    assert len(writes) == 1
    monkeypatch.undo()
    # All or nothing: a batch cut anywhere loads none of its keys.
    store.put("z", 0)
    size_before = os.path.getsize(store.path)
    store.put_many({"x": 1, "y": 2})
    stores.close(store)
    os.truncate(store.path, os.path.getsize(store.path) - 3)
    again = stores("state.db")
    assert again.keys() == ["a", "b", "c", "z"]
    assert f"at offset {size_before} " in again.load_warnings[0]


def test_tuples_come_back_as_lists(stores: StoreFactory) -> None:
    store = stores()
    store.put("t", (1, (2, 3), {"k": (4,)}))
    assert store.get("t") == [1, [2, 3], {"k": [4]}]
    assert stores.reopen(store).get("t") == [1, [2, 3], {"k": [4]}]


def test_get_returns_a_fresh_object(stores: StoreFactory) -> None:
    store = stores()
    value = {"list": [1, 2], "nested": {"a": 1}}
    store.put("k", value)
    value["list"].append(3)  # the caller keeps changing its own object
    got = store.get("k")
    got["nested"]["a"] = 99
    got["list"].clear()
    assert store.get("k") == {"list": [1, 2], "nested": {"a": 1}}
    assert store.get("k") is not store.get("k")
    assert store.items()[0][1] == {"list": [1, 2], "nested": {"a": 1}}


def test_bad_value_raises_before_anything_is_written(stores: StoreFactory) -> None:
    store = stores()
    store.put("x", "old")
    size = os.path.getsize(store.path)
    with pytest.raises(TypeError) as info:
        store.put("x", [0, 1, {"a": {3}}])
    assert str(info.value) == "store value for key 'x': unsupported type set at [2]['a']"
    with pytest.raises(TypeError, match="store value for key 'b': unsupported type object"):
        store.put_many({"a": 1, "b": object()})  # one bad value: nothing of the batch
    with pytest.raises(TypeError, match="store keys are str, not int"):
        store.put(1, "v")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="store keys are str, not bytes"):
        store.delete(b"x")  # type: ignore[arg-type]
    assert os.path.getsize(store.path) == size
    assert store.items() == [("x", "old")]
    assert stores.reopen(store).items() == [("x", "old")]


def test_failed_write_is_rolled_back(stores: StoreFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    store = stores()
    store.put("a", 1)
    size = os.path.getsize(store.path)
    real_write = os.write

    def half_then_full(fd: int, data: Any) -> int:
        if len(data) > 5:
            return real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", half_then_full)
    with pytest.raises(OSError, match="No space left"):
        store.put("b", "x" * 100)
    monkeypatch.undo()
    assert os.path.getsize(store.path) == size  # the partial record was cut off
    assert "b" not in store
    store.put("c", 3)  # and the log goes on readable
    again = stores.reopen(store)
    assert again.load_warnings == [] and again.items() == [("a", 1), ("c", 3)]


def test_closed_store_refuses_writes(stores: StoreFactory) -> None:
    store = stores(open=False)
    with pytest.raises(StoreClosed, match="not open yet"):
        store.put("a", 1)
    with pytest.raises(StoreClosed, match="never opened"):
        store.get("a")
    store.open()
    store.put("a", 1)
    stores.close(store)
    for write in (lambda: store.put("b", 2), lambda: store.put_many({"b": 2}),
                  lambda: store.delete("a")):
        with pytest.raises(StoreClosed, match="closed; writes are refused"):
            write()
    assert isinstance(fired(store.sync())[0].value, StoreClosed)  # type: ignore[attr-defined]
    assert isinstance(fired(store.compact())[0].value, StoreClosed)  # type: ignore[attr-defined]
    assert store.get("a") == 1  # reads keep serving the last state
    assert fired(store.stopService()) == [None]  # stopping twice is fine


def test_service_start_opens(stores: StoreFactory) -> None:
    store = stores(open=False)
    store.startService()
    assert store.running
    store.put("a", 1)
    stores.close(store)
    assert not store.running
    store.startService()  # a restarted service reloads
    assert store.get("a") == 1


def test_second_opener_is_locked_out(stores: StoreFactory) -> None:
    stores()
    with pytest.raises(StoreLocked, match="in use by another process"):
        stores()


def test_foreign_file_is_left_alone(stores: StoreFactory) -> None:
    path = stores.tmp_path / "state.db"
    path.write_bytes(b"not a store at all")
    with pytest.raises(StoreFormatError, match="bad magic"):
        stores()
    assert path.read_bytes() == b"not a store at all"


def test_cut_short_creation_starts_over(stores: StoreFactory) -> None:
    (stores.tmp_path / "state.db").write_bytes(b"HADST")
    store = stores()
    assert len(store) == 0 and store.load_warnings == []
    store.put("a", 1)
    assert stores.reopen(store).get("a") == 1


# -- fsync ------------------------------------------------------------------------------


def test_periodic_fsync_only_when_dirty(
    stores: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    stores.close(stores())  # the file exists; what follows is a normal start
    runner = stores.runner
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        assert runner.running, "fsync outside run_in_thread (on the reactor thread)"
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    store = stores(fsync_interval=2.0)
    calls = runner.calls
    stores.clock.advance(2.0)  # what the last process wrote is made durable once
    assert runner.calls == calls + 1
    stores.clock.advance(60)
    assert runner.calls == calls + 1  # idle: no fsync
    store.put("a", 1)
    store.put("b", 2)
    store.delete("a")
    stores.clock.advance(1.9)
    assert runner.calls == calls + 1  # batched: not yet
    stores.clock.advance(0.1)
    assert runner.calls == calls + 2  # one fsync for the three writes
    stores.clock.advance(60)
    assert runner.calls == calls + 2
    store.put("c", 3)
    stores.clock.advance(2.0)
    assert runner.calls == calls + 3


def test_sync_fires_after_the_fsync_and_coalesces(
    stores: StoreFactory, queued: QueuedRunner
) -> None:
    store = stores(run_in_thread=queued)
    store.put("a", 1)
    first = fired(store.sync())
    second = fired(store.sync())  # nothing new written: rides on the same fsync
    assert len(queued.jobs) == 1 and first == [] and second == []
    store.put("b", 2)
    third = fired(store.sync())  # needs a new one
    assert len(queued.jobs) == 2
    queued.run_next()
    assert first == [None] and second == [None] and third == []
    queued.run_next()
    assert third == [None]
    assert fired(store.sync()) == [None]  # everything is durable: no thread needed
    assert queued.jobs == []
    stores.clock.advance(5)
    assert queued.jobs == []  # the periodic fsync saw nothing left


def test_directory_is_fsynced_after_create_and_rename(
    stores: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = stores.runner
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        assert runner.running, "fsync outside run_in_thread"
        synced.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    store = stores(compact_min_bytes=1 << 30)  # a new file: its name must become durable
    store.put("a", 1)
    assert fired(store.sync()) == [None]
    assert synced == ["file", "dir"]
    store.put("b", 2)
    assert fired(store.sync()) == [None]
    assert synced == ["file", "dir", "file"]  # the name is durable now
    synced.clear()
    assert fired(store.compact()) == [None]
    # The copy before the rename (twice: snapshot, then with the first tail), then the
    # renamed file and the directory that holds the new name.
    assert synced == ["file", "file", "file", "dir"]


def test_fsync_of_a_replaced_file_does_not_count(
    stores: StoreFactory, queued: QueuedRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[str] = []
    real_fsync, real_rename = os.fsync, os.rename

    def fsync(fd: int) -> None:
        real_fsync(fd)
        events.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")

    def rename(src: Any, dst: Any) -> None:
        real_rename(src, dst)
        events.append("rename")

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "rename", rename)
    store = stores(run_in_thread=queued, compact_min_bytes=1 << 30)  # a new file
    store.put("a", 1)
    fired(store.sync())
    f, d = queued.jobs.pop(0)
    f()  # this "thread" fsyncs the file and the directory (the old name) now...
    done = fired(store.compact())
    queued.run_next()  # snapshot
    queued.run_next()  # fsync of the copy; then the rename
    d.callback(None)  # ...and reports only after the rename
    store.put("b", 2)
    later = fired(store.sync())
    queued.run_next(-1)  # the newest job first
    if later == [None]:
        # Fired: then the new name must have reached the disk (a directory fsync after
        # the rename), or a power loss could bring back the old file without "b".
        assert "dir" in events[events.index("rename") :], events
    queued.run_all()
    assert later == [None] and done == [None]


def test_fsync_failure_reaches_sync_callers(stores: StoreFactory, queued: QueuedRunner) -> None:
    store = stores(run_in_thread=queued)
    store.put("a", 1)
    result = fired(store.sync())
    _, d = queued.jobs.pop(0)
    d.errback(OSError(errno.EIO, "I/O error"))
    assert isinstance(result[0].value, OSError)  # type: ignore[attr-defined]
    assert any("fsync of" in str(e.get("log_format")) for e in stores.events)


# -- compaction -------------------------------------------------------------------------


def _fill(store: Store, rounds: int = 50) -> dict[str, Any]:
    expected: dict[str, Any] = {}
    for n in range(rounds):
        key = f"k{n % 7}"
        store.put(key, {"n": n, "pad": "x" * 200})
        expected[key] = {"n": n, "pad": "x" * 200}
    store.put("gone", 1)
    store.delete("gone")
    return expected


def test_compaction_shrinks_the_file_and_keeps_data(stores: StoreFactory) -> None:
    store = stores()
    expected = _fill(store)
    before = os.path.getsize(store.path)
    inode = os.stat(store.path).st_ino
    assert fired(store.compact()) == [None]
    after = os.path.getsize(store.path)
    assert after < before / 4
    assert os.stat(store.path).st_ino != inode  # a new file was renamed over the log
    assert not (stores.tmp_path / "state.db.compact").exists()
    assert dict(store.items()) == expected
    store.put("later", 1)  # appends go to the new file
    again = stores.reopen(store)
    assert dict(again.items()) == {**expected, "later": 1}
    assert again.load_warnings == []


def test_automatic_compaction(stores: StoreFactory) -> None:
    store = stores(compact_min_bytes=4096, compact_ratio=2.0)
    expected = _fill(store, 200)
    compactions = [e for e in stores.events if e["log_format"].startswith("compacted")]
    assert len(compactions) >= 5  # 200 records of ~230 bytes, compacted at 4 KiB
    # The log stays within the bounds that trigger a compaction.
    assert os.path.getsize(store.path) <= max(4096, 2.0 * 8 * 250) + 300
    assert dict(stores.reopen(store).items()) == expected


def test_writes_during_compaction_are_kept(stores: StoreFactory, queued: QueuedRunner) -> None:
    store = stores(run_in_thread=queued, compact_min_bytes=1 << 30)
    queued.run_all()
    expected = _fill(store)
    done = fired(store.compact())
    assert len(queued.jobs) == 1  # the snapshot, in its "thread"
    store.put("during-snapshot", 1)  # only in the old log for now
    store.delete("k1")
    expected.pop("k1")
    queued.run_next()  # snapshot written: tail copied, the copy is being fsynced
    compact_file = stores.tmp_path / "state.db.compact"
    assert compact_file.exists()
    store.put("during-fsync", 2)
    store.put("k2", "new")
    waiting = fired(store.sync())  # an fsync of the old file would not count any more
    stores.clock.advance(5)  # nor would the periodic one: both wait for the swap
    while len(queued.jobs) > 1:
        queued.run_next(-1)  # old-file fsyncs finishing before the copy's must not count
    assert done == [] and waiting == []
    queued.run_next()  # fsync of the copy done: second tail copied, renamed
    assert not compact_file.exists()
    assert waiting == [] and done == []
    queued.run_all()  # fsync of the new file and its directory
    assert done == [None] and waiting == [None]
    expected.update({"during-snapshot": 1, "during-fsync": 2, "k2": "new"})
    assert dict(store.items()) == expected
    store.put("after", 3)
    expected["after"] = 3
    stopped = fired(store.stopService())
    queued.run_all()
    assert stopped == [None]
    again = stores("state.db")
    assert dict(again.items()) == expected
    assert os.path.getsize(again.path) < 3000


def test_stop_waits_for_a_running_compaction(stores: StoreFactory, queued: QueuedRunner) -> None:
    store = stores(run_in_thread=queued, compact_min_bytes=1 << 30)
    expected = _fill(store)
    compaction = fired(store.compact())
    stopped = fired(store.stopService())
    store.put("late", 1)  # other services may still save while the store stops
    expected["late"] = 1
    assert stopped == []
    while queued.jobs:
        queued.run_next(-1)  # a final fsync must not close the store under the compaction
    assert compaction == [None] and stopped == [None]
    with pytest.raises(StoreClosed):
        store.put("too-late", 1)
    assert dict(stores("state.db").items()) == expected


def test_failed_compaction_leaves_the_log(
    stores: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = stores(compact_min_bytes=1 << 30)
    expected = _fill(store)
    size = os.path.getsize(store.path)

    def failing_fsync(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    result = fired(store.compact())  # fails after the .compact file was written
    monkeypatch.undo()
    assert isinstance(result[0].value, OSError)  # type: ignore[attr-defined]
    assert not (stores.tmp_path / "state.db.compact").exists()
    assert os.path.getsize(store.path) == size
    assert any(e["log_format"].startswith("compaction of") for e in stores.events)
    store.put("more", 1)
    expected["more"] = 1
    assert dict(stores.reopen(store).items()) == expected


def test_stale_compact_file_is_ignored_and_removed(stores: StoreFactory) -> None:
    store = stores()
    store.put("real", 1)
    stores.close(store)
    stale = stores.tmp_path / "state.db.compact"
    # A complete-looking snapshot with other data: it must not win over the log.
    stale.write_bytes(records.HEADER + records.encode_put("ghost", b"\x01"))
    again = stores("state.db")
    assert again.items() == [("real", 1)]
    assert not stale.exists()
    assert again.load_warnings == []
