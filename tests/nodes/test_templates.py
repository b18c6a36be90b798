"""The seed's node templates run unchanged (only their syntax slips fixed)."""

from __future__ import annotations

import os
import pathlib
import signal
import sys
from typing import Any

import pytest
from twisted.internet.defer import Deferred

from hadaemon.nodes.client import CLIENT_DIR
from hadaemon.testing import capture_logs, run_in_reactor, wait_until
from tests.nodes.helpers import (
    BINCLIENT,
    NODES,
    SPAWNS,
    WIRES,
    Events,
    alive,
    logged,
    make_config,
    node,
    running,
)


@pytest.mark.parametrize("spawn", SPAWNS)
@pytest.mark.parametrize("wire", WIRES)
def test_seed_templates_start_get_startup_complete_and_stop(
    tmp_path: pathlib.Path, wire: str, spawn: str
) -> None:
    config = make_config(tmp_path, [
        node("template", "seed_template.py", wire),
        node("startup", "seed_startup.py", wire),
        node("asyncio", "seed_asyncio.py", wire),
    ], spawn=spawn)

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
            expected = []
            if wire == "binrpc" and sys.version_info >= (3, 12):
                # Homegear's own module (which the stand-in follows) gives the main thread
                # no event loop: there the seed's asyncio template warns on 3.12+, as it
                # would under Homegear. hadaemon's module does not (the msgpack case).
                expected = [f"{NODES / 'seed_asyncio.py'}:12: DeprecationWarning: There is"
                            " no current event loop", "  loop = asyncio.get_event_loop()"]
            assert logged(logs) == expected

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


@pytest.mark.parametrize("spawn", SPAWNS)
def test_how_a_node_is_started(tmp_path: pathlib.Path, spawn: str) -> None:
    fake_site = pathlib.Path(__file__).parent / "fake_site"
    config = make_config(tmp_path, [
        node("who", "whoami.py", wires=[["test:sink/who"]],
             env={"PYTHONPATH": str(fake_site)}),  # an installed "homegear" elsewhere
        node("real", "whoami.py", "binrpc", wires=[["test:sink/real"]]),
    ], spawn=spawn)

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
            # Its spawner armed the parent-death signal before exec (the client need
            # not load ctypes for it).
            assert report["death_signal"] == signal.SIGKILL
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
            assert real["death_signal"] == signal.SIGKILL
            assert real["homegear"] == str(BINCLIENT / "homegear.py")
            assert not real["token_in_env"] and real["hadaemon_env"] == []
            assert CLIENT_DIR not in real["path"]

    run_in_reactor(scenario, timeout=30)


async def answer(reactor: Any, sent: Deferred[Any]) -> Any:
    """What a node's nodeInput returned; fails after 20 s (a hung node never answers)."""
    await wait_until(reactor, lambda: sent.called, what="the node's answer", timeout=20.0)
    return await sent


def asyncio_template_with_output(directory: pathlib.Path) -> str:
    """The seed's asyncio template as a user fills it in: its nodeInputThreadSafe sends
    the message on output 0 (from the event loop's thread). Returns the file's path."""
    template = (NODES / "seed_asyncio.py").read_text()
    filled = template.replace(
        "    # Called for every new arriving message\n    pass",
        "    # Called for every new arriving message\n    hg.nodeOutput(0, message)")
    assert filled != template
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "seed_asyncio_output.py"
    path.write_text(filled)
    return str(path)


def templates_under_load(tmp_path: pathlib.Path, wire: str) -> Any:
    """The seed's templates, a filled-in asyncio template and a node slow to start (it
    connects once ``tmp_path / "start"`` exists), with demo device events every 50 ms
    from before any node connects."""
    return make_config(tmp_path, [
        node("template", "seed_template.py", wire),
        node("startup", "seed_startup.py", wire),
        node("asyncio", "seed_asyncio.py", wire),
        node("output", asyncio_template_with_output(tmp_path), wire,
             wires=[["test:sink/output"]]),
        node("slow", "slow_start.py", wire, env={"START_WHEN": str(tmp_path / "start")}),
    ], plugins=("demo", "nodes"), demo_interval=0.05, start_deadline=60.0)


