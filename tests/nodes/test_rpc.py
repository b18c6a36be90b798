"""RPC methods backed by the registry, with Homegear's fault codes, from real nodes on
both wires."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest

from hadaemon.nodes.rpc import adjust
from hadaemon.registry import UNKNOWN, ValueType
from hadaemon.testing import run_in_reactor, wait_until
from tests.nodes.helpers import WIRES, make_config, node, running

RAW = {"msgpack": "raw.py", "binrpc": "raw_binary.py"}
"""The test node that makes raw calls, per wire."""

# The demo plugin starts first in a fresh state directory: thermometer 1, lamp 2, button 3.
THERMOMETER, LAMP, BUTTON = 1, 2, 3

CALLS = [
    ["getValue", [LAMP, 0, "state"]],  # 1
    ["setValue", [LAMP, 0, "state", "!"]],
    ["getValue", [LAMP, 0, "brightness"]],
    ["setValue", [LAMP, 0, "brightness", "+=10"]],
    ["getDeviceDescription", [THERMOMETER]],  # 5
    ["getDeviceDescription", [THERMOMETER, 0, []]],
    ["setValue", [THERMOMETER, 0, "temperature", 3.0]],  # read-only
    ["getValue", [99, 0, "state"]],  # unknown device
    ["getValue", [LAMP, 7, "state"]],  # unknown channel
    ["getValue", [LAMP, 0, "colour"]],  # 10: unknown parameter
    ["setValue", [LAMP, 0, "brightness", 1000]],  # out of range
    ["setSystemVariable", ["mode", 1]],
    ["setValue", [0, -1, "mode", "+=41"]],
    ["getSystemVariable", ["mode"]],
    ["getAllSystemVariables", []],  # 15
    ["deleteSystemVariable", ["mode"]],
    ["getSystemVariable", ["mode"]],
    ["noSuchMethod", [1]],
    ["getVersion", []],
    ["getParamset", [LAMP, 0, "VALUES"]],  # 20
    ["putParamset", [LAMP, 0, "VALUES", {"state": False, "brightness": 5}]],
    ["getParamset", [LAMP, 0]],
    ["getParamset", [LAMP, 0, "LINK"]],
    ["getDeviceDescription", [LAMP, -1]],
    ["getDeviceDescription", [LAMP, 0, ["ADDRESS", "CHANNEL", "PARENT"]]],  # 25
    ["listDevices", [False, ["ID", "NAME"]]],
    ["getAllValues", [BUTTON]],
    ["writeLog", ["from a node", 4]],
    ["getValue", [BUTTON, 0, "action"]],  # never reported: None
    ["getParamsetDescription", [LAMP, 0]],  # 30
    ["getValue", [LAMP, 0]],  # missing parameter
]


@pytest.mark.parametrize("wire", WIRES)
def test_rpc_methods_and_fault_codes(tmp_path: pathlib.Path, wire: str) -> None:
    config = make_config(tmp_path, [
        node("rpc", RAW[wire], wire, info={"scenario": "calls", "calls": CALLS},
             wires=[["test:sink/answers"]]),
        node("client", "calls.py", wire, wires=[["test:sink/client"]]),
    ], plugins=("demo", "nodes"))

    async def scenario(reactor: Any) -> None:
        async with running(reactor, config) as run:
            answers = (await run.sink.wait(reactor, 1, "answers"))[0]
            assert len(answers) == len(CALLS)

            def ok(n: int) -> Any:
                error, result = answers[n - 1]
                assert error is None, (CALLS[n - 1], error)
                return result

            def fault(n: int) -> int:
                error, _result = answers[n - 1]
                assert error is not None and set(error) == {"faultCode", "faultString"}, (
                    CALLS[n - 1], error)
                return int(error["faultCode"])

            assert ok(1) is False
            assert ok(2) is None and ok(3) == 0
            assert ok(4) is None
            assert ok(5)["ADDRESS"] == "thermometer" and ok(6)["ADDRESS"] == "thermometer:0"
            assert fault(7) == -6
            assert fault(8) == -2 and fault(9) == -2 and fault(10) == -5
            assert fault(11) == -5
            assert ok(13) is None and ok(14) == 42 and ok(15) == {"mode": 42}
            assert ok(16) is None and fault(17) == -1
            assert fault(18) == -32601
            assert answers[17][0]["faultString"] == "Requested method not found."
            assert ok(19).startswith("hadaemon ")
            assert set(ok(20)) == {"state", "brightness"}
            assert ok(21) is None and set(ok(22)) == {"state", "brightness"}
            assert fault(23) == -3
            device = ok(24)
            assert device["ID"] == LAMP and device["ADDRESS"] == "lamp"
            assert device["FAMILY"] == "demo" and device["CHILDREN"] == ["lamp:0"]
            assert ok(25) == {"ADDRESS": "lamp:0", "CHANNEL": 0, "PARENT": "lamp"}
            assert ok(26) == [{"ID": 1, "NAME": "Demo thermometer"},
                              {"ID": 2, "NAME": "Demo lamp"}, {"ID": 3, "NAME": "Demo button"}]
            button = ok(27)
            assert button[0]["ID"] == BUTTON and button[0]["CHANNELS"][0]["INDEX"] == 0
            assert button[0]["CHANNELS"][0]["PARAMSET"]["action"]["VALUE"] is None
            assert ok(28) is None and ok(29) is None
            description = ok(30)
            assert description["brightness"]["TYPE"] == "INTEGER"
            assert description["brightness"]["MAX"] == 254
            assert description["state"]["OPERATIONS"] == 7
            assert fault(31) == -32602
            # The registry saw the writes.
            registry = run.daemon.registry
            await wait_until(reactor, lambda: registry.get_value(LAMP, 0, "brightness") == 5,
                             what="the lamp's brightness", timeout=10.0)
            # Through the homegear client: one call after the other, faults raise.
            for method, args in (
                ("setValue", [LAMP, 0, "brightness", "*=3"]),
                ("getValue", [LAMP, 0, "brightness"]),
                ("setValue", [LAMP, 0, "brightness", "-=0.4"]),
                ("getValue", [LAMP, 0, "brightness"]),
                ("getValue", [THERMOMETER, 0, "nothing"]),
            ):
                await run.send("node:client/0", {"payload": [method, args]})
            got = await run.sink.wait(reactor, 5, "client")
            assert got[:4] == [{"result": None}, {"result": 15}, {"result": None},
                               {"result": 15}]  # 14.6 rounds to an integer variable
            assert got[4]["type"] == "Exception" and "nothing" in got[4]["error"]

    run_in_reactor(scenario, timeout=30)


@pytest.mark.parametrize("wire", WIRES)
def test_a_node_reads_its_own_writes(tmp_path: pathlib.Path, wire: str) -> None:
    # The demo lamp confirms a write only after 30 s: every read below comes before that.
    calls = [
        ["getValue", [LAMP, 0, "brightness"]],
        ["setValue", [LAMP, 0, "brightness", 50]],
        ["getValue", [LAMP, 0, "brightness"]],
        ["setValue", [LAMP, 0, "brightness", "+=5"]],
        ["setValue", [LAMP, 0, "brightness", "+=5", False]],  # 5: not waiting for it
        ["getValue", [LAMP, 0, "brightness"]],
        ["setValue", [LAMP, 0, "state", "!"]],
        ["setValue", [LAMP, 0, "state", "!"]],
        ["getParamset", [LAMP, 0]],
        ["getAllValues", [LAMP]],  # 10
    ]
    config = make_config(tmp_path, [
        node("rpc", RAW[wire], wire, info={"scenario": "calls", "calls": calls},
             wires=[["test:sink/answers"]]),
    ], plugins=("demo", "nodes"), demo_latency=30.0)

    async def scenario(reactor: Any) -> None:
        async with running(reactor, config) as run:
            answers = (await run.sink.wait(reactor, 1, "answers"))[0]
            results = [result for error, result in answers]
            assert [error for error, _ in answers] == [None] * len(calls)
            assert results[0] == 0 and results[2] == 50
            assert results[5] == 60  # the two relative writes composed
            assert results[8] == {"state": False, "brightness": 60}  # toggled twice
            values = results[9][0]["CHANNELS"][0]["PARAMSET"]
            assert values["brightness"]["VALUE"] == 60
            # Nothing was confirmed: the registry keeps that apart from what is pending.
            brightness = run.daemon.registry.variable(LAMP, 0, "brightness")
            assert brightness.value == 0 and brightness.pending == 60

    run_in_reactor(scenario, timeout=30)


def test_value_adjustments_toggle_and_compute_and_refuse_what_cannot_apply() -> None:
    assert adjust(ValueType.BOOL, True, "!") is False
    assert adjust(ValueType.INT, 0, "!") == 1
    assert adjust(ValueType.INT, 10, "-=3") == 7
    assert adjust(ValueType.INT, 10, "/=4") == 2  # rounded for an integer variable
    assert adjust(ValueType.FLOAT, 10, "/=4") == 2.5
    assert adjust(ValueType.FLOAT, 1.5, "+= 1e1") == 11.5
    assert adjust(ValueType.STRING, "a", "+=1") == "+=1"  # strings are never adjusted
    assert adjust(ValueType.ANY, 5, "hello") == "hello"
    for current, value in ((UNKNOWN, "!"), ("text", "+=1"), (3, "/=0"), (UNKNOWN, "+=1")):
        try:
            adjust(ValueType.ANY, current, value)
        except Exception as exc:
            assert getattr(exc, "code", None) == -5
        else:
            raise AssertionError(f"{value!r} on {current!r} was accepted")
