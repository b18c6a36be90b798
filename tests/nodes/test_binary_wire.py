"""Homegear binary RPC on the node socket, as the real ``homegear`` C++ client speaks it.

The shared node suite (flows, RPC methods, events, data scopes, faults, a foreign node
id, overflow, templates...) already runs on both wires; here is what only this wire has:
the real client's handshake and envelopes byte for byte, out-of-order answers, identity
by the peer's pid, bad packets, the value model's limits and the daemon's call timeout.
The node processes speak it by hand (tests/nodes/nodes/raw_binary.py) or through the
test stand-in for the real module (tests/nodes/binclient).
"""

from __future__ import annotations

import math
import os
import pathlib
import struct
import sys
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.threads import deferToThreadPool
from twisted.logger import LogLevel

from hadaemon import binrpc
from hadaemon.bus import ErrorEvent
from hadaemon.registry import ChannelSpec, Device, ValueType, VariableSpec
from hadaemon.testing import capture_logs, run_in_reactor, wait_until
from tests.binrpc.spec import PING_REQUEST, SETPID_RESPONSE, h
from tests.nodes.helpers import (
    Events,
    exchange,
    logged,
    make_config,
    node,
    running,
)


class HeldOwner:
    """A device owner whose writes are accepted only when the test says so."""

    def __init__(self) -> None:
        self.writes: list[Deferred[None]] = []

    def write_values(self, device: Device, channel: int,
                     values: Mapping[str, Any]) -> Deferred[None]:
        d: Deferred[None] = Deferred()
        self.writes.append(d)
        return d

    def query_values(self, device: Device, channel: int,
                     names: Sequence[str]) -> Deferred[None]:
        return succeed(None)


def test_handshake_envelopes_and_out_of_order_answers(tmp_path: pathlib.Path) -> None:
    config = make_config(tmp_path, [
        node("proto", "raw_binary.py", "binrpc", info={"scenario": "protocol"},
             wires=[["test:sink/report"]]),
    ])

    async def scenario(reactor: Any) -> None:
        async with running(reactor, config) as run:
            owner = HeldOwner()
            device = run.daemon.registry.add_device(
                "test", "held", "Held", [ChannelSpec(0, [VariableSpec("level", ValueType.INT)])],
                owner=owner,
            )
            # nodeInput(nodeInfo, index, msg) is answered with Void: that is the result.
            assert await run.send("node:proto/0", {"payload": {"peer": device.peer_id}}) is None
            # The node now calls setValue (held here), getVersion and an unknown method,
            # in one write; the last two are answered at once, the first when released.
            await wait_until(reactor, lambda: owner.writes, what="the write to reach the device",
                             timeout=10.0)
            a, b, c = [0x7EFF000000A0, 8], [0x7EFF000000B0, 9], [0x7EFF000000C0, 10]
            handshake = [[0x7EFF00000001, 7], [0x7EFF4A0DC6C0, 0]]
            # once the other two were answered, setValue's answer still waits for the write
            first = (await run.sink.wait(reactor, 1, "report"))[0]
            assert first == {"answered": [*handshake, b, c]}
            owner.writes[0].callback(None)
            report = (await run.sink.wait(reactor, 2, "report"))[1]

            # A node call sent before setPid was served (the pid said who it is).
            assert report["early"] is None
            # setPid(pid) -> Void, and the ping that follows: the spec's bytes exactly.
            assert bytes.fromhex(report["setPid"]) == SETPID_RESPONSE
            assert bytes.fromhex(report["ping"]) == PING_REQUEST
            info = run.plugin.flows.node_info("proto")
            assert report["startUpComplete"] == ["nodeBlue", 0, -1, ["startUpComplete"], [info]]
            node_info, index, msg = report["nodeInput"]
            assert node_info == info and index == 0
            assert msg == {"payload": {"peer": device.peer_id}}
            # Answers in the order they were ready, each id pair echoed exactly.
            assert report["order"] == [*handshake, b, c, [1, 12], a]
            set_value, version, unknown = report["answers"]
            assert set_value is None and version.startswith("hadaemon ")
            assert unknown["faultCode"] == -32601
            # A fault is a {faultCode, faultString} struct in a normal (0x01) response.
            raw = bytes.fromhex(report["answer_bytes"][2])
            body = (h("00000100 00000003 000000d1 00007eff000000c0 000000d1 000000000000000a")
                    + h('00000101 00000002 00000009 "faultCode" 000000d1 ffffffffffff80a7')
                    + h('0000000b "faultString" 00000003')
                    + struct.pack(">i", len(unknown["faultString"]))
                    + unknown["faultString"].encode())
            assert raw == b"Bin\x01" + struct.pack(">I", len(body)) + body

    run_in_reactor(scenario, timeout=30)