async def templates_start_under_load(reactor: Any, workdir: pathlib.Path, wire: str) -> None:
    """One run of the scenario below: every node starts and answers, no error logged."""
    with capture_logs() as logs:
        async with running(reactor, templates_under_load(workdir, wire), wait=False) as run:
            events = Events(run.daemon, "variable/demo/#")
            runtimes = run.plugin.runtimes
            await wait_until(reactor, lambda: all(
                runtimes[i].ready for i in ("template", "startup", "asyncio", "output")
            ), what="the templates to connect", timeout=20.0)
            # 30 device events (0.75 s) reach them before startUpComplete can.
            before = len(events.events)
            await wait_until(reactor, lambda: len(events.events) >= before + 30,
                             what="30 device events", timeout=20.0)
            assert not run.plugin.startup_done
            (workdir / "start").touch()
            await run.ready(timeout=20.0)
            # Both asyncio nodes answer inputs, so their loops run: they got
            # startUpComplete in spite of the events blocked before it.
            for address in ("asyncio", "template", "startup"):
                assert await answer(reactor, run.send(f"node:{address}/0", {})) is None
            for i in range(5):
                sent = run.send("node:output/0", {"payload": i})
                assert await answer(reactor, sent) is None
            assert await run.sink.wait(reactor, 5, "output") == list(range(5))
            for node_id in ("template", "startup", "asyncio", "output", "slow"):
                state = run.state(node_id)
                assert state["process"] == "running" and state["restarts"] == 0
                assert state["events_dropped"] == 0
    assert logged(logs) == []


def test_templates_blocked_in_callbacks_before_start_up_complete_never_hang(
    tmp_path: pathlib.Path,
) -> None:
    # The asyncio template blocks every eventHandler (and nodeInput) until its main
    # thread runs the event loop, which it starts only after startUpComplete. Events
    # arrive before that (the slow node holds startUpComplete back): on one ordered event
    # thread, startUpComplete queued behind them and the node hung. (msgpack wire only:
    # the real client on the binary wire runs callbacks first come, first served on its
    # ten threads, so ten blocked events before startUpComplete hang it; see
    # docs/nodes.md.)
    async def scenario(reactor: Any) -> None:
        for attempt in range(20):
            await templates_start_under_load(reactor, tmp_path / f"run{attempt}", "msgpack")

    run_in_reactor(scenario, timeout=900)


INTERPRETERS = [sys.executable] + [
    path for path in ("/root/.pyenv/versions/3.12.1/bin/python3",
                      "/root/.pyenv/versions/3.13.0/bin/python3")
    if os.access(path, os.X_OK)
]
"""The daemon's Python and, where this machine has them, 3.12 and 3.13 (without msgpack:
the client's own codec)."""


@pytest.mark.parametrize("interpreter", INTERPRETERS)
def test_the_asyncio_template_runs_silently_with_deprecation_warnings_as_errors(
    tmp_path: pathlib.Path, interpreter: str
) -> None:
    # asyncio.get_event_loop() in the main thread without a loop set warns on 3.12 and
    # 3.13 ("There is no current event loop") and raises on 3.14; the client gives the
    # main thread the loop older Pythons did, without a warning.
    warnings_are_errors = {"PYTHONWARNINGS": "error::DeprecationWarning"}
    config = make_config(tmp_path, [
        node("asyncio", "seed_asyncio.py", interpreter=interpreter, env=warnings_are_errors),
        node("output", asyncio_template_with_output(tmp_path), interpreter=interpreter,
             env=warnings_are_errors, wires=[["test:sink/output"]]),
        node("template", "seed_template.py", interpreter=interpreter, env=warnings_are_errors),
    ])

    async def scenario(reactor: Any) -> None:
        with capture_logs() as logs:
            async with running(reactor, config) as run:
                assert await answer(reactor, run.send("node:asyncio/0", {})) is None
                assert await answer(reactor, run.send("node:output/0", {"payload": 7})) is None
                assert await run.sink.wait(reactor, 1, "output") == [7]
                for node_id in ("asyncio", "output", "template"):
                    assert run.state(node_id)["restarts"] == 0
        assert logged(logs) == []  # nothing on any node's stderr

    run_in_reactor(scenario, timeout=60)
