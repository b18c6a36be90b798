"""Node processes: restarts with backoff, crash loops, stubborn and stuck nodes."""

from __future__ import annotations

import itertools
import json
import pathlib
import time
from typing import Any

import pytest
from twisted.logger import LogLevel

from hadaemon.bus import Lifecycle, StatusUpdate
from hadaemon.nodes.dispatcher import CREDITS
from hadaemon.testing import capture_logs, run_in_reactor, wait_until
from tests.nodes.helpers import (
    WIRES,
    Events,
    alive,
    logged,
    make_config,
    node,
    running,
)


def test_a_node_that_crashes_at_start_backs_off_and_is_marked_crash_looping(
    tmp_path: pathlib.Path,
) -> None:
    config = make_config(
        tmp_path,
        [node("bad", "crash_at_start.py"), node("good", "relay.py", wires=[["test:sink/g"]])],
        restart_delay=0.05, restart_delay_max=0.4, crash_loop_restarts=4,
        crash_loop_window=30.0, start_deadline=0.5,
    )

    async def scenario(reactor: Any) -> None:
        with capture_logs() as logs:
            async with running(reactor, config, wait=False) as run:
                events = Events(run.daemon, "lifecycle/node:bad/#")
                statuses = Events(run.daemon, "status/nodes/bad")
                spawned: list[float] = []
                supervisor = run.plugin.supervisor
                assert supervisor is not None
                process = supervisor.processes["bad"]
                original = process.start

                def start() -> None:
                    spawned.append(time.monotonic())
                    original()

                process.start = start  # type: ignore[method-assign]
                # The deadline lets the good node start its flows although "bad" never
                # answers ping.
                await run.ready("good")
                await wait_until(reactor, lambda: run.state("bad")["crash_loop"],
                                 what="the crash loop", timeout=10)
                await wait_until(reactor, lambda: len(spawned) >= 5, what="more restarts",
                                 timeout=10.0)
                # Exponential backoff (0.05, 0.1, 0.2, then the 0.4 cap), not a spin: the
                # supervisor's decisions, then that each restart did wait (load can only
                # make a gap longer, so no upper bound on wall time).
                decided = [e.details["restart_in"] for e in events.events
                           if e.state == Lifecycle.FAILED]
                assert decided[:4] == pytest.approx([0.05, 0.1, 0.2, 0.4]), decided
                assert all(d == pytest.approx(0.4) for d in decided[3:]), decided
                gaps = [b - a for a, b in itertools.pairwise(spawned)]
                assert gaps[0] >= 0.09 and gaps[1] >= 0.18, gaps
                assert all(gap >= 0.35 for gap in gaps[2:]), gaps
                bad = run.state("bad")
                assert bad["process"] in ("backoff", "starting")
                assert "crash loop" in bad["status"]["text"]
                assert any(isinstance(e, Lifecycle) and e.state == "crash_loop"
                           for e in events.events)
                assert any(isinstance(e, StatusUpdate) and "crash loop" in e.status["text"]
                           for e in statuses.events)
                failed = [e for e in events.events if e.state == Lifecycle.FAILED]
                assert failed and failed[0].details["code"] == 1
                # The other node was never touched.
                good = run.state("good")
                assert good["restarts"] == 0 and good["process"] == "running"
                await run.send("node:good/0", {"payload": "still here"})
                assert await run.sink.wait(reactor, 1, "g") == ["still here"]
        lines = logged(logs, "hadaemon.plugin.nodes.bad", LogLevel.info)
        assert "about to fail" in lines  # stdout, at info
        assert "this node cannot start" in lines  # stderr, at error
        assert any("crash-looping" in line for line in logged(logs, level=LogLevel.critical))

    run_in_reactor(scenario, timeout=30)


@pytest.mark.parametrize("wire", WIRES)
def test_a_node_ignoring_sigterm_and_its_child_are_killed_after_the_grace_period(
    tmp_path: pathlib.Path, wire: str
) -> None:
    pids_file = tmp_path / "pids.json"
    config = make_config(
        tmp_path,
        [node("stubborn", "stubborn.py", wire, info={"pids": str(pids_file)}),
         node("polite", "seed_template.py", wire)],
        grace=0.5,
    )

    async def scenario(reactor: Any) -> float:
        with capture_logs() as logs:
            async with running(reactor, config) as run:
                await wait_until(reactor, pids_file.exists, what="the pids file",
                                 timeout=10.0)
                polite = run.state("polite")["pid"]
                started = time.monotonic()
            stopped = time.monotonic() - started
        # killed once the grace was over, not left to the plugin's stop limit
        assert "plugin nodes did not stop within" not in logs.text(), logs.text()
        pids = json.loads(pids_file.read_text())
        assert not alive(polite)
        assert not alive(pids["node"]), "the node survived"
        assert not alive(pids["child"]), "the node's child survived"
        return stopped

    stopped = run_in_reactor(scenario, timeout=30)
    assert stopped >= 0.5  # the grace was granted (load only makes it longer)


