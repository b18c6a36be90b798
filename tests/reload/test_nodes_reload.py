"""Hot reload of nodes: a saved node file restarts that node only (its data stays), broken
code keeps the old process, a failing new version is retried with the backoff, and a new
``[nodes]`` section adds, removes and rewires nodes while the others keep their pid.

Real node processes (their files written here), through the plugin's reload interface
(hadaemon.reload.interfaces) as the reload core calls it; the file watcher itself and the
config re-read are tested with the core (test_watch.py, test_config_reload.py)."""

from __future__ import annotations

import json
import pathlib
from collections.abc import Iterator
from typing import Any

import pytest

from hadaemon.app import prepare
from hadaemon.bus import ErrorEvent, Lifecycle
from hadaemon.bus.errors import UnknownDestination
from hadaemon.config import Config, read, validate
from hadaemon.daemon import Daemon
from hadaemon.nodes import NodesPlugin
from hadaemon.nodes.flows import FlowError
from hadaemon.reload.interfaces import Reconfigurable, WatchesFiles
from hadaemon.testing import run_in_reactor, sleep, wait_until, write_config
from tests.nodes.helpers import (
    LIVE_PLUGINS,
    WIRES,
    Events,
    Running,
    alive,
    catalog,
    kill_leftovers,
    node,
    running,
)

VERSIONED = '''\
import os
import sys
import time
{extra}
from homegear import Homegear

VERSION = {version!r}


def eventHandler(eventSource, peerId, channel, variableName, value):
    pass


def nodeInput(nodeInfo, inputIndex, msg):
    payload = msg.get("payload")
    if payload == "store":
        hg.setNodeData("n", "node data")
        hg.setFlowData("f", "flow data")
        hg.setGlobalData("g", "global data")
    if nodeInfo["wiresOut"] and nodeInfo["wiresOut"][0]:
        hg.nodeOutput(0, {{"payload": [VERSION, payload]}})
    return {{"version": VERSION, "pid": os.getpid(), "info": nodeInfo["info"].get("tag"),
            "wiresIn": nodeInfo["wiresIn"],
            "data": [hg.getNodeData("n"), hg.getFlowData("f"), hg.getGlobalData("g")]}}


hg = Homegear(sys.argv[1], eventHandler, sys.argv[2], nodeInput)
while hg.connected():
    time.sleep(1)
'''


def make_config(tmp_path: pathlib.Path, nodes: list[dict[str, Any]], reload: str = "off",
                **settings: Any) -> Config:
    """The nodes tests' config; the reload core off (these tests call the plugin's reload
    interface themselves), or "auto" (through the file watcher)."""
    sections: dict[str, Any] = {
        "daemon": {"state_dir": str(tmp_path / "var"), "plugins": ["nodes"],
                   "stop_timeout": 20.0, "reload": reload, "reload_settle": 0.02},
        "nodes": {"node": nodes, "grace": 3.0, **settings},
    }
    config, errors = validate(read(sections, base_dir=tmp_path, environ={}),
                              catalog().schemas())
    assert not errors, [str(e) for e in errors]
    return config


def write_node(path: pathlib.Path, version: Any, extra: str = "") -> pathlib.Path:
    path.write_text(VERSIONED.format(version=version, extra=extra))
    return path.resolve()


@pytest.fixture(autouse=True)
def no_leftover_nodes() -> Iterator[None]:
    """A test that fails half-way must not leave node processes behind."""
    yield
    leftovers = kill_leftovers()
    assert not leftovers, f"node process groups left running: {leftovers}"


async def ask(run: Running, node_id: str, payload: Any = "ask") -> dict[str, Any]:
    answer: dict[str, Any] = await run.send(f"node:{node_id}/0", {"payload": payload})
    return answer


def pid(run: Running, node_id: str) -> int:
    value = run.state(node_id)["pid"]
    assert isinstance(value, int)
    return value


