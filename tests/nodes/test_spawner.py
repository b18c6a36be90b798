"""The spawner process that starts the nodes: what it reports, and its own death."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
from typing import Any

import pytest
from twisted.logger import LogLevel

from hadaemon.testing import capture_logs, run_in_reactor, wait_until
from tests.nodes.helpers import SPAWNS, alive, logged, make_config, node, running


def test_an_exec_error_is_logged_and_the_node_backs_off(tmp_path: pathlib.Path) -> None:
    wrapper = tmp_path / "python-nowhere"
    wrapper.write_text("#!/no/such/interpreter\n")  # executable, but exec fails
    wrapper.chmod(0o755)
    config = make_config(tmp_path, [
        node("bad", "relay.py", interpreter=str(wrapper)),
        node("good", "relay.py", info={"mode": "sum"}),
    ], start_deadline=0.5, restart_delay=30.0)

    async def scenario(reactor: Any) -> None:
        with capture_logs() as logs:
            async with running(reactor, config, wait=False) as run:
                await run.ready("good")
                await wait_until(reactor, lambda: run.state("bad")["process"] == "backoff",
                                 what="the node to back off", timeout=10.0)
                assert await run.send("node:good/0", {"payload": 1}) == [0, 1]
        lines = "\n".join(logged(logs))
        assert "cannot start node bad: [Errno 2] No such file or directory" in lines, lines
        assert "node bad exited unexpectedly (exit status 127)" in lines

    run_in_reactor(scenario, timeout=60)


@pytest.mark.parametrize("spawn", SPAWNS)
def test_a_killed_spawner_is_replaced_and_its_nodes_restarted(tmp_path: pathlib.Path,
                                                              spawn: str) -> None:
    config = make_config(tmp_path, [node("a", "relay.py", info={"mode": "sum"})], spawn=spawn,
                         restart_delay=0.05)

    async def scenario(reactor: Any) -> None:
        with capture_logs() as logs:
            async with running(reactor, config) as run:
                spawner, pid = run.plugin.reaper.pid, run.plugin.runtimes["a"].pid
                assert spawner is not None and pid is not None
                os.kill(spawner, signal.SIGKILL)
                await wait_until(reactor, lambda: run.plugin.runtimes["a"].pid not in (
                    None, pid) and run.plugin.runtimes["a"].ready,
                    what="the node to run again", timeout=20.0)
                assert run.plugin.reaper.pid not in (None, spawner)
                assert not alive(pid)  # it died with its spawner
                assert await run.send("node:a/0", {"payload": 2}) == [0, 2]
                assert run.state("a")["restarts"] == 1
        assert any("the node spawner exited unexpectedly" in line
                   for line in logged(logs, level=LogLevel.error))

    run_in_reactor(scenario, timeout=60)


def test_a_start_request_too_large_for_the_spawner_is_an_error(tmp_path: pathlib.Path) -> None:
    config = make_config(tmp_path, [
        node("big", "relay.py", env={"HUGE": "x" * 4_000_000}),
        node("good", "relay.py", info={"mode": "sum"}),
    ], start_deadline=0.5, restart_delay=30.0)

    async def scenario(reactor: Any) -> None:
        with capture_logs() as logs:
            async with running(reactor, config, wait=False) as run:
                await run.ready("good")  # the request after it went out all the same
                await wait_until(reactor, lambda: run.state("big")["process"] == "backoff",
                                 what="the node to back off", timeout=10.0)
        assert any("cannot start node big: the start request is too large" in line
                   for line in logged(logs))

    run_in_reactor(scenario, timeout=60)


def test_many_nodes_exiting_at_once_are_all_seen_to_exit(tmp_path: pathlib.Path) -> None:
    # A hundred processes that exit as soon as they started: every exit is reported
    # (the spawner handles exec results and exits in one batch of events).
    config = make_config(tmp_path, [
        node(f"n{i}", "relay.py", interpreter="/bin/true") for i in range(100)
    ], start_deadline=0.5, restart_delay=30.0)

    async def scenario(reactor: Any) -> None:
        async with running(reactor, config, wait=False) as run:
            await wait_until(reactor, lambda: all(
                run.state(f"n{i}")["process"] == "backoff" for i in range(100)),
                what="every node's exit", timeout=30.0)

    run_in_reactor(scenario, timeout=60)


def test_importing_the_spawner_leaves_the_importers_path_alone() -> None:
    """reaper_process drops its own directory from sys.path only when run as the
    spawner; imported (as the daemon does), it must not take the importer's first path
    entry (that broke plugins found by entry point in a directory put first)."""
    code = (
        "import sys; sys.path.insert(0, '/nonexistent-first'); "
        "import hadaemon.nodes.reaper_process; print(sys.path[0])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "/nonexistent-first"
