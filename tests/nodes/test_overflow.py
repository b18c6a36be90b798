"""A node that stops reading its socket cannot make the daemon's memory grow."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest
from twisted.logger import LogLevel

from hadaemon.registry import Access, ChannelSpec, ValueType, VariableSpec
from hadaemon.testing import capture_logs, run_in_reactor, sleep, wait_until
from tests.nodes.helpers import WIRES, logged, make_config, node, running

RAW = {"msgpack": "raw.py", "binrpc": "raw_binary.py"}
DEAF = {"info": {"scenario": "no_read"}, "env": {"RAW_SCENARIO": "no_read"}}

MAX_BUFFER = 256 * 1024
EVENT_SIZE = 10_000
EVENTS = 20_000  # 200 MB of events for the deaf node


def rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


async def flood(run: Any, reactor: Any) -> None:
    registry = run.daemon.registry
    device = registry.add_device(
        "test", "flood", "Flood",
        [ChannelSpec(0, [VariableSpec("data", ValueType.STRING, Access.READ, is_event=True)])],
        owner=None,
    )
    for chunk in range(EVENTS // 1000):
        for i in range(1000):
            registry.report(device.peer_id, 0, "data", f"{chunk}-{i}-".ljust(EVENT_SIZE, "x"))
        await sleep(reactor, 0)


@pytest.mark.parametrize("wire", WIRES)
def test_events_to_a_node_that_does_not_read_are_dropped(
    tmp_path: pathlib.Path, wire: str
) -> None:
    config = make_config(tmp_path, [
        node("deaf", RAW[wire], wire, **DEAF),
        node("fine", "relay.py", info={"events_output": 0}, wires=[["test:sink/fine"]],
             events=["variable/system/#"]),
    ], max_buffer=MAX_BUFFER)

    async def scenario(reactor: Any) -> None:
        with capture_logs() as logs:
            async with running(reactor, config) as run:
                link = run.plugin.runtimes["deaf"].link
                assert link is not None
                before = rss()
                await flood(run, reactor)
                grown = rss() - before
                assert grown < 64 * 1024 * 1024, f"the daemon grew by {grown} bytes"
                assert link.pending_bytes <= MAX_BUFFER  # type: ignore[attr-defined]
                dropped = run.state("deaf")["events_dropped"]
                assert dropped > EVENTS * 0.9, dropped
                # Still connected (policy "drop"), and everyone else is served.
                assert run.state("deaf")["connected"]
                run.daemon.registry.set_system_variable("after", True)
                assert await run.sink.wait(reactor, 1, "fine") == [
                    ["system", 0, -1, "after", True]]
        warnings = [line for line in logged(logs, "hadaemon.plugin.nodes", LogLevel.warn)
                    if "does not read its socket" in line]
        assert warnings and len(warnings) <= 6  # reported, but not once per event

    run_in_reactor(scenario, timeout=60)


@pytest.mark.parametrize("wire", WIRES)
def test_a_node_that_does_not_read_is_disconnected_under_overflow_disconnect(
    tmp_path: pathlib.Path, wire: str
) -> None:
    config = make_config(tmp_path, [
        node("deaf", RAW[wire], wire, **DEAF)
    ], max_buffer=MAX_BUFFER, overflow="disconnect")

    async def scenario(reactor: Any) -> None:
        with capture_logs() as logs:
            async with running(reactor, config) as run:
                await flood(run, reactor)
                await wait_until(reactor, lambda: not run.state("deaf")["connected"],
                                 what="the disconnection", timeout=10.0)
                # The process itself is left alone (it may reconnect).
                assert run.state("deaf")["process"] == "running"
        assert any("deaf does not read its socket" in line and "disconnecting" in line
                   for line in logged(logs))

    run_in_reactor(scenario, timeout=60)