def test_a_saved_node_file_restarts_only_that_node_and_its_data_stays(
    tmp_path: pathlib.Path,
) -> None:
    a = write_node(tmp_path / "a.py", 1)
    b = write_node(tmp_path / "b.py", 1)
    config = make_config(tmp_path, [
        node("a", str(a), flow="f"), node("b", str(b), flow="f"),
    ])

    async def scenario(reactor: Any) -> None:
        async with running(reactor, config) as run:
            plugin = run.plugin
            assert isinstance(plugin, WatchesFiles) and isinstance(plugin, Reconfigurable)
            assert {a, b} <= set(plugin.watched_files())
            stored = await ask(run, "a", "store")
            assert stored["version"] == 1
            before_a, before_b = pid(run, "a"), pid(run, "b")
            started = Events(run.daemon, "lifecycle/#")

            write_node(tmp_path / "a.py", 2)
            await plugin.files_changed(frozenset({a}))
            answer = await ask(run, "a")  # waits in a's queue until the new process is up
            assert answer["version"] == 2
            assert answer["pid"] != before_a and answer["pid"] == pid(run, "a")
            assert answer["data"] == ["node data", "flow data", "global data"]
            assert not alive(before_a)
            # b: same process, never stopped or started
            assert pid(run, "b") == before_b and (await ask(run, "b"))["pid"] == before_b
            assert {e.component for e in started.events if isinstance(e, Lifecycle)} == {
                "node:a"}

    run_in_reactor(scenario, timeout=60)


def test_a_node_file_that_does_not_compile_is_reported_and_the_old_process_runs_on(
    tmp_path: pathlib.Path,
) -> None:
    a = write_node(tmp_path / "a.py", 1)
    config = make_config(tmp_path, [node("a", str(a))])

    async def scenario(reactor: Any) -> None:
        async with running(reactor, config) as run:
            errors = Events(run.daemon, "error/#")
            before = pid(run, "a")
            a.write_text("def nodeInput(nodeInfo, inputIndex, msg)\n    pass\n")
            await run.plugin.files_changed(frozenset({a}))
            reported = [e for e in errors.events if isinstance(e, ErrorEvent)]
            assert len(reported) == 1
            assert reported[0].source == "node:a"
            assert reported[0].message.startswith(
                f"node a not reloaded, the previous version keeps running: {a}:1: "
                "SyntaxError: ")
            assert reported[0].details == {"file": str(a), "line": 1}
            answer = await ask(run, "a")
            assert (answer["version"], answer["pid"]) == (1, before)

            # A module it imports that is nowhere on its path: the same, named.
            write_node(tmp_path / "a.py", 2, extra="import json, no_such_module_here")
            await run.plugin.files_changed(frozenset({a}))
            assert errors.events[-1].message.endswith(  # type: ignore[attr-defined]
                f"{a}:4: ModuleNotFoundError: No module named 'no_such_module_here'")
            assert (await ask(run, "a"))["pid"] == before

            # A removed file: the same, named.
            a.unlink()
            await run.plugin.files_changed(frozenset({a}))
            assert "cannot read the node file" in errors.events[-1].message  # type: ignore[attr-defined]
            assert (await ask(run, "a"))["pid"] == before

            write_node(tmp_path / "a.py", 3)  # fixed: it goes through
            await run.plugin.files_changed(frozenset({a}))
            assert (await ask(run, "a"))["version"] == 3

    run_in_reactor(scenario, timeout=60)


def test_a_new_version_that_fails_at_start_is_retried_with_the_backoff_alone(
    tmp_path: pathlib.Path,
) -> None:
    a = write_node(tmp_path / "a.py", 1)
    b = write_node(tmp_path / "b.py", 1)
    config = make_config(tmp_path, [node("a", str(a)), node("b", str(b))],
                         restart_delay=0.05, restart_delay_max=0.2)

    async def scenario(reactor: Any) -> None:
        async with running(reactor, config) as run:
            lifecycle = Events(run.daemon, "lifecycle/node:a/#")
            before_b = pid(run, "b")
            # compiles and imports, but fails when it runs
            write_node(tmp_path / "a.py", 2, extra="raise RuntimeError('not today')")
            await run.plugin.files_changed(frozenset({a}))

            def failures() -> list[Lifecycle]:
                return [e for e in lifecycle.events if isinstance(e, Lifecycle)
                        and e.state == Lifecycle.FAILED]

            await wait_until(reactor, lambda: len(failures()) >= 3, 30,
                             "three failed starts of the new version")
            delays = [e.details["restart_in"] for e in failures()[:3]]
            assert delays == sorted(delays) and delays[0] < delays[-1]  # backing off
            assert (await ask(run, "b"))["pid"] == before_b  # the rest unaffected

            write_node(tmp_path / "a.py", 3)
            await run.plugin.files_changed(frozenset({a}))
            assert (await ask(run, "a"))["version"] == 3

    run_in_reactor(scenario, timeout=90)


