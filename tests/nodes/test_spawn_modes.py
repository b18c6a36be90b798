"""How nodes are started: forked from the preloaded spawner (``[nodes] spawn = "fork"``,
the default) or exec'd afresh (``"exec"``). A forked node must look and behave as the
exec'd one does: the same node file reports its interpreter in both modes and the
reports must match; it ends the interpreter's ways and the logs must match; the spawner
falls back to exec where forking could not be faithful."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
from typing import Any

import pytest
from twisted.logger import LogLevel, formatEvent

from hadaemon.testing import capture_logs, run_in_reactor, wait_until
from tests.nodes.helpers import SPAWNS, WIRES, logged, make_config, node, running


def probe_reports(tmp_path: pathlib.Path, spawn: str, nodes: list[dict[str, Any]],
                  ) -> tuple[dict[str, Any], dict[str, int], list[str]]:
    """Each node's report (fresh.py, wired to test:sink/<id>), the reaper's count of
    nodes started by fork and by exec, and the debug log."""
    for table in nodes:
        table["wires"] = [[f"test:sink/{table['id']}"]]
    config = make_config(tmp_path, nodes, spawn=spawn)  # (one socket path for both)
    out: dict[str, Any] = {}
    started: dict[str, int] = {}

    async def scenario(reactor: Any) -> None:
        with capture_logs() as logs:
            async with running(reactor, config, wait=False) as run:
                await run.ready(timeout=60.0)  # (generous: a loaded CI)
                for table in nodes:
                    out[table["id"]] = (await run.sink.wait(reactor, 1, table["id"],
                                                            timeout=30.0))[0]
                assert run.plugin.reaper is not None
                started.update(run.plugin.reaper.started)
        out["log"] = logged(logs, level=LogLevel.info)

    run_in_reactor(scenario, timeout=120)
    return out, started, out.pop("log")


@pytest.mark.parametrize("wire", WIRES)
def test_a_forked_node_sees_what_an_execd_node_sees(tmp_path: pathlib.Path, wire: str) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    env = {"PROBE": "yes", "TZ": "Asia/Tokyo",
           # relative, empty (the cwd) and repeated entries, as a fresh interpreter takes them
           "PYTHONPATH": os.pathsep.join([str(lib), "", "lib", f"{lib}/../lib"])}
    reports = {}
    for mode in SPAWNS:
        table = node("probe", "fresh.py", wire)
        ahead = table.get("env", {}).get("PYTHONPATH")  # (binrpc: the test client's)
        table["env"] = {**env, "PYTHONPATH": os.pathsep.join(
            [ahead, env["PYTHONPATH"]] if ahead else [env["PYTHONPATH"]])}
        found, started, _ = probe_reports(tmp_path, mode, [table])
        reports[mode] = found["probe"]
        assert started == {"fork": 1 if mode == "fork" else 0,
                           "exec": 0 if mode == "fork" else 1}
    forked, execd = reports["fork"], reports["exec"]
    assert forked.pop("forked") and not execd.pop("forked")
    del forked["hash"], execd["hash"]  # (a seed each: the forked ones share the spawner's)
    assert forked == execd
    # And what that is, in absolute terms.
    script = str(pathlib.Path(__file__).parent / "nodes" / "fresh.py")
    assert forked["name"] == "__main__" and forked["file"] == script
    assert forked["argv"][0] == script and forked["orig_argv"][:2] == [sys.executable, script]
    assert forked["path"][0] == os.path.dirname(script)
    assert str(lib) in forked["path"] and os.path.dirname(script) in forked["path"][1:]
    assert forked["env"]["PROBE"] == "yes" and forked["cwd"] == os.path.dirname(script)
    assert forked["signals"]["SIGINT"] == "<built-in function default_int_handler>"
    assert forked["signals"]["SIGPIPE"] == "<Handlers.SIG_IGN: 1>"
    assert forked["signals"]["SIGTERM"] == "<Handlers.SIG_DFL: 0>"
    assert forked["signals"]["SIGCHLD"] == "<Handlers.SIG_DFL: 0>"
    assert forked["leader"] and forked["fds"] == []
    assert forked["asyncio"] == "asyncio ran" and forked["tz"] == ["JST", "JST"]
    assert forked["dunders"][-1]


ENDINGS = ("raise", "exit-text", "exit-5", "sigint-caught", "sigint", "sigterm")


def endings(tmp_path: pathlib.Path, spawn: str) -> dict[str, dict[str, Any]]:
    """Each way of ending: its stdout and stderr lines and its exit, as the daemon logs
    them."""
    broken = tmp_path / "broken.py"
    broken.write_text("print('never')\ndef (:\n")
    nodes = [node(how, "fresh.py", env={"FRESH_EXIT": how}) for how in ENDINGS]
    nodes.append(node("syntax", str(broken)))
    config = make_config(tmp_path, nodes, spawn=spawn, restart_delay=60.0,
                         start_deadline=0.5)
    out: dict[str, dict[str, Any]] = {}

    async def scenario(reactor: Any) -> None:
        with capture_logs() as logs:
            async with running(reactor, config, wait=False) as run:
                await wait_until(reactor, lambda: all(
                    run.state(t["id"])["process"] == "backoff" for t in nodes),
                    what="every node to end", timeout=60.0)
        for table in nodes:
            lines: dict[str, Any] = {"stdout": [], "stderr": [], "exit": []}
            for event in logs:
                if event.get("node") == table["id"] and "stream" in event:
                    lines[event["stream"]].append(event["line"])
                elif f"node {table['id']} exited" in (text := formatEvent(event)):
                    lines["exit"].append(text.split(";")[0])  # (not the restart delay)
            out[table["id"]] = lines

    run_in_reactor(scenario, timeout=120)
    return out


def test_a_forked_node_ends_as_an_execd_node_does(tmp_path: pathlib.Path) -> None:
    forked, execd = endings(tmp_path, "fork"), endings(tmp_path, "exec")
    assert forked == execd
    raised = forked["raise"]
    assert raised["stderr"][0] == "Traceback (most recent call last):"
    assert raised["stderr"][1].startswith('  File "') and "in <module>" in raised["stderr"][1]
    assert raised["stderr"][-1] == "ValueError: boom"
    assert raised["stdout"] == ["thread done", "atexit ran"]  # threads joined, then atexit
    assert raised["exit"] == ["node raise exited unexpectedly (exit status 1)"]
    assert forked["exit-text"]["stderr"] == ["bye"]
    assert forked["exit-text"]["exit"] == ["node exit-text exited unexpectedly (exit status 1)"]
    assert forked["exit-5"]["exit"] == ["node exit-5 exited unexpectedly (exit status 5)"]
    assert forked["sigint-caught"]["stdout"] == ["KeyboardInterrupt caught", "thread done",
                                                 "atexit ran"]
    assert forked["sigint-caught"]["exit"] == [
        "node sigint-caught exited unexpectedly (exit status 7)"]
    assert forked["sigint"]["stderr"][-1] == "KeyboardInterrupt"
    assert forked["sigint"]["stdout"] == ["thread done", "atexit ran"]
    assert forked["sigint"]["exit"] == ["node sigint exited unexpectedly (killed by SIGINT)"]
    assert forked["sigterm"]["stdout"] == ["thread done"]
    assert forked["sigterm"]["exit"] == ["node sigterm exited unexpectedly (killed by SIGTERM)"]
    syntax = forked["syntax"]
    assert syntax["stdout"] == [] and syntax["stderr"][-1].startswith("SyntaxError")
    assert "Traceback (most recent call last):" not in syntax["stderr"]


def test_the_spawner_execs_a_node_it_cannot_fork_faithfully(tmp_path: pathlib.Path) -> None:
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "fcntl.py").write_text("SHADOW = True\n")  # the spawner has the real one
    python = tmp_path / "python3"
    python.symlink_to(sys.executable)
    nodes = [
        node("plain", "fresh.py"),
        node("seeded", "fresh.py", env={"PYTHONHASHSEED": "7"}),
        node("shadowed", "fresh.py", env={"PYTHONPATH": str(shadow)}),
        node("other", "fresh.py", interpreter=str(python)),
        node("binary", "fresh.py", "binrpc"),
    ]
    reports, started, log = probe_reports(tmp_path, "fork", nodes)
    # Where fcntl is built in (Debian's python3), no file on the path can shadow it: the
    # node is forked, faithfully, and gets the built-in one as an exec'd node would.
    builtin = "fcntl" in sys.builtin_module_names
    assert {k: v["forked"] for k, v in reports.items()} == {
        "plain": True, "seeded": False, "shadowed": builtin, "other": False, "binary": True}
    assert started == {"fork": 2 + builtin, "exec": 3 - builtin}
    seeded = subprocess.run([sys.executable, "-c", "print(hash('zygote'))"], env={
        **os.environ, "PYTHONHASHSEED": "7"}, capture_output=True, text=True, check=True)
    assert reports["seeded"]["hash"] == int(seeded.stdout)  # its own seed, not the spawner's
    assert reports["shadowed"]["fcntl"] == ("built-in" if builtin else str(shadow / "fcntl.py"))
    text = "\n".join(log)
    assert "its environment sets PYTHONHASHSEED otherwise than the spawner's" in text
    assert (f"its path has another fcntl ({shadow / 'fcntl.py'})" in text) is not builtin
    assert f"its interpreter {python} is not the spawner's" in text
