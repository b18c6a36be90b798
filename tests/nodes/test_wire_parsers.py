"""The node wires' sans-IO parsers on their own: bytes split anywhere give the same typed
calls as bytes in one piece, and garbage a clear error naming the problem.

- msgpack wire: :class:`hadaemon.nodes.wire.MessageReader` (the daemon), over the shape
  checks the node client shares (``hadaemon/nodes/client/_homegear_wire.py``);
- Homegear's binary wire: :class:`hadaemon.nodes.ipc.IpcReader`, on golden packets of
  the real client (tests/binrpc/spec.py).
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hadaemon import binrpc
from hadaemon.nodes.client import CLIENT_DIR
from hadaemon.nodes.ipc import (
    NO_ARGUMENTS,
    IpcError,
    IpcReader,
    encode_answer,
    encode_call,
)
from hadaemon.nodes.wire import (
    FrameTooLarge,
    MalformedMsgpack,
    MessageReader,
    WireError,
    encode_event,
    encode_input,
    encode_input_notification,
    encode_notification,
    encode_request,
    encode_response,
)
from hadaemon.values import pack
from tests.binrpc.spec import PING_REQUEST, PING_RESPONSE, SETPID_REQUEST, SETPID_RESPONSE

LIMIT = 1 << 20


class Record:
    """A receiver of either reader: every call as a tuple; closes after ``close_after``."""

    def __init__(self, close_after: int | None = None) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.close_after = close_after

    def request(self, msgid: int, method: str, params: list[Any]) -> None:
        self.calls.append(("request", msgid, method, params))

    def response(self, msgid: int, error: Any, result: Any) -> None:
        self.calls.append(("response", msgid, error, result))

    def notification(self, method: str, params: list[Any]) -> None:
        self.calls.append(("notification", method, params))

    def call(self, thread_id: int, packet_id: int, method: str, args: list[Any]) -> None:
        self.calls.append(("call", thread_id, packet_id, method, args))

    def answer(self, packet_id: int, error: Any, result: Any) -> None:
        self.calls.append(("answer", packet_id, error, result))

    @property
    def closed(self) -> bool:
        return self.close_after is not None and len(self.calls) >= self.close_after


def pieces(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


# -- the msgpack wire ---------------------------------------------------------------------

VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
    | st.binary(),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
MSGIDS = st.integers(0, (1 << 32) - 1)
METHODS = st.text(min_size=1, max_size=12)
MESSAGES = st.one_of(
    st.tuples(st.just("request"), MSGIDS, METHODS, st.lists(VALUES, max_size=3)),
    st.tuples(st.just("response"), MSGIDS, st.none(), VALUES),
    st.tuples(st.just("notification"), METHODS, st.lists(VALUES, max_size=3)),
)


def encoded(message: tuple[Any, ...]) -> bytes:
    kind, *rest = message
    if kind == "request":
        return encode_request(*rest)
    if kind == "response":
        return encode_response(*rest)
    return encode_notification(*rest)


def read(reader: MessageReader | IpcReader, chunks: list[bytes]) -> list[tuple[Any, ...]]:
    """The calls ``reader`` makes for ``chunks``, which must end with a whole message."""
    record = Record()
    for chunk in chunks:
        reader.feed(chunk, record)
    assert reader.unfinished == 0
    return record.calls


def read_msgpack(chunks: list[bytes]) -> list[tuple[Any, ...]]:
    return read(MessageReader(LIMIT), chunks)


@settings(max_examples=200, deadline=None)
@given(st.lists(MESSAGES, min_size=1, max_size=6), st.lists(st.integers(0, 1 << 16)))
def test_msgpack_reader_gives_the_same_calls_however_the_bytes_are_split(
    messages: list[tuple[Any, ...]], cuts: list[int]
) -> None:
    data = b"".join(encoded(m) for m in messages)
    expected = [(kind, *[list(p) if isinstance(p, list) else p for p in rest])
                for kind, *rest in messages]
    assert read_msgpack([data]) == expected
    assert read_msgpack(pieces(data, cuts)) == expected
    assert read_msgpack([data[i:i + 1] for i in range(len(data))]) == expected


def test_msgpack_reader_reads_what_the_daemon_and_the_client_send() -> None:
    data = b"".join((
        encode_input(7, 1, pack({"payload": 1})),
        encode_input_notification(3, pack({"payload": 2})),
        encode_input_notification(40, pack("x")),
        encode_event("zigbee", 5, 1, "STATE", True),
        encode_response(9, None, None),
        pack([2, "nodeOutput", ["n1", 0, {"payload": b"\x00"}]]),
    ))
    assert read_msgpack(pieces(data, [5, 17, 40])) == [
        ("request", 7, "nodeInput", [1, {"payload": 1}]),
        ("notification", "nodeInput", [3, {"payload": 2}]),
        ("notification", "nodeInput", [40, "x"]),
        ("notification", "event", ["zigbee", 5, 1, "STATE", True]),
        ("response", 9, None, None),
        ("notification", "nodeOutput", ["n1", 0, {"payload": b"\x00"}]),
    ]


@pytest.mark.parametrize(("message", "problem", "msgid"), [
    ({"a": 1}, "a message is a non-empty array [type, ...], got dict", None),
    ([], "a message is a non-empty array", None),
    ([0, 1, "m"], "a request has 4 elements, got 3", None),
    ([0, -1, "m", []], "msgid must be an unsigned 32-bit int, got -1", None),
    ([0, 1 << 32, "m", []], "msgid must be an unsigned 32-bit int", None),
    ([0, 5, "", []], "method must be a non-empty string, got ''", 5),
    ([0, 5, 7, []], "method must be a non-empty string, got 7", 5),
    ([0, 6, "getValue", {"x": 1}], "params of getValue must be an array, got dict", 6),
    ([1, "7", None, None], "msgid must be an unsigned 32-bit int, got '7'", None),
    ([1, 7, None], "a response has 4 elements, got 3", None),
    ([2, "nodeOutput"], "a notification has 3 elements, got 2", None),
    ([2, "nodeOutput", "x"], "a notification is [2, method: str, params: array]", None),
    ([2, 3, []], "a notification is [2, method: str, params: array]", None),
    ([True, 1, "m", []], "unknown message type True", None),
    ([3, 1, 2], "unknown message type 3 (0 request, 1 response, 2 notification)", None),
])
def test_msgpack_reader_names_what_is_not_msgpack_rpc(
    message: Any, problem: str, msgid: int | None
) -> None:
    reader = MessageReader(LIMIT)
    record = Record()
    good = encode_notification("nodeLog", ["n", 4, "before"])
    with pytest.raises(WireError) as info:
        reader.feed(good + pack(message), record)
    assert problem in str(info.value)
    assert info.value.msgid == msgid
    assert record.calls == [("notification", "nodeLog", ["n", 4, "before"])]


@pytest.mark.parametrize(("data", "problem"), [
    (b"\xc1", "FormatError: a byte that begins no msgpack value"),  # 0xc1: never used
    (b"\x93\x02\xa3abc\xc1", "FormatError: a byte that begins no msgpack value"),
    (b"\x91\xd9\x02\xff\xfe", "UnicodeDecodeError"),  # a str that is not UTF-8
])
def test_msgpack_reader_refuses_bytes_that_are_not_msgpack(data: bytes, problem: str) -> None:
    with pytest.raises(MalformedMsgpack, match=problem):
        MessageReader(LIMIT).feed(data, Record())


def test_msgpack_reader_bounds_an_unfinished_message_and_the_limit_may_grow() -> None:
    big = encode_notification("nodeOutput", ["n", 0, "x" * 5000])
    reader = MessageReader(4096, max_limit=LIMIT)
    record = Record()
    with pytest.raises(FrameTooLarge, match="larger than the limit of 4096 bytes") as info:
        for chunk in pieces(big, list(range(0, len(big), 1000))):
            reader.feed(chunk, record)
    assert info.value.limit == 4096
    assert record.calls == []
    grown = MessageReader(4096, max_limit=LIMIT)
    grown.limit = LIMIT  # as a connection's once it authenticated
    grown.feed(big, record)
    assert record.calls == [("notification", "nodeOutput", ["n", 0, "x" * 5000])]


def test_msgpack_reader_stops_once_the_receiver_closed() -> None:
    reader = MessageReader(LIMIT)
    record = Record(close_after=1)
    reader.feed(encode_notification("a", []) + encode_notification("b", []) + b"\xc1", record)
    assert record.calls == [("notification", "a", [])]


def test_the_node_client_reads_through_the_same_checks_without_twisted() -> None:
    script = (
        "import sys\n"
        f"sys.path.insert(0, {CLIENT_DIR!r})\n"
        "import _homegear_wire as w, _homegear_rpc as rpc\n"
        "assert rpc.dispatch is w.dispatch\n"
        "class R:\n"
        "    def notification(self, method, params): print(method, params)\n"
        "w.dispatch([2, 'credit', [4]], R())\n"
        "try:\n"
        "    w.dispatch([0, 1, '', []], R())\n"
        "except w.WireError as exc:\n"
        "    print(exc, exc.msgid)\n"
        "assert not [m for m in sys.modules if m.startswith(('twisted', 'hadaemon'))]\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.splitlines() == [
        "credit [4]", "method must be a non-empty string, got '' 1"]


# -- Homegear's binary wire ---------------------------------------------------------------


def read_ipc(chunks: list[bytes]) -> list[tuple[Any, ...]]:
    return read(IpcReader(LIMIT), chunks)


GOLDEN = SETPID_REQUEST + PING_RESPONSE
GOLDEN_CALLS = [
    ("call", 0x7EFF4A0DC6C0, 0, "setPid", [0x4779]),
    ("answer", 1, None, None),
]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, len(GOLDEN))))
def test_ipc_reader_gives_the_same_calls_however_the_bytes_are_split(cuts: list[int]) -> None:
    assert read_ipc([GOLDEN]) == GOLDEN_CALLS
    assert read_ipc(pieces(GOLDEN, cuts)) == GOLDEN_CALLS


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, (1 << 63) - 1), st.integers(0, (1 << 31) - 1),
                          st.text(min_size=1, max_size=10),
                          st.lists(st.integers(-(1 << 31), (1 << 31) - 1) | st.text(),
                                   max_size=3)), min_size=1, max_size=4),
       st.lists(st.integers(0, 1 << 12)))
def test_ipc_reader_reads_any_call_split_anywhere(
    calls: list[tuple[int, int, str, list[Any]]], cuts: list[int]
) -> None:
    data = b"".join(binrpc.encode_request(method, [thread, packet, args])
                    for thread, packet, method, args in calls)
    expected = [("call", *call) for call in calls]
    assert read_ipc(pieces(data, cuts)) == expected


def test_ipc_reader_tells_faults_from_results() -> None:
    fault = {"faultCode": -32601, "faultString": "Requested method not found."}
    data = (binrpc.encode_response([3, fault]) + binrpc.encode_response([4, {"a": 1}])
            + binrpc.encode_response([5, {"faultCode": 1}]))
    assert read_ipc([data]) == [
        ("answer", 3, fault, None),
        ("answer", 4, None, {"a": 1}),
        ("answer", 5, None, {"faultCode": 1}),
    ]


def test_ipc_encoders_write_the_golden_bytes() -> None:
    assert encode_answer(0x7EFF4A0DC6C0, 0, None) == SETPID_RESPONSE
    assert encode_call(1, "ping", NO_ARGUMENTS) == PING_REQUEST


def test_ipc_answer_that_the_wire_cannot_carry_is_a_fault_saying_so() -> None:
    (packet,) = binrpc.Decoder().feed(encode_answer(1, 2, {"x": object()}))
    assert isinstance(packet, binrpc.Response)
    thread_id, packet_id, fault = packet.value
    assert (thread_id, packet_id, fault["faultCode"]) == (1, 2, -32500)
    assert "cannot be sent on Homegear binary RPC" in fault["faultString"]


@pytest.mark.parametrize(("data", "error", "problem"), [
    (b"GET / HTTP/1.1\r\n", binrpc.BinRpcError, "not a Homegear binary RPC packet"),
    (b"Bin\x07\x00\x00\x00\x01x", binrpc.BinRpcError, "unknown packet type 0x07"),
    (binrpc.encode_request("setPid", [1234]), IpcError,
     r"'setPid' is not a Homegear IPC call: its parameters must be \[threadId, packetId, "
     r"\[arguments\]\], got \[1234\]"),
    (binrpc.encode_request("getValue", [1, 2, "x"]), IpcError, "is not a Homegear IPC call"),
    (binrpc.encode_response("pong"), IpcError,
     r"an answer is the Array \[packetId, result\], got 'pong'"),
    (binrpc.encode_response(["1", None]), IpcError, "an answer is the Array"),
])
def test_ipc_reader_names_what_is_wrong(data: bytes, error: type[Exception], problem: str) -> None:
    record = Record()
    reader = IpcReader(LIMIT)
    reader.feed(SETPID_REQUEST, record)
    with pytest.raises(error, match=problem):
        reader.feed(data, record)
    assert record.calls == GOLDEN_CALLS[:1]


def test_ipc_reader_refuses_a_packet_beyond_its_limit_before_buffering_it() -> None:
    reader = IpcReader(64)
    big = binrpc.encode_request("nodeOutput", [1, 2, ["n", 0, "x" * 100]])
    with pytest.raises(binrpc.BinRpcError, match="exceeds the limit of 64 bytes"):
        reader.feed(big[:12], Record())
    reader = IpcReader(64)
    reader.limit(LIMIT)
    record = Record()
    reader.feed(big, record)
    assert record.calls == [("call", 1, 2, "nodeOutput", ["n", 0, "x" * 100])]


def test_ipc_reader_stops_once_the_receiver_closed() -> None:
    record = Record(close_after=1)
    IpcReader(LIMIT).feed(SETPID_REQUEST + SETPID_REQUEST + PING_RESPONSE, record)
    assert len(record.calls) == 1
