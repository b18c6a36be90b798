"""The [nodes] section and flows.json import: what is accepted, and clear errors."""

from __future__ import annotations

import json
import pathlib
from typing import Any

from hadaemon.app import prepare
from hadaemon.config import read, validate
from hadaemon.nodes import FlowError, build_flows
from hadaemon.testing import run_in_reactor, wait_until
from tests.nodes.helpers import NODES, catalog, make_config, node, running

RELAY = str(NODES / "relay.py")


def check(tmp_path: pathlib.Path, nodes_section: dict[str, Any],
          daemon: dict[str, Any] | None = None) -> list[str]:
    """Every error ``hadaemon check`` would print for this [nodes] section."""
    sections = {"daemon": {"state_dir": str(tmp_path / "var"), "plugins": ["nodes"],
                           **(daemon or {})},
                "nodes": nodes_section}
    raw = read(sections, base_dir=tmp_path, environ={})
    config, errors = validate(raw, catalog().schemas())
    if errors:
        return [str(e) for e in errors]
    check_config = catalog().plugins["nodes"].factory.check_config  # type: ignore[attr-defined]
    return list(check_config(config.section("nodes"), config))


def test_a_good_config_has_no_errors(tmp_path: pathlib.Path) -> None:
    assert check(tmp_path, {"node": [
        node("a", "relay.py", wires=[["b", {"id": "b", "port": 1}, "service:x/y",
                                      {"address": "device:3", "payload_only": True}]]),
        node("b", "relay.py", inputs=2, info={"threshold": 20.5, "names": ["x"]}),
    ]}) == []


def test_errors_name_the_node_and_the_problem(tmp_path: pathlib.Path) -> None:
    errors = check(tmp_path, {"node": [
        node("a", "relay.py", wires=[["nobody"], [{"id": "b", "port": 3}]]),
        node("b", "relay.py", interpreter="no-such-python"),
        node("a", "relay.py", events=["variable/#/x"]),
        node("bad/id", "relay.py"),
    ]}, daemon={"stop_timeout": 20.0})
    text = "\n".join(errors)
    assert "[nodes].node[0] ('a').wires[0][0]: no node 'nobody'" in text
    assert "2 wire lists for 1 output(s)" in text
    assert "node 'b' has 1 input(s), no input 3" in text
    assert "interpreter 'no-such-python' not found" in text
    assert "node id 'a' is also used by [nodes].node[0]" in text
    assert "'#' must be the last level" in text
    assert "invalid node id 'bad/id'" in text
    assert "grace (30 s) plus 2 s to kill and reap does not fit in [daemon].stop_timeout" in text


def test_schema_errors_come_from_hadaemon_check(tmp_path: pathlib.Path) -> None:
    errors = check(tmp_path, {"grace": "long", "overflow": "explode", "node": [
        {"id": "x", "file": str(tmp_path / "missing.py"), "wires": [[5]],
         "info": {"when": __import__("datetime").date(2024, 1, 1)}},
    ]})
    text = "\n".join(errors)
    assert "[nodes].grace: expected a number" in text
    assert "[nodes].overflow: expected one of" in text
    assert "missing.py does not exist" in text
    assert "[nodes].node[0].wires[0][0]: expected a node id, a bus address" in text
    assert "dates and times cannot be passed to a node" in text


def test_each_node_chooses_its_wire(tmp_path: pathlib.Path) -> None:
    flows = tmp_path / "flows.json"
    flows.write_text(json.dumps([
        {"id": "t", "type": "tab"},
        {"id": "f1", "type": "real", "z": "t", "wires": []},
        {"id": "f2", "type": "ours", "z": "t", "wires": []},
    ]))
    sections = {"daemon": {"plugins": ["nodes"]}, "nodes": {
        "wire": "binrpc",  # the default of nodes that name none
        "node": [node("a", "relay.py"), {**node("b", "relay.py"), "wire": "msgpack"},
                 node("c", "relay.py", wire="binrpc")],
        "flows_file": str(flows),
        "types": {"real": RELAY, "ours": {"file": RELAY, "wire": "msgpack"}},
    }}
    config, errors = validate(read(sections, base_dir=tmp_path, environ={}),
                              catalog().schemas())
    assert not errors
    built, _warnings = build_flows(config.section("nodes"), tmp_path)
    assert {i: n.wire for i, n in built.nodes.items()} == {
        "a": "binrpc", "b": "msgpack", "c": "binrpc", "f1": "binrpc", "f2": "msgpack"}
    # Without [nodes].wire: hadaemon's own.
    assert check(tmp_path, {"node": [node("a", "relay.py")]}) == []
    errors = check(tmp_path, {"node": [{**node("a", "relay.py"), "wire": "xmlrpc"}]})
    assert any("[nodes].node[0].wire: expected one of" in e for e in errors), errors


