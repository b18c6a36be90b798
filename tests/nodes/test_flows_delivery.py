"""Messages along wires between real node processes: flows, inputs, fan-out, order.

Every test runs on both node wires (hadaemon's msgpack-rpc client, and Homegear binary
RPC through the test client that speaks it as the real module does)."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest

from hadaemon.testing import run_in_reactor, wait_until
from tests.nodes.helpers import WIRES, make_config, node, running


@pytest.mark.parametrize("wire", WIRES)
def test_two_and_three_node_flows(tmp_path: pathlib.Path, wire: str) -> None:
    config = make_config(tmp_path, [
        # a -> b -> sink/two ; c -> d -> e -> sink/three
        node("a", "relay.py", wire, wires=[[{"id": "b", "port": 0}]]),
        node("b", "relay.py", wire, wires=[["test:sink/two"]]),
        node("c", "relay.py", wire, wires=[["d"]]),
        node("d", "relay.py", wire, wires=[[{"id": "e"}]]),
        node("e", "relay.py", wire, wires=[[{"address": "test:sink/three"}]]),
    ])

    async def scenario(reactor: Any) -> None:
        async with running(reactor, config) as run:
            # (the real client answers every nodeInput with Void)
            answer = await run.send("node:a/0", {"payload": 1, "keep": "me"})
            assert answer == ("ok" if wire == "msgpack" else None)
            await run.send("node:c", {"payload": 2})  # no path: input 0
            two = await run.sink.wait(reactor, 1, "two")
            three = await run.sink.wait(reactor, 1, "three")
            assert two == [1] and three == [2]
            msg_two = run.sink.messages[[p for p, _ in run.sink.messages].index("two")][1]
            # The node's own keys survive, payload is kept, source is the first sender.
            assert msg_two["keep"] == "me"
            assert msg_two["path"] == [["a", 0], ["b", 0]]
            assert msg_two["source"] == "a"
            msg_three = next(m for p, m in run.sink.messages if p == "three")
            assert msg_three["path"] == [["c", 0], ["d", 0], ["e", 0]]

    run_in_reactor(scenario, timeout=30)


@pytest.mark.parametrize("wire", WIRES)
def test_multiple_inputs_and_fan_out(tmp_path: pathlib.Path, wire: str) -> None:
    config = make_config(tmp_path, [
        # "split" sends every message to all three of its outputs: two go to the two
        # inputs of "join", one to the sink. "join" tags the input it got it on and
        # outputs on the output of the same index.
        node("split", "relay.py", wire, outputs=3, info={"mode": "fanout"}, wires=[
            [{"id": "join", "port": 0}],
            [{"id": "join", "port": 1}, "test:sink/direct"],
            ["test:sink/direct2", "test:sink/direct3"],
        ]),
        node("join", "relay.py", wire, inputs=2, outputs=2,
             wires=[["test:sink/in0"], ["test:sink/in1"]]),
    ])

    async def scenario(reactor: Any) -> None:
        async with running(reactor, config) as run:
            await run.send("node:split/0", {"payload": "x"})
            for path in ("in0", "in1", "direct", "direct2", "direct3"):
                assert await run.sink.wait(reactor, 1, path) == ["x"]
            by_path = {p: m for p, m in run.sink.messages}
            assert by_path["in0"]["path"] == [["join", 0]]
            assert by_path["in1"]["path"] == [["join", 1]]
            # Every destination got a copy of its own.
            assert "path" not in by_path["direct"]
            info = run.plugin.flows.node_info("join")
            assert info["allWiresIn"] == [[{"id": "split", "port": 0}],
                                          [{"id": "split", "port": 1}]]
            split = run.plugin.flows.node_info("split")
            # Every wire of every port under allWiresOut; wiresOut keeps Homegear's
            # shape, the first wire of each port.
            assert split["allWiresOut"][1] == [{"id": "join", "port": 1},
                                               {"address": "test:sink/direct"}]
            assert len(split["allWiresOut"][2]) == 2
            assert split["wiresOut"][1] == {"id": "join", "port": 1}

    run_in_reactor(scenario, timeout=30)


@pytest.mark.parametrize("wire", WIRES)
def test_order_is_kept_and_inputs_never_overlap(tmp_path: pathlib.Path, wire: str) -> None:
    # A window of 4 messages in flight (on the binary wire always 1: the real client runs
    # the daemon's calls on a pool of ten threads); 500 messages pass a -> b in order.
    config = make_config(tmp_path, [
        node("a", "relay.py", wire, wires=[["b"]]),
        node("b", "relay.py", wire, wires=[["test:sink/out"]]),
    ], window=4)

    async def scenario(reactor: Any) -> None:
        async with running(reactor, config) as run:
            for i in range(500):
                run.daemon.bus.post("node:a/0", {"payload": i})
            got = await run.sink.wait(reactor, 500, "out", timeout=20)
            assert got == list(range(500))
            assert not any("overlap" in m for _p, m in run.sink.messages)
            # b's last answer may come after its last output has reached the sink.
            await wait_until(reactor, lambda: run.state("b")["delivered"] >= 500,
                             what="b's last answer", timeout=10.0)
            state = run.state("b")
            assert state["delivered"] == 500 and state["dropped"] == 0

    run_in_reactor(scenario, timeout=40)


def test_node_answer_is_the_bus_senders_result(tmp_path: pathlib.Path) -> None:
    config = make_config(tmp_path, [node("calc", "relay.py", inputs=3,
                                         info={"mode": "sum"})])

    async def scenario(reactor: Any) -> None:
        async with running(reactor, config) as run:
            assert await run.send("node:calc/2", {"payload": 7}) == [2, 7]
            # Anything on the bus may send; a non-dict becomes the payload.
            assert await run.send("node:calc/1", "plain") == [1, "plain"]
            for bad in ("node:calc/3", "node:calc/x"):
                try:
                    await run.send(bad, {"payload": 1})
                except ValueError as exc:
                    assert "input index" in str(exc)
                else:
                    raise AssertionError(f"{bad} was accepted")
            try:
                await run.send("node:calc/0", {"payload": {1, 2}})
            except TypeError as exc:
                assert "set" in str(exc)
            else:
                raise AssertionError("a set was accepted")

    run_in_reactor(scenario, timeout=30)


@pytest.mark.parametrize("wire", WIRES)
def test_a_fast_sender_is_slowed_to_its_destination_not_dropped(
    tmp_path: pathlib.Path, wire: str
) -> None:
    # 300 messages flat out into a node taking 2 ms each, with room for 10 waiting (40 at
    # most): the sender is held back instead of losing 250 of them.
    config = make_config(tmp_path, [
        node("fast", "relay.py", wire, info={"mode": "burst"}, wires=[["slow"]]),
        node("slow", "relay.py", wire, info={"mode": "slow", "delay": 0.002, "output": 0},
             wires=[["test:sink/out"]]),
    ], queue_size=10, window=4)

    async def scenario(reactor: Any) -> None:
        async with running(reactor, config) as run:
            await run.send("node:fast/0", {"payload": 300})
            got = await run.sink.wait(reactor, 300, "out", timeout=20)
            assert got == list(range(300))
            assert run.state("slow")["dropped"] == 0

    run_in_reactor(scenario, timeout=40)


@pytest.mark.parametrize("wire", WIRES)
def test_a_cycle_of_full_nodes_does_not_deadlock(tmp_path: pathlib.Path, wire: str) -> None:
    # Tokens bounce between a and b until their count runs out. With tiny queues both
    # fill up: were each held for the other, both would wait forever (until the stall
    # timeout, set far beyond the test's patience here).
    config = make_config(tmp_path, [
        node("source", "relay.py", wire, info={"mode": "burst", "modulo": 30}, wires=[["a"]]),
        node("a", "relay.py", wire, outputs=2, info={"mode": "countdown"},
             wires=[["b"], ["test:sink/done"]]),
        node("b", "relay.py", wire, outputs=2, info={"mode": "countdown"},
             wires=[["a"], ["test:sink/done"]]),
    ], queue_size=5, window=2, stall_timeout=120.0)

    async def scenario(reactor: Any) -> None:
        async with running(reactor, config) as run:
            # 400 tokens of 0 to 29 hops each: 5,800 hops through queues of 5.
            await run.send("node:source/0", {"payload": 400})
            await wait_until(reactor, lambda: len(run.sink.payloads("done")) + sum(
                run.state(n)["dropped"] for n in ("a", "b")) >= 400,
                what="every token to finish or be dropped", timeout=40)
            assert all(p <= 0 for p in run.sink.payloads("done"))

    run_in_reactor(scenario, timeout=60)
