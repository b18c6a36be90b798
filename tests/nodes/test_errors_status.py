"""nodeLog, errors on the bus, catch nodes, status, and exceptions inside callbacks."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest
from twisted.logger import LogLevel

from hadaemon.bus import ErrorEvent, Level, StatusUpdate
from hadaemon.nodes import Fault
from hadaemon.testing import capture_logs, run_in_reactor, wait_until
from tests.nodes.helpers import WIRES, Events, logged, make_config, node, running


def call(method: str, *args: Any) -> dict[str, Any]:
    return {"payload": [method, list(args)]}


@pytest.mark.parametrize("wire", WIRES)
def test_node_log_levels_errors_and_catch_nodes(tmp_path: pathlib.Path, wire: str) -> None:
    config = make_config(tmp_path, [
        node("worker", "calls.py", wire, flow="f1", name="Worker",
             wires=[["test:sink/worker"]]),
        node("other", "calls.py", wire, flow="f2", wires=[["test:sink/other"]]),
        node("catcher", "relay.py", wire, flow="f1", catch="flow", info={"mode": "echo"},
             wires=[["test:sink/caught"]]),
        node("catch_all", "relay.py", flow="f3", catch="all", info={"mode": "echo"},
             wires=[["test:sink/caught_all"]]),
    ])

    async def scenario(reactor: Any) -> None:
        with capture_logs() as logs:
            async with running(reactor, config) as run:
                errors = Events(run.daemon, "error/#")
                for level in (1, 2, 3, 4, 5):
                    await run.send("node:worker/0", call("nodeLog", level, f"level {level}"))
                await run.send("node:other/0", call("nodeLog", 2, "elsewhere"))
                await run.sink.wait(reactor, 5, "worker")
                caught = await run.sink.wait(reactor, 3, "caught")
                assert [c["message"] for c in caught] == ["level 1", "level 2", "level 3"]
                assert caught[1] == {
                    "message": "level 2",
                    "source": {"id": "worker", "z": "f1", "type": "calls", "name": "Worker"},
                    "level": 20,
                }
                everything = await run.sink.wait(reactor, 4, "caught_all")
                assert sorted(c["message"] for c in everything) == [
                    "elsewhere", "level 1", "level 2", "level 3"]
                node_errors = [e for e in errors.events if isinstance(e, ErrorEvent)
                               and e.source.startswith("node:")]
                assert [(e.source, e.level) for e in node_errors[:3]] == [
                    ("node:worker", Level.CRITICAL), ("node:worker", Level.ERROR),
                    ("node:worker", Level.WARNING)]
                assert node_errors[0].details["flowId"] == "f1"
                assert node_errors[0].topic == "error/node:worker/critical"
            lines = logged(logs, "hadaemon.plugin.nodes.worker", LogLevel.debug)
            for level in range(1, 5):
                assert f"level {level}" in lines
            assert "level 5" not in lines  # debug is below the default level

    run_in_reactor(scenario, timeout=30)


@pytest.mark.parametrize("wire", WIRES)
def test_status_is_kept_and_published(tmp_path: pathlib.Path, wire: str) -> None:
    config = make_config(tmp_path, [node("n1", "calls.py", wire, wires=[["test:sink/out"]])])

    async def scenario(reactor: Any) -> None:
        async with running(reactor, config) as run:
            statuses = Events(run.daemon, "status/#")
            status = {"text": "Feeling great", "shape": "dot", "fill": "green"}
            await run.send("node:n1/0", call("nodeEvent", "status/n1", status))
            await run.sink.wait(reactor, 1, "out")
            assert run.state("n1")["status"] == status
            assert statuses.events == [StatusUpdate("nodes", "n1", status)]
            assert statuses.events[0].topic == "status/nodes/n1"
            await run.send("node:n1/0", call("nodeEvent", "status/n1", {}))
            await run.sink.wait(reactor, 2, "out")
            assert run.state("n1")["status"] == {}

    run_in_reactor(scenario, timeout=30)


def test_exceptions_in_callbacks_are_logged_and_reported(tmp_path: pathlib.Path) -> None:
    # hadaemon's client only: the real module loses them silently.
    config = make_config(tmp_path, [
        node("r", "raiser.py", wires=[["test:sink/out"]]),
        node("catcher", "relay.py", catch="flow", info={"mode": "echo"},
             wires=[["test:sink/caught"]]),
    ])

    async def scenario(reactor: Any) -> None:
        with capture_logs() as logs:
            async with running(reactor, config) as run:
                try:
                    await run.send("node:r/0", {"payload": "raise"})
                except Fault as fault:
                    assert "ValueError: input went wrong" in fault.message
                else:
                    raise AssertionError("the exception did not reach the sender")
                # The node keeps working, in order.
                await run.send("node:r/0", {"payload": "fine"})
                assert await run.sink.wait(reactor, 1, "out") == ["fine"]
                run.daemon.registry.set_system_variable("boom", 42)
                caught = await run.sink.wait(reactor, 2, "caught")
                assert {c["message"] for c in caught} == {
                    "nodeInput raised ValueError: input went wrong",
                    "eventHandler raised RuntimeError: event went wrong: 42",
                }
                await wait_until(reactor, lambda: any(
                    "RuntimeError: event went wrong" in line for line in logged(logs)),
                    what="the traceback on stderr", timeout=10.0)
            stderr = "\n".join(logged(logs, "hadaemon.plugin.nodes.r"))
            assert "Traceback (most recent call last)" in stderr
            assert 'raise ValueError("input went wrong")' in stderr

    run_in_reactor(scenario, timeout=30)