def test_prepare_runs_the_plugin_check(tmp_path: pathlib.Path) -> None:
    # What `hadaemon check` does, with the plugin found through its entry point.
    prepared = prepare({
        "daemon": {"plugins": ["nodes"], "state_dir": "var"},
        "nodes": {"node": [node("a", "relay.py", wires=[["ghost"]])]},
    }, base_dir=tmp_path, environ={})
    assert any("no node 'ghost'" in e for e in prepared.errors), prepared.errors


FLOWS = [
    {"id": "tab1", "type": "tab", "label": "Living room"},
    {"id": "tab2", "type": "tab", "label": "Off", "disabled": True},
    {"id": "n1", "type": "python-relay", "z": "tab1", "name": "First", "wires": [
        [{"id": "n2", "port": 1}, "n3"],  # Node-BLUE {id, port} and Node-RED plain ids
        ["dbg"],
    ], "threshold": 5},
    {"id": "n2", "type": "python-relay", "z": "tab1", "wires": [["n3"]]},
    {"id": "n3", "type": "python-relay", "z": "tab1", "wires": []},
    {"id": "off", "type": "python-relay", "z": "tab1", "d": True, "wires": []},
    {"id": "intab2", "type": "python-relay", "z": "tab2", "wires": []},
    {"id": "dbg", "type": "debug", "z": "tab1"},
    {"id": "c1", "type": "catch", "z": "tab1", "scope": None, "wires": [[]]},
    {"id": "cfg", "type": "mqtt-broker", "broker": "localhost"},
]


def test_flows_json_import(tmp_path: pathlib.Path) -> None:
    flows = tmp_path / "flows.json"
    flows.write_text(json.dumps(FLOWS))
    raw = read({"daemon": {"plugins": ["nodes"]}, "nodes": {
        "flows_file": str(flows),
        "types": {"python-relay": RELAY, "catch": {"file": RELAY}},
    }}, base_dir=tmp_path, environ={})
    config, errors = validate(raw, catalog().schemas())
    assert not errors
    built, warnings = build_flows(config.section("nodes"), tmp_path)
    assert sorted(built.nodes) == ["c1", "n1", "n2", "n3"]
    n1 = built.nodes["n1"]
    assert n1.flow == "tab1" and n1.name == "First" and n1.outputs == 2
    assert [[str(t.address) for t in out] for out in n1.wires] == [
        ["node:n2/1", "node:n3/0"], []]
    assert built.nodes["n2"].inputs == 2  # its port 1 is wired
    assert built.nodes["c1"].catch == "flow"
    info = built.node_info("n1")
    assert info["info"]["threshold"] == 5 and info["flowId"] == "tab1"
    n3 = built.node_info("n3")
    assert n3["allWiresIn"] == [[{"id": "n1", "port": 0}, {"id": "n2", "port": 0}]]
    assert n3["wiresIn"] == [{"id": "n1", "port": 0}]  # Homegear's: the first wire only
    assert info["wiresOut"] == [{"id": "n2", "port": 1}, {}]
    text = "\n".join(warnings)
    assert "1 node(s) of type 'debug' skipped" in text
    assert "1 node(s) of type 'mqtt-broker'" not in text  # a config node: no flow
    assert "wire to 'dbg' dropped" in text


def test_flows_json_problems(tmp_path: pathlib.Path) -> None:
    flows = tmp_path / "flows.json"
    flows.write_text("[{not json")
    try:
        build_flows({"flows_file": flows, "types": {}}, tmp_path)
    except FlowError as exc:
        assert "cannot read flows" in str(exc)
    else:
        raise AssertionError("broken JSON was accepted")
    flows.write_text(json.dumps([{"id": "a", "type": "t", "z": "f",
                                  "wires": [[{"id": "b", "port": -1}, 5]]}]))
    try:
        build_flows({"flows_file": flows, "types": {"t": {"file": RELAY}}}, tmp_path)
    except FlowError as exc:
        assert "invalid port -1" in str(exc) and "expected a node id or {id, port}" in str(exc)
    else:
        raise AssertionError("bad wires were accepted")


def test_imported_flows_run(tmp_path: pathlib.Path) -> None:
    flows = tmp_path / "flows.json"
    flows.write_text(json.dumps([
        {"id": "t", "type": "tab"},
        {"id": "a", "type": "relay", "z": "t", "wires": [[{"id": "b", "port": 0}]]},
        {"id": "b", "type": "relay", "z": "t", "wires": [["c"]]},
        {"id": "c", "type": "relay", "z": "t", "wires": [], "mode": "echo"},
    ]))
    config = make_config(tmp_path, [], flows_file=str(flows), types={"relay": RELAY})

    async def scenario(reactor: Any) -> None:
        async with running(reactor, config) as run:
            assert await run.send("node:a/0", {"payload": 1}) == "ok"
            # c echoes, and its answer is not what a gets: check c's state instead (and
            # b's: its answer may come after c's).
            await wait_until(reactor, lambda: run.state("c")["delivered"] == 1, what="c's input",
                             timeout=10.0)
            await wait_until(reactor, lambda: run.state("b")["delivered"] >= 1,
                             what="b's answer", timeout=10.0)
            assert run.state("b")["delivered"] == 1

    run_in_reactor(scenario, timeout=30)
