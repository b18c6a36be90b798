"""Node, flow and global data and node credentials: the right scope, kept across restarts,
and credentials never in the log; on both wires."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest
from twisted.logger import formatEvent

from hadaemon.testing import capture_logs, run_in_reactor
from tests.nodes.helpers import WIRES, make_config, node, running

SECRET = "hunter2-do-not-log-me"


def call(method: str, *args: Any) -> dict[str, Any]:
    return {"payload": [method, list(args)]}


async def results(run: Any, reactor: Any, address: str, *calls: dict[str, Any]) -> list[Any]:
    """Make calls through a calls.py node; its outputs (result or error) in order."""
    before = len(run.sink.payloads("out"))
    for message in calls:
        await run.send(address, message)
    got = await run.sink.wait(reactor, before + len(calls), "out")
    return got[before:]


@pytest.mark.parametrize("wire", WIRES)
def test_each_data_scope_survives_a_daemon_restart(tmp_path: pathlib.Path, wire: str) -> None:
    nodes = [
        node("a", "calls.py", wire, flow="f1", wires=[["test:sink/out"]]),
        node("b", "calls.py", wire, flow="f1", wires=[["test:sink/out"]]),
        node("c", "calls.py", wire, flow="f2", wires=[["test:sink/out"]]),
    ]
    config = make_config(tmp_path, nodes)
    big = 2**80 if wire == "msgpack" else 2**62  # the binary wire's ints are 64-bit

    async def first(reactor: Any) -> None:
        async with running(reactor, config) as run:
            assert await results(
                run, reactor, "node:a/0",
                call("setNodeData", "count", 3),
                call("setFlowData", "mode", "eco"),
                call("setGlobalData", "house", {"rooms": [1, 2], "big": big}),
                call("setNodeCredentials", {"password": SECRET}),
            ) == [{"result": None}] * 4

    async def second(reactor: Any) -> None:
        async with running(reactor, config) as run:
            got = await results(
                run, reactor, "node:a/0",
                call("getNodeData", "count"), call("getFlowData", "mode"),
                call("getGlobalData", "house"), call("getNodeCredentials"),
                call("getNodeData", ""),
            )
            assert got == [{"result": 3}, {"result": "eco"},
                           {"result": {"rooms": [1, 2], "big": big}},
                           {"result": {"password": SECRET}}, {"result": {"count": 3}}]
            # b shares a's flow and the global scope, not a's node data or credentials.
            got = await results(
                run, reactor, "node:b/0",
                call("getNodeData", "count"), call("getFlowData", "mode"),
                call("getGlobalData", "house"), call("getNodeCredentials"),
            )
            assert got == [{"result": None}, {"result": "eco"},
                           {"result": {"rooms": [1, 2], "big": big}}, {"result": {}}]
            # c is in another flow.
            got = await results(run, reactor, "node:c/0", call("getFlowData", "mode"),
                                call("getFlowData", ""))
            assert got == [{"result": None}, {"result": {}}]
            # Key "" with a dict replaces a whole scope.
            got = await results(run, reactor, "node:c/0",
                                call("setFlowData", "", {"x": 1, "y": 2}),
                                call("setFlowData", "", {"y": 3}),
                                call("getFlowData", ""))
            assert got[2] == {"result": {"y": 3}}
            store = run.daemon.store
            assert store.get("plugin/nodes/node/a/count") == 3
            assert store.get("plugin/nodes/flow/f1/mode") == "eco"
            assert "plugin/nodes/global/house" in store.keys("plugin/nodes/global/")

    run_in_reactor(first, timeout=30)
    run_in_reactor(second, timeout=30)


@pytest.mark.parametrize("wire", WIRES)
def test_credentials_never_reach_the_log(tmp_path: pathlib.Path, wire: str) -> None:
    config = make_config(tmp_path, [node("a", "calls.py", wire, wires=[["test:sink/out"]])])

    async def scenario(reactor: Any) -> None:
        with capture_logs() as logs:
            async with running(reactor, config) as run:
                got = await results(
                    run, reactor, "node:a/0",
                    call("setNodeCredentials", {"password": SECRET, "user": "me"}),
                    call("setNodeCredentials", {"token": SECRET + "2"}),
                    call("getNodeCredentials"),
                    # A value the store refuses: the error must not show it either.
                    call("setNodeCredentials", {"bad": [SECRET, {"deep": 1.5, 3: SECRET}],
                                                "key-" + SECRET: 1}),
                    call("setNodeCredentials", "not a dict " + SECRET),
                )
                assert got[:3] == [{"result": None}, {"result": None}, {
                    "result": {"password": SECRET, "user": "me", "token": SECRET + "2"}}]
                assert got[3] == {"result": None}  # those are plain values: stored
                assert "error" in got[4] and SECRET not in got[4]["error"]
        text = "\n".join(formatEvent(e) + repr(e) for e in logs)
        assert SECRET not in text
        raw = (tmp_path / "var" / "credentials.db").read_bytes()
        assert SECRET.encode() in raw  # it was stored, in the 0600 credentials store
        assert (tmp_path / "var" / "credentials.db").stat().st_mode & 0o777 == 0o600
        assert SECRET.encode() not in (tmp_path / "var" / "state.db").read_bytes()

    run_in_reactor(scenario, timeout=30)
