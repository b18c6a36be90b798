"""Values in store files: every value of the model survives a store file, and files
written before the value model moved to :mod:`hadaemon.values` still load."""

from __future__ import annotations

import math
import pathlib
import shutil
import tempfile
from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock

from hadaemon.store import Store
from tests.values.strategies import any_text, assert_same, expected, model_values, odd_text

DATA = pathlib.Path(__file__).parent / "data"


def _now(f: Callable[[], Any]) -> Deferred[Any]:
    return succeed(f())


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(any_text | odd_text, model_values, min_size=1, max_size=6))
def test_round_trip_through_a_store_file(items: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "state.db"
        store = Store(path, reactor=Clock(), run_in_thread=_now)
        store.open()
        state: dict[str, Any] = {}
        for index, (key, value) in enumerate(items.items()):
            if index % 2:
                store.put(key, value)
                state[key] = value
            else:
                store.put_many({"extra": index, key: value})
                state.update({"extra": index, key: value})
        store.stopService()
        for compact in (True, False):  # the second round reads the compacted file
            again = Store(path, reactor=Clock(), run_in_thread=_now)
            again.open()
            assert again.load_warnings == []
            assert again.keys() == sorted(state)
            for key, value in state.items():
                assert_same(again.get(key), expected(value), repr(key))
            if compact:
                again.compact()
            again.stopService()


# What data/values-v2.db holds. It was written by the code of main at e7ca73f, when the
# model lived in hadaemon/store/values.py: these puts in this order, then
# put_many({"gone": 1, "kept": [{"x": 1.25}]}), delete("gone") and put("small", 8).
WRITTEN_BEFORE = {
    "none": None, "true": True, "false": False, "zero": 0, "small": 7, "neg": -1,
    "i64min": -(1 << 63), "u64max": (1 << 64) - 1, "big": 1 << 100, "bigneg": -(1 << 80),
    "float": 21.5, "negzero": -0.0, "inf": math.inf, "ninf": -math.inf, "nan": math.nan,
    "str": "héllo", "empty": "", "surrogate": "a\udc80b", "bytes": b"\x00\xff", "nobytes": b"",
    "list": [1, "two", 3.0, None, [True, b"x"]], "tuple": (1, 2),
    "dict": {"a": {"b": [1, {"c": None}]}, 5: "int key", -3: [], "\udc81": 1 << 70},
    "node/n1/data": {"count": 3},
}


def test_a_store_file_written_before_the_move_loads(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "state.db"
    shutil.copyfile(DATA / "values-v2.db", path)
    want = {**WRITTEN_BEFORE, "small": 8, "kept": [{"x": 1.25}]}
    store = Store(path, reactor=Clock(), run_in_thread=_now)
    store.open()
    try:
        assert store.load_warnings == []
        assert store.keys() == sorted(want)
        for key, value in want.items():
            assert_same(store.get(key), expected(value), repr(key))
    finally:
        store.stopService()
    # Opening it must not have rewritten it (no damage, no old format).
    assert path.read_bytes() == (DATA / "values-v2.db").read_bytes()