def test_bad_packets_and_strangers_are_refused(tmp_path: pathlib.Path) -> None:
    max_frame = 4096
    frames = {
        "unknown packet type": "42696e07 00000004 61626364",
        "zero length": "42696e00 00000000",
        "oversized": "42696e00" + struct.pack(">I", max_frame + 1).hex(),
        "unknown value type": "42696e01 00000004 00000999",
        "truncated value": "42696e01 00000008 00000003 00000009",
        "not an IPC call": binrpc.encode_request("getVersion", []).hex(),
        "not an answer": binrpc.encode_response(None).hex(),
        "another pid": binrpc.encode_request("setPid", [1, 0, [1]]).hex(),
    }
    config = make_config(tmp_path, [
        node("bad", "raw_binary.py", "binrpc", wires=[["test:sink/report"]],
             info={"scenario": "frames",
                   "frames": [f.replace(" ", "") for f in frames.values()]}),
        node("good", "relay.py", "binrpc", info={"mode": "sum"}),
    ], max_frame=max_frame)

    async def scenario(reactor: Any) -> None:
        with capture_logs() as logs:
            async with running(reactor, config) as run:
                results = dict(zip(frames, (await run.sink.wait(reactor, 1, "report"))[0],
                                   strict=True))
                for name, result in results.items():
                    assert result["closed"], name
                (answer,) = results["another pid"]["answers"]
                (packet,) = binrpc.Decoder().feed(bytes.fromhex(answer))
                assert packet.value[:2] == [1, 0]
                assert packet.value[2]["faultCode"] == -32001
                # A process the daemon did not start (this one) is refused at its first
                # call, with a fault the real client prints.
                path = run.plugin.socket_path
                answers, closed = await deferToThreadPool(
                    reactor, reactor.getThreadPool(), partial(
                        exchange, decode=binrpc.Decoder().feed), path,
                    binrpc.encode_request("setPid", [7, 0, [os.getpid()]]))
                assert closed and answers[0].value[:2] == [7, 0]
                assert answers[0].value[2]["faultCode"] == -32001
                assert "not a node process this daemon started" in (
                    answers[0].value[2]["faultString"])
                # Nothing of it disturbed the node, its connection or the others.
                for state in (run.state("bad"), run.state("good")):
                    assert state["connected"] and state["restarts"] == 0
                assert await run.send("node:good/0", {"payload": 1}) is None
        lines = "\n".join(logged(logs, level=LogLevel.warn))
        for expected in ("unknown packet type 0x07", "data length 0",
                         "packet data of 4097 bytes exceeds the limit of 4096 bytes",
                         "unknown value type 0x999",
                         "truncated", "is not a Homegear IPC call",
                         "an answer is the Array [packetId, result]",
                         "setPid(1): this connection comes from pid",
                         f"pid {os.getpid()} is not a node process this daemon started"):
            assert expected in lines, expected

    run_in_reactor(scenario, timeout=30)


WRAPPER = """#!/bin/sh
# An interpreter wrapper that {how}.
{exec}"{python}" "$@"
"""


def test_identity_is_the_pid_so_nodes_must_be_executed_directly(tmp_path: pathlib.Path) -> None:
    wrappers = {}
    for name, how, exec_ in (("execs", "execs Python (the pid stays)", "exec "),
                             ("forks", "forks Python (another pid)", "")):
        wrapper = tmp_path / f"python-{name}"
        wrapper.write_text(WRAPPER.format(how=how, exec=exec_, python=sys.executable))
        wrapper.chmod(0o755)
        wrappers[name] = str(wrapper)
    config = make_config(tmp_path, [
        node("direct", "relay.py", "binrpc", info={"mode": "sum"}),
        node("execs", "relay.py", "binrpc", info={"mode": "sum"},
             interpreter=wrappers["execs"]),
        node("forks", "relay.py", "binrpc", info={"mode": "sum"},
             interpreter=wrappers["forks"]),
    ], start_deadline=0.5)

    async def scenario(reactor: Any) -> None:
        with capture_logs() as logs:
            async with running(reactor, config, wait=False) as run:
                await run.ready("direct", "execs")
                await wait_until(reactor, lambda: any(
                    "is not a node process this daemon started" in line
                    for line in logged(logs, level=LogLevel.warn)),
                    what="the refusal", timeout=10.0)
                assert not run.state("forks")["ready"]
                assert run.state("forks")["process"] == "starting"  # never answered ping

    run_in_reactor(scenario, timeout=30)


