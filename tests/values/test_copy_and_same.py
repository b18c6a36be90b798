"""The value model's ``copy`` (what a round trip gives, cheaper) and its one equality."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings

from hadaemon.sentinels import UNKNOWN
from hadaemon.values import copy, pack, same, unpack
from tests.values.strategies import assert_same, model_values


def containers(value: Any) -> list[Any]:
    """Every list and dict inside ``value`` (itself included)."""
    found: list[Any] = []
    if isinstance(value, list | tuple | dict):
        if not isinstance(value, tuple):
            found.append(value)
        for item in value.values() if isinstance(value, dict) else value:
            found.extend(containers(item))
    return found


# -- copy ------------------------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(model_values)
def test_copy_is_what_a_round_trip_gives(value: Any) -> None:
    copied = copy(value)
    assert_same(copied, unpack(pack(value)))  # types, float bits, key order, tuples as lists
    # Nothing mutable is shared: changing the copy cannot change the original.
    originals = {id(c) for c in containers(value)}
    assert not originals & {id(c) for c in containers(copied)}
    assert pack(value) == pack(copied)


def test_copy_shares_only_immutable_leaves() -> None:
    text, blob, big = "x" * 100, b"\x00" * 100, 1 << 100
    value = {"a": [text, {"b": blob}], "c": (big, []), "d": {}}
    copied = copy(value)
    assert copied == {"a": [text, {"b": blob}], "c": [big, []], "d": {}}
    assert copied["a"][0] is text and copied["a"][1]["b"] is blob and copied["c"][0] is big
    copied["a"][1]["b"] = 1
    copied["c"][1].append(1)
    copied["d"]["new"] = 1
    assert value == {"a": [text, {"b": blob}], "c": (big, []), "d": {}}


@pytest.mark.parametrize("leaf", [None, True, 0, -(1 << 80), 1.5, math.nan, "", "\ud800",
                                  b"", UNKNOWN])
def test_copy_of_a_leaf_is_the_leaf(leaf: Any) -> None:
    assert copy(leaf) is leaf


def test_copy_of_a_flat_list_or_dict_is_new() -> None:
    flat_list, flat_dict = [1, "a", None], {"payload": 1, "t": 2.5}
    assert copy(flat_list) == flat_list and copy(flat_list) is not flat_list
    assert copy(flat_dict) == flat_dict and copy(flat_dict) is not flat_dict
    assert copy((1, 2)) == [1, 2]


# -- same ------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(model_values)
def test_a_value_is_the_same_as_itself_and_its_round_trip(value: Any) -> None:
    assert same(value, value)
    assert same(value, unpack(pack(value)))  # NaN included, tuples as lists
    assert same(unpack(pack(value)), value)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (1, 1.0),                      # numbers by value: JSON has no int/float kind
        (21, 21.0),
        (0, -0.0),
        (0.0, -0.0),
        (1 << 70, float(1 << 70)),     # exactly representable
        (math.nan, math.nan),          # NaN is NaN: a sensor reporting NaN is not changing
        (math.nan, -math.nan),
        ([1, 2], (1, 2)),              # a tuple travels as a list
        ({"a": 1, "b": [2.0]}, {"b": [2], "a": 1.0}),  # key order is no change
        ({"x": {"y": [math.nan]}}, {"x": {"y": [math.nan]}}),
        ("é", "é"),
        (b"\x00", b"\x00"),
        (None, None),
        (UNKNOWN, UNKNOWN),
    ],
)
def test_same(a: Any, b: Any) -> None:
    assert same(a, b) and same(b, a)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (True, 1),                     # bool is no number
        (False, 0),
        (True, 1.0),
        (False, 0.0),
        ([True], [1]),                 # ... nested too
        ({"on": False}, {"on": 0}),
        ((1 << 53) + 1, float(1 << 53)),  # exact comparison, no rounding
        (1, 1.0000001),
        (math.nan, 0.0),
        (math.nan, None),
        (math.inf, -math.inf),
        ("1", 1),
        ("a", b"a"),
        (None, 0),
        (None, ""),
        (None, UNKNOWN),               # a reported None is a value, unlike UNKNOWN
        (0, UNKNOWN),
        ([1, 2], [1, 2, 3]),
        ([1, 2], [2, 1]),
        ({"a": 1}, {"a": 1, "b": 2}),
        ({"a": 1}, {"b": 1}),
        ({"a": 1}, [("a", 1)]),
        ({1: "x"}, {"1": "x"}),
        ([], {}),
    ],
)
def test_not_same(a: Any, b: Any) -> None:
    assert not same(a, b) and not same(b, a)


class Elementwise:
    """An object whose == raises (as numpy arrays' truth value does)."""

    def __eq__(self, other: object) -> bool:
        raise ValueError("ambiguous")

    __hash__ = None  # type: ignore[assignment]


def test_an_equality_that_raises_means_not_the_same() -> None:
    a, b = Elementwise(), Elementwise()
    assert same(a, a)
    assert not same(a, b)
    assert not same({"k": a}, {"k": b})
