"""Prefix queries from the sorted key index: the same answers as a scan of every key,
after every kind of write, a failed write, a reload and a compaction."""

from __future__ import annotations

import errno
import os
import random
from typing import Any

import pytest

from hadaemon.store import Store
from hadaemon.store.keyindex import KeyIndex
from tests.store.conftest import QueuedRunner, StoreFactory

MAX = chr(0x10FFFF)
# Keys around the edges of the ordering: the empty key, the largest code point, lone
# surrogates (code points between U+D7FF and U+E000), prefixes of one another.
ALPHABET = ["a", "b", "/", "0", "1", MAX, "\ud800", "\udfff", "\ud7ff", "é", "\x00"]


def scan(keys: Any, prefix: str) -> list[str]:
    """What Store.keys(prefix) answered before the index: every key looked at."""
    return sorted(key for key in keys if key.startswith(prefix))


def random_key(rng: random.Random) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 4)))


def prefixes(rng: random.Random) -> list[str]:
    return ["", MAX, MAX + MAX, "a" + MAX, "\ud7ff", "\ud800"] + [
        random_key(rng) for _ in range(20)]


def test_the_index_answers_as_a_scan_would() -> None:
    rng = random.Random(15)
    model: set[str] = set()
    index = KeyIndex()
    for _ in range(2000):
        batch = {random_key(rng) for _ in range(rng.choice([1, 1, 3, 40]))}
        if rng.random() < 0.6:
            added = batch - model
            model |= added
            index.update(added, ())
        else:
            removed = batch & model
            model -= removed
            index.update((), removed)
        assert len(index) == len(model)
        for prefix in prefixes(rng)[:4]:
            assert index.prefixed(prefix) == scan(model, prefix), prefix
    for prefix in prefixes(rng):
        assert index.prefixed(prefix) == scan(model, prefix), prefix
    assert KeyIndex(model).prefixed("") == sorted(model)


def check(store: Store, rng: random.Random) -> None:
    everything = store.keys()
    assert everything == sorted(everything) and len(everything) == len(store)
    for prefix in prefixes(rng):
        assert store.keys(prefix) == scan(everything, prefix), prefix
        assert [key for key, _ in store.items(prefix)] == store.keys(prefix)


def test_the_store_keys_follow_puts_batches_deletes_reloads_and_compactions(
    stores: StoreFactory, queued: QueuedRunner
) -> None:
    rng = random.Random(11)
    store = stores(run_in_thread=queued, compact_min_bytes=0, compact_ratio=50.0)
    model: dict[str, int] = {}
    compacting = False
    for step in range(600):
        roll = rng.random()
        if roll < 0.4:
            key = random_key(rng)
            store.put(key, step)
            model[key] = step
        elif roll < 0.7:
            batch = {random_key(rng): step for _ in range(rng.randint(2, 30))}
            store.put_many(batch)
            model.update(batch)
        elif model:
            key = rng.choice([*model, random_key(rng)])
            store.delete(key)
            model.pop(key, None)
        if step % 150 == 75 and not compacting:  # writes keep coming while it runs
            store.compact().addErrback(lambda _: None)
            compacting = True
        if compacting and queued.jobs and rng.random() < 0.2:
            queued.run_next()
        assert set(store.keys()) == set(model)
        if step % 50 == 0:
            check(store, rng)
    queued.run_all()
    check(store, rng)
    assert dict(store.items()) == model
    store.stopService()
    queued.run_all()
    again = stores(store.path.name)  # the index is built from the loaded log
    assert dict(again.items()) == model
    check(again, rng)


def test_a_failed_write_leaves_the_keys_as_they_were(
    stores: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = stores()
    store.put("dev/1", 1)

    def full(fd: int, data: Any) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(OSError):
        store.put("dev/2", 2)
    with pytest.raises(OSError):
        store.put_many({"dev/3": 3, "dev/4": 4})
    with pytest.raises(OSError):
        store.delete("dev/1")
    monkeypatch.undo()
    assert store.keys("dev/") == ["dev/1"]
    store.put_many({"dev/0": 0, "dev/1": 10, "dev/2": 2})
    assert store.keys("dev/") == ["dev/0", "dev/1", "dev/2"]
