"""The seed's node templates run unchanged (only their syntax slips fixed)."""

from __future__ import annotations

import os
import pathlib
import signal
import sys
from typing import Any

import pytest

from hadaemon.nodes.client import CLIENT_DIR
from hadaemon.testing import capture_logs, run_in_reactor, wait_until
from tests.nodes.helpers import (
    BINCLIENT,
    NODES,
    WIRES,
    alive,
    logged,
    make_config,
    node,
    running,
)


@pytest.mark.parametrize("wire", WIRES)
def test_seed_templates_start_get_startup_complete_and_stop(
    tmp_path: pathlib.Path, wire: str
) -> None:
    config = make_config(tmp_path, [
        node("template", "seed_template.py", wire),
        node("startup", "seed_startup.py", wire),
        node("asyncio", "seed_asyncio.py", wire),
    ])

    async def scenario(reactor: Any) -> None:
        with capture_logs() as logs:
            async with running(reactor, config) as run:
                pids = {i: run.state(i)["pid"] for i in ("template", "startup", "asyncio")}
                # The asyncio template's nodeInput only returns once its event loop runs,
                # which it starts after receiving startUpComplete: an answer proves both.
                assert await run.send("node:asyncio/0", {"payload": 1}) is None
                assert await run.send("node:template/0", {"payload": 2}) is None
                assert await run.send("node:startup/0", {"payload": 3}) is None
                for node_id in pids:
                    state = run.state(node_id)
                    assert state["process"] == "running" and state["restarts"] == 0
            # Stopped: SIGTERM ended every template at once.
            for pid in pids.values():
                assert not alive(pid)
            assert logged(logs) == []

    run_in_reactor(scenario, timeout=30)


@pytest.mark.parametrize("wire", WIRES)
def test_startup_complete_waits_for_all_nodes_and_carries_node_info(
    tmp_path: pathlib.Path, wire: str
) -> None:
    config = make_config(tmp_path, [
        node("first", "relay.py", wire, info={"announce": True, "color": "blue"},
             wires=[["test:sink/first"]]),
        node("second", "relay.py", wire, info={"announce": True},
             wires=[["test:sink/second"]]),
    ])

    async def scenario(reactor: Any) -> None:
        async with running(reactor, config, wait=False) as run:
            first = (await run.sink.wait(reactor, 1, "first"))[0]
            second = (await run.sink.wait(reactor, 1, "second"))[0]
            assert first == second == "started"
            info = next(m for p, m in run.sink.messages if p == "first")["nodeInfo"]
            assert info["id"] == "first" and info["flowId"] == "flow"
            assert info["info"]["color"] == "blue"
            # Homegear's shape: the first wire per port; every wire under allWiresOut.
            assert info["wiresOut"] == [{"id": "test:sink/first", "port": 0}]
            assert info["wiresIn"] == [{}]
            assert info["allWiresOut"] == [[{"address": "test:sink/first"}]]
            # A node restarted later gets it right after its ping.
            old_pid = run.state("first")["pid"]
            os.kill(old_pid, signal.SIGKILL)
            await run.sink.wait(reactor, 2, "first")
            await wait_until(reactor, lambda: run.state("first")["process"] == "running",
                             what="the restarted node", timeout=10.0)
            assert run.state("first")["pid"] != old_pid
            assert run.state("first")["restarts"] == 1
            assert run.state("second")["restarts"] == 0

    run_in_reactor(scenario, timeout=30)


def test_how_a_node_is_started(tmp_path: pathlib.Path) -> None:
    fake_site = pathlib.Path(__file__).parent / "fake_site"
    config = make_config(tmp_path, [
        node("who", "whoami.py", wires=[["test:sink/who"]],
             env={"PYTHONPATH": str(fake_site)}),  # an installed "homegear" elsewhere
        node("real", "whoami.py", "binrpc", wires=[["test:sink/real"]]),
    ])

    async def scenario(reactor: Any) -> None:
        async with running(reactor, config) as run:
            report = (await run.sink.wait(reactor, 1, "who"))[0]
            socket_path = run.plugin.socket_path
            node_file = str(NODES / "whoami.py")
            # Executed directly: <python> <file> <socket> <node id>, nothing else, and no
            # token on the command line.
            assert report["cmdline"] == [sys.executable, node_file, socket_path, "who"]
            assert report["argv"] == [node_file, socket_path, "who"]
            assert report["leader"]  # its own process group
            assert report["homegear"].startswith(CLIENT_DIR)  # hadaemon's comes first
            assert not report["token_in_env"]  # the client took it out
            # (nor left the daemon's pid to the node's children)
            assert "HADAEMON_DAEMON_PID" not in report["hadaemon_env"]
            assert report["cwd"] == str(NODES)
            # A node on Homegear's binary wire imports the homegear module its Python has
            # (the real one; here the test stand-in), started the same way, and gets
            # nothing of hadaemon's: neither its module nor a token.
            real = (await run.sink.wait(reactor, 1, "real"))[0]
            assert real["cmdline"] == [sys.executable, node_file, socket_path, "real"]
            assert real["leader"] and real["cwd"] == str(NODES)
            assert real["homegear"] == str(BINCLIENT / "homegear.py")
            assert not real["token_in_env"] and real["hadaemon_env"] == []
            assert CLIENT_DIR not in real["path"]

    run_in_reactor(scenario, timeout=30)
