"""A node whose nodeInput blocks still reads its socket: later inputs, events and the
answers to calls get through (real nodes; what docs/nodes.md promises of the callback
threads, kept while the client's reading and writing are made faster)."""

from __future__ import annotations

import pathlib
from typing import Any

from twisted.internet.defer import Deferred

from hadaemon.testing import run_in_reactor
from tests.nodes.helpers import Running, make_config, node, running


async def blocking(run: Any, reactor: Any) -> Deferred[Any]:
    """Send "block" and wait until the node's callback runs it (it says so first)."""
    pending = run.send("node:b/0", {"payload": "block"})
    pending.addErrback(lambda _: None)  # answered only once released
    await run.sink.wait(reactor, 1, "out")
    assert run.sink.payloads("out") == ["blocking"]
    return pending


def test_an_input_after_a_blocked_one_still_arrives(tmp_path: pathlib.Path) -> None:
    config = make_config(tmp_path, [node("b", "blocker.py", wires=[["test:sink/out"]])])

    async def scenario(reactor: Any) -> None:
        async with running(reactor, config) as run:
            await blocking(run, reactor)
            run.send("node:b/0", {"payload": "release"}).addErrback(lambda _: None)
            got = await run.sink.wait(reactor, 3, "out")
            assert got == ["blocking", "released", "unblocked"]

    run_in_reactor(scenario)


def test_an_event_reaches_a_node_whose_input_blocks(tmp_path: pathlib.Path) -> None:
    config = make_config(tmp_path, [node("b", "blocker.py", wires=[["test:sink/out"]],
                                         events=["variable/system/#"])])

    async def scenario(reactor: Any) -> None:
        async with running(reactor, config) as run:
            await blocking(run, reactor)
            run.daemon.registry.set_system_variable("release", True)
            got = await run.sink.wait(reactor, 3, "out")
            assert got == ["blocking", "event", "unblocked"]

    run_in_reactor(scenario)


def test_calls_from_inputs_are_answered(tmp_path: pathlib.Path) -> None:
    # Each input waits for a call's answer, which only the socket brings.
    config = make_config(tmp_path, [node("c", "calls.py", wires=[["test:sink/out"]])])

    async def scenario(reactor: Any) -> None:
        run: Running
        async with running(reactor, config) as run:
            for i in range(20):
                run.send("node:c/0", {"payload": ["setNodeData", ["k", i]]})
                run.send("node:c/0", {"payload": ["getNodeData", ["k"]]})
            got = await run.sink.wait(reactor, 40, "out")
            assert got[1::2] == [{"result": i} for i in range(20)]

    run_in_reactor(scenario)
