"""Plain logic on a fake clock: message shapes, the input window and flow-control rules."""

from __future__ import annotations

import functools
from typing import Any

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from hadaemon.nodes.credits import Credits
from hadaemon.nodes.delivery import NodeInputs, Throttle
from hadaemon.nodes.flushes import Flushes
from hadaemon.nodes.link import (
    EventMessage,
    InputDone,
    InputSink,
    LinkLost,
    OutgoingMessage,
    fast_pack,
    input_ended,
)
from hadaemon.nodes.wire import (
    Notification,
    ProtocolError,
    Request,
    Response,
    encode_event,
    encode_input,
    encode_notification,
    encode_response,
    parse,
)
from hadaemon.values import pack, unpack


class FakeLink:
    """Records inputs; ``sent[i][2](error, result)`` answers one as a wire would."""

    wire = "fake"
    node_id = "n"
    peer = None

    def __init__(self, window: int) -> None:
        self.window = window
        self.sent: list[tuple[int, Any, InputDone]] = []

    def send_input(
        self, port: int, message: OutgoingMessage, done: InputDone | None, sink: InputSink
    ) -> None:
        self.sent.append((port, message.msg, functools.partial(input_ended, done, sink)))

    def send_event(self, event: EventMessage) -> bool:
        return True

    def ping(self) -> Deferred[Any]:
        return Deferred()

    def close(self, reason: str) -> None:
        pass


def message(i: int) -> OutgoingMessage:
    return OutgoingMessage({"payload": i})


def test_parse_accepts_the_three_shapes_and_names_what_is_wrong() -> None:
    assert parse([0, 1, "getValue", [1, 2]]) == Request(1, "getValue", [1, 2])
    assert parse([1, 7, None, {"a": 1}]) == Response(7, None, {"a": 1})
    assert parse([2, "nodeOutput", []]) == Notification("nodeOutput", [])
    for bad, text in (
        ({}, "non-empty array"), ([], "non-empty array"), ([3], "unknown message type 3"),
        ([True, 1, "x", []], "unknown message type True"), ([0, -1, "x", []], "msgid"),
        ([0, 1, "", []], "method"), ([0, 1, 5, []], "method"), ([0, 1, "x"], "4 elements"),
        ([2, "x", {}], "notification"), ([1, 1, None], "4 elements"),
    ):
        with pytest.raises(ProtocolError, match=text):
            parse(bad)
    with pytest.raises(ProtocolError) as info:
        parse([0, 9, "x", "not a list"])
    assert info.value.msgid == 9  # answerable


def test_hand_built_encodings_equal_the_value_model() -> None:
    packed = pack({"payload": [1, "x"]})
    expected = pack([0, 70000, "nodeInput", [3, {"payload": [1, "x"]}]])
    assert encode_input(70000, 3, packed) == expected
    assert encode_response(1, None, None) == pack([1, 1, None, None])
    assert encode_response(1, None, {1, 2})[:3] == pack([1, 1, {"a": 1}, None])[:3]
    assert "the result cannot be sent" in unpack(encode_response(1, None, {1}))[2]["faultString"]
    assert encode_event("demo", 3, 0, "t", 2**70) == pack([2, "event", ["demo", 3, 0, "t", 2**70]])
    for value in ({"a": 2**70, "s": "\ud800"}, {"f": float("nan"), "b": b""}, {"k": [1, {2: 3}]}):
        assert fast_pack(value) == pack(value)


def test_window_order_and_loss() -> None:
    clock = Clock()
    inputs = NodeInputs("n", 10, clock)
    for i in range(5):
        assert inputs.offer(0, message(i))
    link = FakeLink(window=2)
    inputs.open(link)
    assert [m["payload"] for _p, m, _d in link.sent] == [0, 1]  # the window
    link.sent[0][2](None, "ok")
    assert [m["payload"] for _p, m, _d in link.sent] == [0, 1, 2]
    assert inputs.delivered == 1 and inputs.in_flight == 2
    inputs.close()
    link.sent[1][2](LinkLost("gone"), None)
    link.sent[2][2](LinkLost("gone"), None)
    assert inputs.lost == 2 and len(inputs.queue) == 2  # the rest waits for the next link
    again = FakeLink(window=5)
    inputs.open(again)
    assert [m["payload"] for _p, m, _d in again.sent] == [3, 4]


def test_an_input_with_room_goes_straight_out_and_one_sent_meanwhile_follows() -> None:
    clock = Clock()
    inputs = NodeInputs("n", 10, clock)

    class Reentrant(FakeLink):
        """A link whose first send makes the node queue another message (a wire that
        reports back at once)."""

        def send_input(self, port: int, message: OutgoingMessage, done: InputDone | None,
                       sink: InputSink) -> None:
            super().send_input(port, message, done, sink)
            if len(self.sent) == 1:
                assert inputs.offer(0, message_(1))

    message_ = message
    link = Reentrant(window=5)
    inputs.open(link)
    released: list[str] = []
    inputs.wait_for_room(lambda: released.append("room"))
    assert inputs.offer(0, message(0))  # the queue is empty, the window open: sent
    assert released == ["room"]  # a sender waiting for room learns there is
    # The one offered during the send was queued, and followed it, in order.
    assert [m["payload"] for _p, m, _d in link.sent] == [0, 1]
    assert inputs.in_flight == 2 and not inputs.queue