def test_value_model_limits_of_the_binary_wire(tmp_path: pathlib.Path) -> None:
    config = make_config(tmp_path, [
        node("echo", "relay.py", "binrpc", info={"mode": "echo"}, wires=[["test:sink/echo"]],
             events=["variable/system/#"]),
        node("catcher", "relay.py", catch="all", info={"mode": "echo"},
             wires=[["test:sink/caught"]]),
        node("exact", "relay.py", info={"mode": "echo"}, wires=[["echo"]]),
    ])
    sent = {
        "none": None, "bools": [True, False], "ints": [0, -1, 2**63 - 1, -(2**63)],
        "tuple": (1, (2, 3)), "nested": {"a": [{"b": [1.5]}]}, "bytes": b"\x01\xff",
        "text": "é \U0001f600", "float": 0.1, "-float": -1234.56789, "zero": 0.0,
        "nan": math.nan, "inf": math.inf, "tiny": 5e-324,
        7: "int key", "lone": "a\ud800b", "nul": "a\0b", "bin_nul": b"a\0b",
    }

    async def scenario(reactor: Any) -> None:
        with capture_logs() as logs:
            async with running(reactor, config) as run:
                errors = Events(run.daemon, "error/node:echo/#")
                await run.send("node:echo/0", {"payload": sent})
                got = (await run.sink.wait(reactor, 1, "echo"))[0]
                # Exact: None, bools, 64-bit ints, bytes, text, nesting (tuples as lists).
                for key in ("none", "bools", "ints", "bytes", "text", "nested"):
                    assert got[key] == sent[key], key
                assert got["tuple"] == [1, [2, 3]]
                # Floats: a 30-bit mantissa; NaN, infinities and subnormals become 0.0.
                assert got["float"] == 0x33333333 / 2**30 * 2**-3 != 0.1  # the spec's bytes
                assert math.isclose(got["-float"], -1234.56789, rel_tol=2**-29)
                assert got["zero"] == got["nan"] == got["inf"] == got["tiny"] == 0.0
                # Struct keys are strings; a lone surrogate cannot be UTF-8: U+FFFD.
                assert got["7"] == "int key" and 7 not in got
                assert got["lone"] == "a\ufffdb"
                # The real module cuts strings and bytes at NUL (C strings): its
                # stand-in does the same, what comes back is what the node saw.
                assert got["nul"] == "a" and got["bin_nul"] == b"a"
                # An int beyond 64 bits cannot go at all: the sender gets a clear error.
                try:
                    await run.send("node:echo/0", {"payload": 2**64})
                except binrpc.BinRpcError as exc:
                    assert "does not fit in 64 bits" in str(exc)
                    assert "node echo" in str(exc) and "Homegear binary RPC" in str(exc)
                else:
                    raise AssertionError("an int beyond 64 bits went on the binary wire")
                # From another node: reported as the echo node's error (catchable).
                await run.send("node:exact/0", {"payload": -(2**70)})
                caught = await run.sink.wait(reactor, 1, "caught")
                assert "does not fit in 64 bits" in caught[0]["message"]
                assert caught[0]["source"]["id"] == "echo"
                assert any(isinstance(e, ErrorEvent) for e in errors.events)
                # Events that cannot go are dropped for that node, counted and logged.
                run.daemon.registry.set_system_variable("huge", 2**80)
                await wait_until(reactor, lambda: run.state("echo")["events_dropped"] == 1,
                                 what="the dropped event", timeout=10.0)
                assert await run.send("node:echo/0", {"payload": "still fine"}) is None
        assert any("event system 0/-1/huge cannot be sent on Homegear binary RPC" in line
                   for line in logged(logs, level=LogLevel.warn))

    run_in_reactor(scenario, timeout=30)


def test_calls_to_a_node_time_out_and_delivery_goes_on(tmp_path: pathlib.Path) -> None:
    config = make_config(tmp_path, [
        node("stuck", "stuck.py", "binrpc", wires=[["test:sink/entered"]]),
    ], call_timeout=0.5)

    async def scenario(reactor: Any) -> None:
        async with running(reactor, config) as run:
            errors = Events(run.daemon, "error/node:stuck/#")
            first = run.send("node:stuck/0", {"payload": 1})
            second = run.send("node:stuck/0", {"payload": 2})
            # One at a time: the second goes only once the first timed out.
            assert await run.sink.wait(reactor, 1, "entered") == ["entered"]
            await wait_until(reactor, lambda: run.state("stuck")["queued"] == 1,
                             what="the second input queued in the daemon")
            assert run.state("stuck")["in_flight"] == 1
            try:
                await first
            except Exception as exc:
                assert "did not answer nodeInput within 0.5 s" in str(exc)
            else:
                raise AssertionError("the first input did not time out")
            assert await run.sink.wait(reactor, 2, "entered") == ["entered"] * 2
            assert any("the next input is sent" in e.message for e in errors.events
                       if isinstance(e, ErrorEvent))
            second.addErrback(lambda _: None)
            state = run.state("stuck")
            assert state["failed"] >= 1 and state["connected"]

    run_in_reactor(scenario, timeout=30)