@pytest.mark.parametrize("wire", WIRES)
def test_a_node_that_never_answers_does_not_hold_up_the_others(
    tmp_path: pathlib.Path, wire: str
) -> None:
    config = make_config(tmp_path, [
        node("source", "relay.py", wire, outputs=1, info={"mode": "fanout"},
             wires=[["stuck", "test:sink/copy"]]),
        node("stuck", "stuck.py", wire, wires=[["test:sink/entered"]]),
        node("a", "relay.py", wire, wires=[["b"]]),
        node("b", "relay.py", wire, wires=[["test:sink/ab"]]),
    ], window=2, queue_size=5, stall_timeout=0.3)
    window = 2 if wire == "msgpack" else 1  # the binary wire's window is always 1
    limit = 4 * 5 + CREDITS  # the stuck node's queue: 4 x queue_size + its one sender's
    count = limit + 52

    async def scenario(reactor: Any) -> None:
        with capture_logs() as logs:
            async with running(reactor, config) as run:
                for i in range(count):
                    await run.send("node:source/0", {"payload": i})
                # The stuck node got its first input and never returned; on hadaemon's
                # wire the next one then started on another thread and got stuck too
                # (the window: 2)...
                assert await run.sink.wait(reactor, window, "entered") == ["entered"] * window
                # ...the source was held back once 5 waited for it, until the stuck
                # node was declared stalled; its window and queue (4 x 5 + CREDITS for
                # its one sender) are full, the rest was dropped, and every copy reached
                # the sink, in order.
                assert await run.sink.wait(reactor, count, "copy") == list(range(count))
                await wait_until(reactor, lambda: run.state("stuck")["dropped"] == 52 - window,
                                 what="the drops to be counted", timeout=10.0)
                stuck = run.state("stuck")
                assert stuck["in_flight"] == window and stuck["queued"] == limit
                # Other flows, events, calls: all unaffected.
                for i in range(50):
                    await run.send("node:a/0", {"payload": i})
                assert await run.sink.wait(reactor, 50, "ab") == list(range(50))
                run.daemon.registry.set_system_variable("ping", 1)
                await wait_until(reactor, lambda: run.daemon.store.get(
                    "plugin/nodes/node/stuck/last_event") == ["ping", 1],
                    what="the stuck node's event handler", timeout=10.0)
                # Bus senders get QueueFull at once.
                try:
                    await run.send("node:stuck/0", {"payload": "more"})
                except Exception as exc:
                    assert type(exc).__name__ == "QueueFull"
                else:
                    raise AssertionError("a full queue accepted a message")
            drops = [line for line in logged(logs, "hadaemon.plugin.nodes.source")
                     if "dropped" in line]
            assert drops and "message to node stuck input 0 dropped" in drops[0]
            assert len(drops) == 1  # throttled: one line for the flood
            stalled = logged(logs, "hadaemon.plugin.nodes.stuck")
            assert any("node stuck answered no input for 0.3 s" in line
                       for line in stalled), stalled

    run_in_reactor(scenario, timeout=30)


def test_an_exit_is_noticed_at_once_without_sigchld_or_closed_pipes(
    tmp_path: pathlib.Path,
) -> None:
    # run_in_reactor runs without signal handlers (as a daemon embedded in a thread
    # does): no SIGCHLD. The node closes its stdout and stderr well before it exits.
    config = make_config(tmp_path, [node("x", "exits.py")], restart_delay=0.05)

    async def scenario(reactor: Any) -> None:
        async with running(reactor, config) as run:
            pid = await run.send("node:x/0", {"payload": "hello"})
            assert pid == run.state("x")["pid"]
            assert await run.send("node:x/0", {"payload": "close"}) == pid
            # the daemon saw both pipes closed (it stopped reading them) ...
            process = run.plugin.supervisor.processes["x"]
            await wait_until(reactor, lambda: all(r._reader is None for r in process._readers),
                             what="the daemon to see the node's pipes closed")
            assert run.state("x")["pid"] == pid  # closed pipes alone mean nothing
            assert run.state("x")["restarts"] == 0
            run.send("node:x/0", {"payload": "exit"}).addErrback(lambda _f: None)
            # noticed at all (pipes closed long ago, no SIGCHLD): the timeout only guards
            await wait_until(reactor, lambda: run.state("x")["restarts"] == 1,
                             what="the exit to be noticed", timeout=30.0)
            assert run.state("x")["last_exit"] == 3
            await run.ready("x")
            assert await run.send("node:x/0", {"payload": "again"}) != pid

    run_in_reactor(scenario, timeout=30)