def test_a_node_that_ignores_sigterm_is_killed_after_the_grace_and_reloaded(
    tmp_path: pathlib.Path,
) -> None:
    stubborn = "import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)"
    a = write_node(tmp_path / "a.py", 1, extra=stubborn)
    config = make_config(tmp_path, [node("a", str(a))], grace=0.5)

    async def scenario(reactor: Any) -> None:
        async with running(reactor, config) as run:
            before = pid(run, "a")
            write_node(tmp_path / "a.py", 2, extra=stubborn)
            await run.plugin.files_changed(frozenset({a}))
            answer = await ask(run, "a")
            assert answer["version"] == 2 and answer["pid"] != before
            assert not alive(before)
            assert run.state("a")["last_exit"] == -9  # SIGKILL

    run_in_reactor(scenario, timeout=60)


REPORTER = '''\
import os
import sys
import time
from homegear import Homegear


def eventHandler(eventSource, peerId, channel, variableName, value):
    pass


def nodeInput(nodeInfo, inputIndex, msg):
    hg.nodeOutput(0, {"payload": [os.getpid(), nodeInfo["wiresIn"]]})


hg = Homegear(sys.argv[1], eventHandler, sys.argv[2], nodeInput)
while hg.connected():
    time.sleep(1)
'''


@pytest.mark.parametrize("wire", WIRES)
def test_a_node_wired_anew_keeps_its_process_and_sees_its_new_node_info(
    tmp_path: pathlib.Path, wire: str,
) -> None:
    a = write_node(tmp_path / "a.py", 1)
    b = tmp_path / "b.py"
    b.write_text(REPORTER)
    reporter = node("b", str(b), wire, wires=[["test:sink/b"]])
    old = make_config(tmp_path, [node("a", str(a), wire), reporter])
    new = make_config(tmp_path, [node("a", str(a), wire, wires=[["b"]]), reporter])

    async def scenario(reactor: Any) -> None:
        async with running(reactor, old) as run:
            before = {n: pid(run, n) for n in "ab"}
            await run.send("node:b/0", {"payload": None})
            assert await run.sink.wait(reactor, 1, "b", timeout=30) == [[before["b"], [{}]]]
            await run.plugin.reconfigure(new.section("nodes"), new)
            await run.send("node:b/0", {"payload": None})
            assert (await run.sink.wait(reactor, 2, "b", timeout=30))[1] == [
                before["b"], [{"id": "a", "port": 0}]]
            # a restarted (its wire is its own setting)
            await wait_until(reactor, lambda: run.state("a")["pid"] not in (None, before["a"]),
                             30, "a's new process")

    run_in_reactor(scenario, timeout=60)