def test_flow_control_rules() -> None:
    clock = Clock()
    stalls: list[int] = []
    slow = NodeInputs("slow", 4, clock, stall_timeout=5.0,
                      on_stall=lambda inputs, n: stalls.append(n))
    sender = NodeInputs("sender", 4, clock)
    for i in range(4):
        slow.offer(0, message(i))
    assert slow.full
    assert slow.can_hold_for(sender)
    assert not slow.can_hold_for(slow)  # never held for oneself
    # A node that is held itself still holds its senders (a chain: sender -> slow ->
    # third), unless it waits, directly or through others, for the sender (a cycle).
    third = NodeInputs("third", 4, clock)
    slow.waits_for[third] = 1
    assert slow.can_hold_for(sender)
    third.waits_for[sender] = 1
    assert not slow.can_hold_for(sender)  # slow -> third -> sender -> slow: a cycle
    del third.waits_for[sender], slow.waits_for[third]
    released: list[str] = []
    slow.wait_for_room(lambda: released.append("room"))
    link = FakeLink(window=1)
    slow.open(link)
    assert released == []  # 3 still waiting: more than half of 4
    link.sent[0][2](None, None)
    assert released == ["room"]  # down to 2 = half
    # A node answering nothing while senders wait is declared stalled.
    for i in range(4):
        slow.offer(0, message(10 + i))
    slow.wait_for_room(lambda: released.append("late"))
    clock.advance(4.9)
    assert stalls == []
    clock.advance(0.2)
    assert stalls == [1] and released[-1] == "late" and slow.stalled
    # A node that is held itself waits for its destination: it is not stalled.
    held = NodeInputs("held", 4, clock, stall_timeout=5.0,
                      on_stall=lambda inputs, n: stalls.append(n))
    held.waits_for[third] = 1
    held.wait_for_room(lambda: released.append("held"))
    clock.advance(12.0)
    assert stalls == [1] and not held.stalled and released[-1] == "late"
    del held.waits_for[third]
    clock.advance(5.0)
    assert stalls == [1, 1] and held.stalled and released[-1] == "held"
    assert not slow.can_hold_for(sender)
    link.sent[-1][2](None, None)  # it answers again
    assert not slow.stalled


def test_hard_limit_drops_and_counts() -> None:
    inputs = NodeInputs("n", 2, Clock(), in_transit=3)
    assert inputs.limit == 11
    assert all(inputs.offer(0, message(i)) for i in range(11))
    assert not inputs.offer(0, message(99))
    assert inputs.dropped == 1


def test_throttle_lets_one_through_per_period_and_counts_the_rest() -> None:
    clock = Clock()
    throttle = Throttle(clock, period=10.0)
    assert throttle.hit("k") == 0
    assert throttle.hit("k") is None and throttle.hit("k") is None
    clock.advance(10)
    assert throttle.hit("k") == 2
    assert throttle.hit("other") == 0


def test_the_socket_path_may_come_in_double_quotes() -> None:
    from hadaemon.nodes.client.homegear import _strip_quotes

    assert _strip_quotes('"/run/x.sock"') == "/run/x.sock"
    assert _strip_quotes("/run/x.sock") == "/run/x.sock"
    assert _strip_quotes('"') == '"'


def test_public_exports() -> None:
    import hadaemon.nodes

    assert set(hadaemon.nodes.__all__) == {
        "SCHEMA", "Fault", "FlowError", "Flows", "NodeSpec", "NodesPlugin", "Target",
        "build_flows",
    }
    assert hadaemon.nodes.NodesPlugin.name == "nodes"


class BinaryDispatcher(Flushes):
    """What BinaryNodeProtocol asks of the dispatcher, recorded (node "n" is pid 42)."""

    def __init__(self) -> None:
        self.bound: list[Any] = []
        self.calls: list[tuple[str, list[Any]]] = []
        self.reports: list[str] = []
        self.answers: dict[str, Any] = {}
        self.flows = self
        Flushes.__init__(self)

    def node_info(self, node_id: str) -> dict[str, Any]:
        return {"id": node_id}

    def node_for_pid(self, pid: int) -> str | None:
        return "n" if pid == 42 else None

    def bind(self, link: Any, node_id: str) -> None:
        link.node_id = node_id
        self.bound.append(link)

    def unbind(self, link: Any) -> None:
        pass

    def call(self, link: Any, method: str, params: list[Any]) -> Any:
        self.calls.append((method, params))
        return self.answers.get(method)

    def report(self, node_id: str, message: str, level: int) -> None:
        self.reports.append(message)


