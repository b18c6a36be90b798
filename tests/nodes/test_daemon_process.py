"""The daemon as a process (`hadaemon run`): nodes never outlive it, even a SIGKILL: on
either wire, whether or not the node imports a homegear module at all."""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import re
import signal
import subprocess
import sys

import pytest

from hadaemon.nodes.client import CLIENT_DIR
from hadaemon.testing import ChildProcesses, DaemonProcess, poll_until, write_config
from tests.nodes.helpers import BINCLIENT, NODES, SPAWNS, alive

PLUGIN = (
    "# The nodes plugin, found through a plugin directory (as before its entry point).\n"
    "from hadaemon.nodes import NodesPlugin\n\n\n"
    "class Nodes(NodesPlugin):\n"
    "    name = 'nodes'\n"
)


def start(
    tmp_path: pathlib.Path, processes: ChildProcesses, spawn: str = "fork"
) -> tuple[DaemonProcess, dict[str, int]]:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "nodes_plugin.py").write_text(PLUGIN)
    pids_file = tmp_path / "pids.json"
    binary_pids_file = tmp_path / "binary-pids.json"
    plain_pid_file = tmp_path / "plain.pid"
    binary = {"wire": "binrpc", "env": {"PYTHONPATH": str(BINCLIENT)}}
    config = write_config(tmp_path / "hadaemon.toml", {
        "daemon": {"state_dir": "var", "plugin_dirs": ["plugins"], "plugins": ["nodes"],
                   "stop_timeout": 10.0},
        "nodes": {"grace": 1.0, "start_deadline": 0.5, "spawn": spawn, "node": [
            {"id": "template", "file": str(NODES / "seed_template.py")},
            {"id": "stubborn", "file": str(NODES / "stubborn.py"),
             "info": {"pids": str(pids_file)}},
            # The same on Homegear's binary wire: the real client cannot arm a
            # parent-death signal, the spawner does it (for every node).
            {"id": "binary", "file": str(NODES / "stubborn.py"),
             "info": {"pids": str(binary_pids_file)}, **binary},
            # No homegear module at all: its spawner's signal and the reaper.
            {"id": "plain", "file": str(NODES / "plain.py"),
             "env": {"PLAIN_PID_FILE": str(plain_pid_file)}},
        ]},
    })
    daemon = DaemonProcess(config, processes=processes).start(timeout=30)
    files = (pids_file, binary_pids_file, plain_pid_file)
    poll_until(lambda: all(f.exists() for f in files), 30.0, "the nodes' pid files")
    stubborn = json.loads(pids_file.read_text())
    binary_stubborn = json.loads(binary_pids_file.read_text())
    found = dict(re.findall(r"node (\w+) started: pid (\d+)", daemon.output()))
    pids = {"template": int(found["template"]), "stubborn": stubborn["node"],
            "stubborn's child": stubborn["child"], "binary": binary_stubborn["node"],
            "binary's child": binary_stubborn["child"],
            "plain": int(plain_pid_file.read_text())}
    for what, pid in pids.items():
        assert alive(pid), what
    return daemon, pids


def gone(pids: dict[str, int], timeout: float = 30.0) -> list[str]:
    """The processes still alive once all are gone or ``timeout`` (a hang guard: they go
    at once, but a loaded machine may take its time to reap them) passed."""
    with contextlib.suppress(TimeoutError):
        poll_until(lambda: not any(alive(pid) for pid in pids.values()), timeout,
                   "the processes to end")
    return [what for what, pid in pids.items() if alive(pid)]


def test_a_stopped_daemon_leaves_no_node_behind(
    tmp_path: pathlib.Path, processes: ChildProcesses
) -> None:
    daemon, pids = start(tmp_path, processes)
    assert daemon.stop(signal.SIGTERM, timeout=20) == 0
    assert gone(pids) == []
    output = daemon.output()
    assert "node stubborn did not stop within the grace period; killing it" in output
    assert "nodes stopped" in output


@pytest.mark.parametrize("spawn", SPAWNS)
def test_a_sigkilled_daemon_leaves_no_node_behind(
    tmp_path: pathlib.Path, processes: ChildProcesses, spawn: str
) -> None:
    daemon, pids = start(tmp_path, processes, spawn)
    daemon.stop(signal.SIGKILL, timeout=10)
    # The nodes die with it (parent-death signal), and what they spawned goes too (the
    # reaper, which outlives the daemon for that), the SIGTERM-proof child included.
    left = gone(pids)
    for what, pid in pids.items():
        if what in left:

            os.kill(pid, signal.SIGKILL)  # clean up before failing
    assert left == []


def reaper_of(daemon_pid: int) -> int:
    """The pid of the daemon's node reaper (its child running reaper_process.py)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rpartition(")")[2].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        if ppid == daemon_pid and b"reaper_process.py" in cmdline:
            return int(entry)
    raise AssertionError("no reaper found")


@pytest.mark.parametrize("spawn", SPAWNS)
def test_each_node_process_has_its_own_parent_death_signal(
    tmp_path: pathlib.Path, processes: ChildProcesses, spawn: str
) -> None:
    # With the reaper (the nodes' spawner and parent) killed first, only the parent-death
    # signal is left: the spawner arms it for every node between fork and exec, whatever
    # its client. What they spawned may survive this (cleaned up here).
    daemon, pids = start(tmp_path, processes, spawn)
    assert daemon.proc is not None
    os.kill(reaper_of(daemon.proc.pid), signal.SIGKILL)
    daemon.stop(signal.SIGKILL, timeout=10)
    nodes = {what: pid for what, pid in pids.items() if what in ("template", "stubborn",
                                                                   "binary", "plain")}
    left = gone(nodes)
    for pid in pids.values():
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
    assert left == []


def test_the_client_ends_a_node_whose_daemon_is_already_gone() -> None:
    # The spawner arms a node's parent-death signal before exec (test_how_a_node_is_
    # started); had the spawner died before that, the signal would never come: the
    # client sees it (its parent is not the pid it was given) and exits.
    check = ("import ctypes, homegear\n"
             "state = ctypes.c_int()\n"
             "ctypes.CDLL(None).prctl(2, ctypes.byref(state))  # PR_GET_PDEATHSIG\n"
             "import os; print(state.value, 'HADAEMON_DAEMON_PID' in os.environ)\n")
    env = {**os.environ, "PYTHONPATH": CLIENT_DIR}
    mine = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True,
                          env={**env, "HADAEMON_DAEMON_PID": str(os.getpid())}, timeout=20)
    assert mine.stdout.split() == ["0", "False"], mine.stderr  # its parent: it goes on
    orphan = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True,
                            env={**env, "HADAEMON_DAEMON_PID": "1"}, timeout=20)
    assert orphan.returncode == 70 and orphan.stdout == ""
    alone = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True,
                           env=env, timeout=20)  # not started by a daemon: left alone
    assert alone.stdout.split() == ["0", "False"], alone.stderr
