"""Hypothesis strategies over the value model and an exact comparison, for its tests."""

from __future__ import annotations

import math
import struct
from typing import Any

from hypothesis import strategies as st

# Surrogates (category Cs) are excluded by default: include every code point.
any_text = st.text(st.characters(exclude_categories=()), max_size=20)
odd_text = st.sampled_from(["", "\x00", "a\x00b", "\ud800", "x\udfffy", "\udc80\x00\ud83d", "é"])
huge_ints = st.integers(min_value=2**64, max_value=2**300) | st.integers(
    min_value=-(2**300), max_value=-(2**63) - 1
)
edge_ints = st.sampled_from([0, -1, 2**63 - 1, -(2**63), 2**64 - 1, 2**64, -(2**63) - 1])
floats = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(
    [math.nan, -math.nan, math.inf, -math.inf, -0.0, 0.0, 5e-324]
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | huge_ints
    | edge_ints
    | floats
    | any_text
    | odd_text
    | st.binary(max_size=40)
    | st.sampled_from([b"", b"\x00", b"\x00\xff\x00"])
)
keys = any_text | odd_text | st.integers() | huge_ints
model_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5)
    | st.tuples(inner, inner)
    | st.dictionaries(keys, inner, max_size=5),
    max_leaves=25,
)


def expected(value: Any) -> Any:
    """What comes back: tuples become lists, all else is unchanged."""
    if isinstance(value, tuple | list):
        return [expected(item) for item in value]
    if isinstance(value, dict):
        return {key: expected(item) for key, item in value.items()}
    return value


def assert_same(got: Any, want: Any, where: str = "value") -> None:
    """Equal, same types, floats bit for bit (NaN equals NaN, -0.0 differs from 0.0)."""
    assert type(got) is type(want), f"{where}: {type(got).__name__} != {type(want).__name__}"
    if isinstance(want, float):
        assert struct.pack(">d", got) == struct.pack(">d", want), f"{where}: {got!r} != {want!r}"
    elif isinstance(want, list):
        assert len(got) == len(want), where
        for index, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_same(g, w, f"{where}[{index}]")
    elif isinstance(want, dict):
        assert list(got) == list(want), f"{where}: keys {list(got)!r} != {list(want)!r}"
        for key in want:
            assert type(key) is type(next(k for k in got if k == key))
            assert_same(got[key], want[key], f"{where}[{key!r}]")
    else:
        assert got == want, f"{where}: {got!r} != {want!r}"


