"""Homegear binary RPC codec: golden bytes from the spec (captured from the real client),
round trips, split packets, limits, malformed input."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hadaemon.binrpc import (
    MAX_DATA,
    Base64,
    BinRpcError,
    Decoder,
    Integer,
    Request,
    Response,
    decode_value,
    encode_fault,
    encode_request,
    encode_request_encoded,
    encode_response,
    encode_value,
    encode_with_headers,
    encoded_array,
)
from tests.binrpc.spec import PING_REQUEST, PING_RESPONSE, SETPID_REQUEST, SETPID_RESPONSE, h


def test_golden_setpid_handshake_decodes() -> None:
    (request,) = Decoder().feed(SETPID_REQUEST)
    assert request == Request("setPid", [0x7EFF4A0DC6C0, 0, [0x4779]])
    (response,) = Decoder().feed(SETPID_RESPONSE)
    assert response == Response([0x7EFF4A0DC6C0, 0, None])


def test_golden_setpid_handshake_encodes() -> None:
    assert encode_request("setPid", [0x7EFF4A0DC6C0, 0, [0x4779]]) == SETPID_REQUEST
    assert encode_response([0x7EFF4A0DC6C0, 0, None]) == SETPID_RESPONSE


def test_golden_ping() -> None:
    (ping,) = Decoder().feed(PING_REQUEST)
    assert ping == Request("ping", [1, []])  # an Integer (0x01) packet id
    assert Decoder().feed(PING_RESPONSE) == [Response([1, None])]
    assert encode_response([1, None]) == PING_RESPONSE
    # The server's side of it: the packet id goes as Integer, as Homegear sends it.
    assert encode_request("ping", [Integer(1), []]) == PING_REQUEST
    assert encode_request_encoded("ping", [encode_value(Integer(1)), encoded_array([])]) == (
        PING_REQUEST)
    assert type(decode_value(h("00000001 00000005"))) is int
    with pytest.raises(BinRpcError, match="32 bits"):
        encode_value(Integer(1 << 31))


@pytest.mark.parametrize(
    ("value", "golden"),
    [
        (-1234.56789, "00000004 d96b74f6 0000000b"),
        (0.1, "00000004 33333333 fffffffd"),
        (1.0, "00000004 20000000 00000001"),
        (0.0, "00000004 00000000 00000000"),
        (math.nan, "00000004 00000000 00000000"),
        (math.inf, "00000004 00000000 00000000"),
        (5e-324, "00000004 00000000 00000000"),  # subnormal
        # Rounding reaches 2^30: the real encoder keeps 0x40000000 (no renormalising).
        (0.9999999999, "00000004 40000000 00000000"),
        (9007199254740991.0, "00000004 40000000 00000035"),
        (1.7976931348623157e308, "00000004 40000000 00000400"),
        (-0.9999999999, "00000004 c0000000 00000000"),
    ],
)
def test_golden_floats(value: float, golden: str) -> None:
    assert encode_value(value) == h(golden)


def test_golden_fault_and_struct() -> None:
    fault = h('00000101 00000002 00000009 "faultCode" 000000d1 ffffffffffff80a7 '
              '0000000b "faultString" 00000003 00000001 "x"')
    assert encode_fault(-32601, "x") == b"Bin\x01" + struct.pack(">I", len(fault)) + fault
    assert decode_value(fault) == {"faultCode": -32601, "faultString": "x"}
    (packet,) = Decoder().feed(encode_fault(-32601, "x"))
    assert isinstance(packet, Response) and packet.is_fault
    nested = h('00000101 00000001 00000001 "a" 00000100 00000002 00000002 01 000000d0 '
               '00000003 000102')
    assert encode_value({"a": [True, b"\x00\x01\x02"]}) == nested


def test_all_integers_go_as_integer64_and_integer_decodes() -> None:
    assert encode_value(5) == h("000000d1 0000000000000005")
    assert decode_value(h("00000001 fffffffe")) == -2
    with pytest.raises(BinRpcError, match="64 bits"):
        encode_value(1 << 63)


def test_strings_base64_and_binary() -> None:
    assert encode_value("é") == h("00000003 00000002 c3a9")
    assert encode_value(Base64("QQ==")) == h('00000011 00000004 "QQ=="')
    decoded = decode_value(h('00000011 00000004 "QQ=="'))
    assert decoded == "QQ==" and isinstance(decoded, Base64)
    assert decode_value(h("00000003 00000001 ff")) == "\udcff"  # invalid UTF-8 kept
    assert encode_value("\udcff") == h("00000003 00000001 ff")


def test_lone_surrogates_and_int_keys_strict_or_lossy() -> None:
    # Strict: what surrogateescape cannot map back to bytes is refused, naming why.
    with pytest.raises(BinRpcError, match="lone surrogate"):
        encode_value("a\ud800")
    with pytest.raises(BinRpcError, match="struct keys are strings"):
        encode_value({1: 2})
    # Lossy (what the real client can take): U+FFFD, keys as decimal strings.
    assert encode_value("a\ud800", lossy=True) == h("00000003 00000004 61 efbfbd")
    assert encode_value("\udcff", lossy=True) == h("00000003 00000003 efbfbd")
    assert encode_value("\ud83d\ude00", lossy=True) == encode_value("\U0001f600")
    assert encode_value({7: None, "k": 1}, lossy=True) == h(
        '00000101 00000002 00000001 "7" 00000000 00000001 "k" 000000d1 0000000000000001')
    with pytest.raises(BinRpcError, match="64 bits"):
        encode_value([1 << 64], lossy=True)  # no lossy form for that


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(exclude_categories=())))
def test_lossy_strings_are_always_valid_utf8(text: str) -> None:
    data = encode_value(text, lossy=True)[8:]
    assert data.decode("utf-8") == text.encode("utf-16-le", "surrogatepass").decode(
        "utf-16-le", "replace")


def test_plain_decoding_gives_the_value_models_types() -> None:
    packet = encode_response([Base64("QQ=="), "x"])
    (plain,) = Decoder(plain=True).feed(packet)
    assert plain == Response(["QQ==", "x"]) and type(plain.value[0]) is str
    (kept,) = Decoder().feed(packet)
    assert type(kept.value[0]) is Base64


def test_header_variant_carries_its_headers_into_the_request() -> None:
    body = encode_request("ping", [])[8:]
    packet = encode_with_headers(0x00, {"Authorization": "Basic x"}, body)
    (request,) = Decoder().feed(packet)
    assert request == Request("ping", [], {"Authorization": "Basic x"})


def test_packets_split_at_every_byte() -> None:
    stream = SETPID_REQUEST + PING_RESPONSE + encode_fault(-1, "no") + SETPID_RESPONSE
    decoder = Decoder()
    got = []
    for i in range(len(stream)):
        got += decoder.feed(stream[i:i + 1])
    assert [type(p).__name__ for p in got] == ["Request", "Response", "Response", "Response"]
    assert got[0] == Decoder().feed(SETPID_REQUEST)[0]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"GET / HTTP/1.1\r\n", "not a Homegear binary RPC packet"),
        (b"Bin\x07\x00\x00\x00\x04abcd", "unknown packet type 0x07"),
        (b"Bin\x00\x00\x00\x00\x00", "length 0"),
        (b"Bin\x00" + struct.pack(">I", MAX_DATA + 1), "exceeds the 100 MiB limit"),
        (b"Bin\x40" + struct.pack(">I", 10 * 1024 * 1024 + 1), "header of 10485761 bytes"),
        (b"Bin\x01\x00\x00\x00\x04\x00\x00\x09\x99", "unknown value type 0x999"),
        (b"Bin\x01\x00\x00\x00\x08\x00\x00\x00\x03\x00\x00\x00\x09", "truncated"),
        (b"Bin\x01\x00\x00\x00\x08\x00\x00\x01\x00\x7f\xff\xff\xff", "cannot fit"),
        (b"Bin\x01\x00\x00\x00\x05\x00\x00\x00\x00\x00", "unexpected byte"),
    ],
)
def test_malformed_packets_are_refused_with_a_reason(data: bytes, message: str) -> None:
    with pytest.raises(BinRpcError, match=message):
        Decoder().feed(data)


def test_oversized_packet_refused_before_buffering() -> None:
    decoder = Decoder(max_data=1000)
    with pytest.raises(BinRpcError, match="1001 bytes exceeds the limit of 1000 bytes"):
        decoder.feed(b"Bin\x00" + struct.pack(">I", 1001))  # no body sent at all


def test_deep_nesting_is_refused() -> None:
    deep: list[object] = []
    for _ in range(200):
        deep = [deep]
    with pytest.raises(BinRpcError, match="nested deeper"):
        encode_value(deep)
    data = h("00000100 00000001") * 200 + h("00000000")
    with pytest.raises(BinRpcError, match="nested deeper"):
        decode_value(data)


# -- property-based round trips --------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1)
    | st.text()
    | st.binary()
    | st.text().map(Base64)
)
exact_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(exact_values)
def test_round_trip_of_exact_types(value: object) -> None:
    assert decode_value(encode_value(value)) == value


@settings(max_examples=300, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_float_round_trip_within_30_bit_precision(value: float) -> None:
    back = decode_value(encode_value(value))
    if value == 0 or abs(value) < 2.2250738585072014e-308:
        assert back == 0.0
    elif math.isinf(back):  # the largest doubles round up past the double range
        assert abs(value) > 1.797693134e308 and math.copysign(1, back) == math.copysign(1, value)
    else:
        assert math.isclose(back, value, rel_tol=2.0**-29)
        assert encode_value(back) == encode_value(value)  # stable once quantized


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=20), st.lists(exact_values, max_size=4),
       st.integers(min_value=1, max_value=50))
def test_requests_split_anywhere(method: str, params: list[object], chunk: int) -> None:
    data = encode_request(method, params) * 2
    decoder = Decoder()
    got = []
    for i in range(0, len(data), chunk):
        got += decoder.feed(data[i:i + chunk])
    assert got == [Request(method, params)] * 2


def test_float_exponent_beyond_double_range_decodes_to_infinity() -> None:
    assert decode_value(h("00000004 20000000 00010000")) == math.inf
    assert decode_value(h("00000004 e0000000 00010000")) == -math.inf
    assert decode_value(h("00000004 20000000 ffff0000")) == 0.0
