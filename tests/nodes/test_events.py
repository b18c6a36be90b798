"""Registry changes reach every node's eventHandler (on both wires); nodes may opt into a
filter."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest

from hadaemon.registry import Access, ChannelSpec, ValueType, VariableSpec
from hadaemon.testing import run_in_reactor
from tests.nodes.helpers import WIRES, make_config, node, running


@pytest.mark.parametrize("wire", WIRES)
def test_every_change_reaches_every_node_unless_it_filters(
    tmp_path: pathlib.Path, wire: str
) -> None:
    config = make_config(tmp_path, [
        # ("announce": they say "started" once they have their startUpComplete, which
        # tells them where to send events)
        node("all1", "relay.py", wire, info={"events_output": 0, "announce": True},
             wires=[["test:sink/all1"]]),
        # (all2 stays on hadaemon's wire: both wires side by side get the same events)
        node("all2", "relay.py", info={"events_output": 0, "announce": True},
             wires=[["test:sink/all2"]]),
        node("temps", "relay.py", wire, info={"events_output": 0, "announce": True},
             wires=[["test:sink/temps"]], events=["variable/+/+/+/temperature"]),
        node("deaf", "relay.py", wire, info={"events_output": 0}, wires=[["test:sink/deaf"]],
             events=[]),
        node("runtime", "calls.py", wire, wires=[["test:sink/calls"]],
             events=["variable/system/#"]),
    ], plugins=("nodes", "demo"))

    async def scenario(reactor: Any) -> None:
        async with running(reactor, config) as run:
            # The binary wire's client runs events on a pool, in no order: an event must
            # not overtake the startUpComplete that configures the relay.
            for sink in ("all1", "all2", "temps"):
                assert (await run.sink.wait(reactor, 1, sink)) == ["started"], sink
            registry = run.daemon.registry
            sensor = registry.add_device(
                "zigbee2mqtt", "0x00158d0001", "Sensor",
                [ChannelSpec(1, [VariableSpec("temperature", ValueType.FLOAT, Access.READ),
                                 VariableSpec("battery", ValueType.INT, Access.READ)])],
                owner=None,
            )
            registry.report(sensor.peer_id, 1, "temperature", 21.5)
            registry.report(sensor.peer_id, 1, "battery", 97)
            registry.set_system_variable("mode", "away")
            thermometer = registry.find("demo", "thermometer")
            assert thermometer is not None
            registry.report(thermometer.peer_id, 0, "temperature", -3.25)
            expected = [
                ["zigbee2mqtt", sensor.peer_id, 1, "temperature", 21.5],
                ["zigbee2mqtt", sensor.peer_id, 1, "battery", 97],
                ["system", 0, -1, "mode", "away"],
                ["demo", thermometer.peer_id, 0, "temperature", -3.25],
            ]
            for sink in ("all1", "all2"):
                got = (await run.sink.wait(reactor, 5, sink))[1:]
                if sink == "all1" and wire == "binrpc":
                    # Homegear's client runs each event on its own pool thread: every
                    # change arrives once, in no promised order (docs/nodes.md).
                    assert sorted(map(repr, got)) == sorted(map(repr, expected))
                else:
                    assert got == expected  # in order on hadaemon's wire
            temps = (await run.sink.wait(reactor, 3, "temps"))[1:]
            assert [e[3] for e in temps] == ["temperature", "temperature"]
            assert run.sink.payloads("deaf") == []
            # A node may change its filter itself (hadaemon's extension, an ordinary RPC
            # call for the real module).
            await run.send("node:deaf/0", {"payload": "x"})  # (tags and outputs it)
            await run.sink.wait(reactor, 1, "deaf")
            await run.send("node:runtime/0", {"payload": ["setEventFilter",
                                                          [["variable/demo/#"]]]})
            assert (await run.sink.wait(reactor, 1, "calls"))[0] == {"result": None}
            await run.send("node:runtime/0", {"payload": ["setEventFilter", [["bad/#/x"]]]})
            error = (await run.sink.wait(reactor, 2, "calls"))[1]["error"]
            assert "invalid filter 'bad/#/x': '#' must be the last level" in error

    run_in_reactor(scenario, timeout=30)