def test_a_new_nodes_section_adds_removes_rewires_and_keeps_the_other_pids(
    tmp_path: pathlib.Path,
) -> None:
    files = {n: write_node(tmp_path / f"{n}.py", 1) for n in "abcde"}

    def section(**nodes: dict[str, Any]) -> list[dict[str, Any]]:
        return [node(n, str(files[n]), **opts) for n, opts in nodes.items()]

    old = make_config(tmp_path, section(
        a={"wires": [["b"]]}, b={"wires": [["test:sink/b"]]}, c={}, d={"info": {"tag": 1}},
    ))
    new = make_config(tmp_path, section(
        a={"wires": [["e"]]}, b={"wires": [["test:sink/b"]]}, c={}, e={"wires": [["test:sink/e"]]},
    ))
    retagged = make_config(tmp_path, section(
        a={"wires": [["e"]]}, b={"wires": [["test:sink/b"]]}, c={"info": {"tag": 2}},
        e={"wires": [["test:sink/e"]]},
    ))
    broken = make_config(tmp_path, section(a={"wires": [["e"]]}, c={}))  # a's wire to nowhere

    async def scenario(reactor: Any) -> None:
        async with running(reactor, old) as run:
            plugin = run.plugin
            await ask(run, "a", "one")
            assert await run.sink.wait(reactor, 1, "b", timeout=30) == [[1, [1, "one"]]]
            pids = {n: pid(run, n) for n in "abcd"}

            await plugin.reconfigure(new.section("nodes"), new)
            await run.ready()
            assert set(plugin.runtimes) == {"a", "b", "c", "e"}
            assert pid(run, "c") == pids["c"]  # untouched: same process
            # a (its wire) restarted; b, which lost its wire in, has its new nodeInfo
            assert run.state("a")["pid"] != pids["a"]
            assert pid(run, "b") == pids["b"] and (await ask(run, "b"))["wiresIn"] == [{}]
            assert not alive(pids["d"])
            with pytest.raises(UnknownDestination):
                await ask(run, "d")
            await ask(run, "a", "two")  # now along the new wire, to e
            assert await run.sink.wait(reactor, 1, "e", timeout=30) == [[1, [1, "two"]]]
            assert [1, [1, "two"]] not in run.sink.payloads("b")  # (b answered "ask")

            # only the info of c changed: c restarts, with it; nobody else does
            now = {n: pid(run, n) for n in "abe"}
            await plugin.reconfigure(retagged.section("nodes"), retagged)
            assert (await ask(run, "c"))["info"] == 2
            assert {n: pid(run, n) for n in "abe"} == now

            # refused as a whole: nothing changes
            with pytest.raises(FlowError, match=r"no node 'e'"):
                await plugin.reconfigure(broken.section("nodes"), broken)
            assert set(plugin.runtimes) == {"a", "b", "c", "e"}
            assert {n: pid(run, n) for n in "abe"} == now

    run_in_reactor(scenario, timeout=90)


def test_a_saved_flows_json_is_applied_node_by_node(tmp_path: pathlib.Path) -> None:
    a = write_node(tmp_path / "a.py", 1)
    flows = tmp_path / "flows.json"

    def save(*nodes: tuple[str, str]) -> None:
        objects: list[dict[str, Any]] = [{"id": "t1", "type": "tab", "label": "one"}]
        objects += [{"id": i, "type": "versioned", "z": "t1", "name": name, "wires": []}
                    for i, name in nodes]
        flows.write_text(json.dumps(objects))

    save(("x", "ex"), ("y", "why"))
    config = make_config(tmp_path, [], flows_file=str(flows), types={"versioned": str(a)})

    async def scenario(reactor: Any) -> None:
        async with running(reactor, config) as run:
            plugin = run.plugin
            assert flows.resolve() in set(plugin.watched_files())
            before = {n: pid(run, n) for n in "xy"}
            save(("x", "ex"), ("y", "renamed"), ("z", "new"))
            await plugin.files_changed(frozenset({flows.resolve()}))
            assert set(plugin.runtimes) == {"x", "y", "z"}
            assert (await ask(run, "z"))["version"] == 1
            assert pid(run, "x") == before["x"]  # untouched
            assert pid(run, "y") != before["y"]  # its name (in its nodeInfo) changed

            flows.write_text("[{not json")  # refused: everything runs on
            await plugin.files_changed(frozenset({flows.resolve()}))
            assert set(plugin.runtimes) == {"x", "y", "z"}
            assert pid(run, "x") == before["x"]

    run_in_reactor(scenario, timeout=60)


async def answered_by(reactor: Any, run: Running, node_id: str, version: Any,
                      timeout: float = 30.0) -> dict[str, Any]:
    """Ask the node until its answer comes from ``version`` (the watcher is at work)."""
    deadline = reactor.seconds() + timeout
    while True:
        answer = await ask(run, node_id)
        if answer["version"] == version:
            return answer
        if reactor.seconds() > deadline:
            raise TimeoutError(f"node {node_id} still answers as version {answer['version']}")
        await sleep(reactor, 0.01)


