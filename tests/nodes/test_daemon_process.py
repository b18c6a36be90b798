"""The daemon as a process (`hadaemon run`): nodes never outlive it, even a SIGKILL."""

from __future__ import annotations

import json
import os
import pathlib
import re
import signal
import time

from hadaemon.testing import ChildProcesses, DaemonProcess, write_config
from tests.nodes.helpers import NODES, alive

PLUGIN = (
    "# The nodes plugin, found through a plugin directory (as before its entry point).\n"
    "from hadaemon.nodes import NodesPlugin\n\n\n"
    "class Nodes(NodesPlugin):\n"
    "    name = 'nodes'\n"
)


def start(
    tmp_path: pathlib.Path, processes: ChildProcesses
) -> tuple[DaemonProcess, dict[str, int]]:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "nodes_plugin.py").write_text(PLUGIN)
    pids_file = tmp_path / "pids.json"
    config = write_config(tmp_path / "hadaemon.toml", {
        "daemon": {"state_dir": "var", "plugin_dirs": ["plugins"], "plugins": ["nodes"],
                   "stop_timeout": 10.0},
        "nodes": {"grace": 1.0, "node": [
            {"id": "template", "file": str(NODES / "seed_template.py")},
            {"id": "stubborn", "file": str(NODES / "stubborn.py"),
             "info": {"pids": str(pids_file)}},
        ]},
    })
    daemon = DaemonProcess(config, processes=processes).start(timeout=30)
    deadline = time.monotonic() + 10
    while not pids_file.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    stubborn = json.loads(pids_file.read_text())
    found = dict(re.findall(r"node (\w+) started: pid (\d+)", daemon.output()))
    pids = {"template": int(found["template"]), "stubborn": stubborn["node"],
            "stubborn's child": stubborn["child"]}
    for what, pid in pids.items():
        assert alive(pid), what
    return daemon, pids


def gone_within(pids: dict[str, int], seconds: float) -> list[str]:
    """The processes still alive after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        left = [what for what, pid in pids.items() if alive(pid)]
        if not left:
            return []
        time.sleep(0.05)
    return [what for what, pid in pids.items() if alive(pid)]


def test_a_stopped_daemon_leaves_no_node_behind(
    tmp_path: pathlib.Path, processes: ChildProcesses
) -> None:
    daemon, pids = start(tmp_path, processes)
    assert daemon.stop(signal.SIGTERM, timeout=20) == 0
    assert gone_within(pids, 1.0) == []
    output = daemon.output()
    assert "node stubborn did not stop within the grace period; killing it" in output
    assert "nodes stopped" in output


def test_a_sigkilled_daemon_leaves_no_node_behind(
    tmp_path: pathlib.Path, processes: ChildProcesses
) -> None:
    daemon, pids = start(tmp_path, processes)
    daemon.stop(signal.SIGKILL, timeout=10)
    # The nodes die with it (parent-death signal), and what they spawned goes too (the
    # reaper, which outlives the daemon for that), the SIGTERM-proof child included.
    left = gone_within(pids, 5.0)
    for what, pid in pids.items():
        if what in left:

            os.kill(pid, signal.SIGKILL)  # clean up before failing
    assert left == []