def binary_link(pid: int = 42) -> tuple[Any, BinaryDispatcher, Any, Clock]:
    from twisted.internet.testing import StringTransport
    from twisted.logger import Logger

    from hadaemon.nodes.auth import PeerCredentials
    from hadaemon.nodes.binwire import BinaryNodeProtocol
    from hadaemon.nodes.connection import Limits

    clock = Clock()
    dispatcher = BinaryDispatcher()
    link = BinaryNodeProtocol(dispatcher, Limits(call_timeout=5.0), clock,  # type: ignore[arg-type]
                              Logger(), PeerCredentials(pid, 0, 0))
    transport = StringTransport()
    link.makeConnection(transport)
    return link, dispatcher, transport, clock


def sent(transport: Any, clock: Clock) -> list[Any]:
    from hadaemon import binrpc

    clock.advance(0)  # the end of the reactor turn: written
    data = transport.value()
    transport.clear()
    return binrpc.Decoder().feed(data) if data else []


def test_binary_wire_answers_out_of_order_and_times_out_each_call() -> None:
    from hadaemon import binrpc
    from hadaemon.nodes.binwire import CallTimeout

    link, dispatcher, transport, clock = binary_link()
    held: Deferred[Any] = Deferred()
    dispatcher.answers["setValue"] = held
    dispatcher.answers["getVersion"] = "v"
    link.dataReceived(
        binrpc.encode_request("setValue", [7, 1, [1, 0, "x", 1]])
        + binrpc.encode_request("setPid", [9, 0, [42]])
        + binrpc.encode_request("getVersion", [8, 2, []])
    )
    assert dispatcher.bound == [link]
    assert [p.value for p in sent(transport, clock)] == [[9, 0, None], [8, 2, "v"]]
    held.callback(None)
    assert [p.value for p in sent(transport, clock)] == [[7, 1, None]]
    # The daemon's calls: each times out at its own deadline (one timer for them all);
    # an answer that comes too late is ignored.
    results: list[Any] = []
    counts: list[tuple[int, int, int]] = []

    class Sink:
        def inputs_done(self, handled: int, failed: int, lost: int) -> None:
            counts.append((handled, failed, lost))

    for port in range(3):
        link.send_input(port, OutgoingMessage({"payload": port}),
                        lambda e, r: results.append((e, r)), Sink())
        clock.advance(1.0)
    requests = sent(transport, clock)
    assert [p.method for p in requests] == ["nodeInput"] * 3
    ids = [p.params[0] for p in requests]
    link.dataReceived(binrpc.encode_response([ids[1], None]))
    assert results == [(None, None)]
    clock.advance(2.0)  # 5 s after the first
    assert len(results) == 2 and isinstance(results[1][0], CallTimeout)
    assert "did not answer nodeInput within 5 s" in str(results[1][0])
    link.dataReceived(binrpc.encode_response([ids[0], None]))  # too late: ignored
    clock.advance(2.0)
    assert len(results) == 3 and isinstance(results[2][0], CallTimeout)
    assert counts == [(1, 0, 0), (0, 1, 0), (0, 1, 0)]  # the queue learns each end
    assert len(dispatcher.reports) == 1  # reported, throttled
    assert not [c for c in clock.getDelayedCalls() if c.active() and c.getTime() > 100]


def test_binary_wire_refuses_a_stranger_and_a_wrong_set_pid() -> None:
    from hadaemon import binrpc

    link, dispatcher, transport, clock = binary_link(pid=5)
    link.dataReceived(binrpc.encode_request("getVersion", [1, 2, []]))
    (answer,) = sent(transport, clock)
    assert answer.value[:2] == [1, 2] and answer.value[2]["faultCode"] == -32001
    assert dispatcher.calls == [] and link.is_closed()
    link, dispatcher, transport, clock = binary_link()
    link.dataReceived(binrpc.encode_request("getNodeData", [1, 1, ["n", "k"]]))
    link.dataReceived(binrpc.encode_request("setPid", [1, 2, [43]]))
    early, refused = sent(transport, clock)
    assert dispatcher.calls == [("getNodeData", ["n", "k"])]  # served before setPid
    assert early.value == [1, 1, None]
    assert refused.value[2]["faultCode"] == -32001 and link.is_closed()
    assert dispatcher.bound == []


def test_credits_owed_go_in_batches_or_with_other_data_and_held_ones_later() -> None:
    credits = Credits()
    credits.batch = 3
    assert not credits.earn(2)
    assert credits.message(with_other_data=False) is None
    assert credits.message(with_other_data=True) == encode_notification("credit", [2])
    assert credits.earn(3)
    assert credits.message(with_other_data=False) == encode_notification("credit", [3])
    granted: list[int] = []
    room: Deferred[None] = Deferred()
    credits.hold(room, granted.append)
    credits.hold(room, granted.append)
    assert credits.held == 2
    room.callback(None)
    assert (granted, credits.held) == ([2], 0)