def test_through_the_watcher_a_saved_node_file_is_reloaded_and_a_broken_one_reported(
    tmp_path: pathlib.Path,
) -> None:
    a = write_node(tmp_path / "a.py", 1)
    b = write_node(tmp_path / "b.py", 1)
    config = make_config(tmp_path, [node("a", str(a)), node("b", str(b))], reload="auto")

    async def scenario(reactor: Any) -> None:
        async with running(reactor, config) as run:
            errors = Events(run.daemon, "error/node:a/#")
            before_b = pid(run, "b")
            await answered_by(reactor, run, "a", 1)
            write_node(tmp_path / "a.py", 2)
            await answered_by(reactor, run, "a", 2)
            running_pid = pid(run, "a")

            a.write_text("def broken(:\n")
            await wait_until(reactor, lambda: errors.events, 30, "the error of a's file")
            assert f"{a}:1: SyntaxError" in errors.events[0].message  # type: ignore[attr-defined]
            answer = await ask(run, "a")
            assert (answer["version"], answer["pid"]) == (2, running_pid)

            write_node(tmp_path / "a.py", 3)
            await answered_by(reactor, run, "a", 3)
            assert pid(run, "b") == before_b

    run_in_reactor(scenario, timeout=90)


def test_hadaemon_reload_applies_nodes_and_services_in_place_or_refuses_with_check_messages(
    tmp_path: pathlib.Path,
) -> None:
    """Through the reloader, from a real config file: what ``hadaemon reload`` does."""
    files = {n: write_node(tmp_path / f"{n}.py", 1) for n in "abc"}
    (tmp_path / "services").mkdir()
    (tmp_path / "services" / "Echo.py").write_text(
        "from base_service import CustomService\n\n"
        "class Echo(CustomService):\n"
        "    async def colour(self, msg):\n"
        "        return self.GetPropertyValue('static', 'colour')\n")
    path = tmp_path / "hadaemon.toml"

    def save(nodes: list[dict[str, Any]], colour: str) -> None:
        write_config(path, {
            "daemon": {"state_dir": "state", "plugins": ["nodes", "services"],
                       "reload": "off", "stop_timeout": 20.0},
            "nodes": {"grace": 3.0, "node": nodes},
            "services": {"directories": ["services"],
                         "service": {"Echo": {"static": {"colour": colour}}}},
        })

    save([{"id": "a", "file": str(files["a"]), "wires": [["b"]]},
          {"id": "b", "file": str(files["b"])}], "red")

    async def scenario(reactor: Any) -> None:
        prepared = prepare(str(path), strict=False)
        prepared.raise_for_errors()
        daemon = Daemon(prepared.config, reactor, catalog=prepared.catalog)
        daemon.startService()
        try:
            await daemon.started
            plugin = daemon.plugin("nodes")
            assert isinstance(plugin, NodesPlugin)
            LIVE_PLUGINS.append(plugin)
            run = Running(reactor, daemon)
            await run.ready()
            services = daemon.plugin("services")
            pids = {n: pid(run, n) for n in "ab"}

            # c added; a, b, Echo untouched but for Echo's colour
            save([{"id": "a", "file": str(files["a"]), "wires": [["b"]]},
                  {"id": "b", "file": str(files["b"])},
                  {"id": "c", "file": str(files["c"])}], "blue")
            result = await daemon.reloader.reload_config()
            assert result.applied, result.errors
            assert sorted(result.reconfigured) == ["nodes", "services"]
            assert result.restarted == []
            assert daemon.plugin("nodes") is plugin and daemon.plugin("services") is services
            assert (await ask(run, "c"))["version"] == 1
            assert {n: pid(run, n) for n in "ab"} == pids
            assert await daemon.bus.send("service:echo_py/colour", None) == "blue"

            # what hadaemon check refuses: refused with its message, nothing changes
            save([{"id": "a", "file": str(files["a"]), "wires": [["nowhere"]]}], "green")
            result = await daemon.reloader.reload_config()
            assert not result.applied
            assert any("[nodes].node[0] ('a').wires[0][0]: no node 'nowhere'" in e
                       for e in result.errors), result.errors
            assert set(plugin.runtimes) == {"a", "b", "c"}
            assert {n: pid(run, n) for n in "ab"} == pids
            assert await daemon.bus.send("service:echo_py/colour", None) == "blue"
        finally:
            await daemon.stopService()

    run_in_reactor(scenario, timeout=90)
