"""The value model: exact round trips, the ext types, and clear errors for anything else."""

from __future__ import annotations

import enum
import math
import struct
import subprocess
import sys
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings

from hadaemon import values
from hadaemon.values import UnsupportedValue, make_unpacker, pack, unpack
from tests.values.strategies import assert_same, expected, model_values


@settings(max_examples=400, deadline=None)
@given(model_values)
def test_round_trip_property(value: Any) -> None:
    assert_same(unpack(pack(value)), expected(value))


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        False,
        2**64,
        -(2**63) - 1,
        2**1000,
        -(2**1000),
        -0.0,
        math.inf,
        -math.inf,
        "a\x00b",
        "\ud800",
        "\udfff\x00é",
        b"",
        b"\x00",
        {1: "int key", "1": "str key", 2**70: "big key", "\udc80": "surrogate key"},
        [[], {}, [[[]]], ""],
    ],
)
def test_round_trip_examples(value: Any) -> None:
    assert_same(unpack(pack(value)), expected(value))


def test_nan_payload_and_sign_kept() -> None:
    (bits,) = struct.unpack(">Q", struct.pack(">d", math.nan))
    odd_nan = struct.unpack(">d", struct.pack(">Q", bits | 0x8000_0000_0001))[0]
    assert struct.pack(">d", unpack(pack(odd_nan))) == struct.pack(">d", odd_nan)
    assert math.copysign(1.0, unpack(pack(-0.0))) == -1.0


def test_encodings_are_the_documented_ones() -> None:
    assert pack(2**64 - 1) == b"\xcf" + b"\xff" * 8  # still a plain msgpack uint 64
    assert pack(2**64) == msgpack.packb(msgpack.ExtType(values.EXT_BIGINT, b"\x01" + b"\0" * 8))
    assert pack(-(2**63) - 1) == msgpack.packb(
        msgpack.ExtType(values.EXT_BIGINT, b"\xff\x7f" + b"\xff" * 7)
    )
    assert pack("\ud800") == msgpack.packb(
        msgpack.ExtType(values.EXT_SURROGATE_STR, b"\xed\xa0\x80")
    )
    assert pack("é") == msgpack.packb("é")  # valid UTF-8 stays a plain str
    assert pack(b"\x00") == b"\xc4\x01\x00"  # bin, not str
    assert pack(1.5) == b"\xcb" + struct.pack(">d", 1.5)  # always float 64
    assert pack((1, 2)) == pack([1, 2])


def test_returns_fresh_lists_and_dicts() -> None:
    data = pack({"a": [1, {"b": 2}]})
    first = unpack(data)
    first["a"][1]["b"] = 99
    assert unpack(data) == {"a": [1, {"b": 2}]}


class Color(enum.IntEnum):
    RED = 1


class Thing:
    pass


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({1, 2}, "unsupported type set"),
        ([0, 1, {"a": {3}}], "unsupported type set at [2]['a']"),
        ({"x": [Thing()]}, "unsupported type Thing at ['x'][0]"),
        ({"a": {(1, 2): 3}}, "unsupported dict key type tuple at ['a']"),
        ({1.5: 0}, "unsupported dict key type float"),
        ({True: 0}, "unsupported dict key type bool"),
        ({None: 0}, "unsupported dict key type NoneType"),
        ([Color.RED], "unsupported type Color at [0]"),
        (bytearray(b"x"), "unsupported type bytearray"),
        ({7: frozenset()}, "unsupported type frozenset at [7]"),
        (msgpack.ExtType(1, b"\x01"), "unsupported type ExtType"),
    ],
)
def test_unsupported_values_name_type_and_path(value: Any, message: str) -> None:
    with pytest.raises(TypeError) as info:
        pack(value)
    assert str(info.value) == message
    assert isinstance(info.value, UnsupportedValue)


def test_redacted_path_hides_dict_keys() -> None:
    with pytest.raises(UnsupportedValue) as info:
        pack({"token-abc": [{"inner": {1}}]})
    assert info.value.describe(redact_keys=True) == "unsupported type set at [<key>][0][<key>]"


def test_self_containing_value_is_refused() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(UnsupportedValue, match="nested deeper than"):
        pack(loop)
    deep: Any = 1
    for _ in range(values.MAX_DEPTH):
        deep = [deep]
    assert unpack(pack(deep)) == deep
    with pytest.raises(UnsupportedValue):
        pack([deep])


def test_unknown_ext_type_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown msgpack ext type 9"):
        unpack(msgpack.packb(msgpack.ExtType(9, b"")))
    with pytest.raises(ValueError):
        unpack(pack(1) + b"\x00")  # extra bytes


def test_streaming_unpacker_uses_the_same_model() -> None:
    items = [2**100, "\ud800", {1: b"\x00"}, -0.0, None]
    stream = b"".join(pack(item) for item in items)
    unpacker = make_unpacker(max_buffer_size=1 << 20)
    out: list[Any] = []
    for index in range(0, len(stream), 3):  # fed in awkward pieces
        unpacker.feed(stream[index : index + 3])
        out.extend(unpacker)
    assert_same(out, items)
    with pytest.raises(TypeError, match="raw is fixed"):
        make_unpacker(raw=True)


def test_the_model_imports_no_twisted() -> None:
    # Codecs import no Twisted (docs/architecture.md): the model is plain functions.
    code = "import sys, hadaemon.values; print(sorted(m for m in sys.modules if 'twisted' in m))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
