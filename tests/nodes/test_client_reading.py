"""The node client's reading thread runs inputs' callbacks itself and gives reading up
when a callback must wait (real nodes): what a node sees stays as docs/nodes.md
promises, in order, never concurrent, never on the main thread; what does not fit the
socket at once still goes out whole."""

from __future__ import annotations

import pathlib
from typing import Any

from hadaemon.testing import run_in_reactor
from tests.nodes.helpers import make_config, node, running


def test_inputs_with_calls_and_short_blocks_stay_in_order(tmp_path: pathlib.Path) -> None:
    # Every 7th input makes a call (reading goes to another thread while it waits), every
    # 50th blocks 20 ms: 700 inputs still arrive in order, none while another runs.
    config = make_config(tmp_path, [node("m", "mixed.py", wires=[["test:sink/out"]])])
    count = 700

    async def scenario(reactor: Any) -> None:
        async with running(reactor, config) as run:
            for i in range(count):
                run.send("node:m/0", {"payload": i}).addErrback(lambda _: None)
            await run.sink.wait(reactor, count, "out", timeout=60.0)
            messages = [m for p, m in run.sink.messages if p == "out"]
            assert [m["payload"] for m in messages] == list(range(count))
            assert not any(m["overlap"] for m in messages)
            assert all(m["thread"] != "MainThread" for m in messages)

    run_in_reactor(scenario, timeout=120)


def test_outputs_larger_than_the_socket_takes_at_once_arrive_whole(
    tmp_path: pathlib.Path,
) -> None:
    # An echo node outputs 3 MB messages from its inputs' callbacks: more than a Unix
    # socket takes in one send, so the rest is written after reading was handed over.
    config = make_config(tmp_path, [node("e", "relay.py", wires=[["test:sink/out"]],
                                         info={"mode": "echo"})])
    big = ["x" * (3 << 20), "y" * (3 << 20) + "z"]

    async def scenario(reactor: Any) -> None:
        async with running(reactor, config) as run:
            payloads = [big[0], "small", big[1], "last"]
            for payload in payloads:
                run.send("node:e/0", {"payload": payload}).addErrback(lambda _: None)
            got = await run.sink.wait(reactor, len(payloads), "out", timeout=30.0)
            assert [len(p) for p in got] == [len(p) for p in payloads]
            assert got == payloads

    run_in_reactor(scenario, timeout=60)
