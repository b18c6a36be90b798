"""An idle node's memory next to a bare interpreter's, in one run.

Prints, for each node interpreter asked for (default: the daemon's own Python):

1. a bare interpreter running a script that imports what the seed template imports
   besides ``homegear`` (``sys``, ``time``) and sleeps: its RSS and module count;
2. an idle node under a real daemon: the seed's plain template, unchanged (RSS only),
   and the same template that first reports ``len(sys.modules)`` and which modules
   ``homegear`` brought in (RSS and module count), both measured once started
   (startUpComplete delivered) and idle for ``--settle`` seconds;
3. the difference, node minus bare: what the client costs.

Nodes are measured both ways they can be started (``[nodes] spawn``): forked from the
preloaded spawner and exec'd afresh. RSS is ``VmRSS`` from ``/proc/<pid>/status``; a
forked node's counts the pages it shares with the spawner (copy-on-write) as its own, so
its PSS and private memory (``/proc/<pid>/smaps_rollup``) are printed too. Run it by hand:
``.venv/bin/python benchmarks/node_memory.py [--interpreter /path/python3 ...]``.
On a shared machine RSS barely moves with load, but state it with the figures anyway.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import subprocess
import sys
import tempfile
import time
from typing import Any

from twisted.internet import task

from hadaemon.config import read, validate
from hadaemon.daemon import Daemon
from hadaemon.nodes import SCHEMA, NodesPlugin
from hadaemon.plugin import Catalog, PluginInfo
from hadaemon.testing import run_in_reactor, wait_until

SEEDS = pathlib.Path(__file__).resolve().parent.parent / "tests" / "nodes" / "nodes"

BARE = """
import sys, time
print(len(sys.modules), flush=True)
time.sleep(600)
"""

REPORTER = """
import sys
before = set(sys.modules)
from homegear import Homegear
import time
added = sorted(set(sys.modules) - before)

hg = Homegear(sys.argv[1], None, sys.argv[2], None)
hg.nodeOutput(0, {"payload": {"modules": len(sys.modules), "added": added}})
while hg.connected():
    time.sleep(1)
"""


def rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for text in f:
            if text.startswith("VmRSS:"):
                return int(text.split()[1]) * 1024
    return 0


def shared_and_private(pid: int) -> tuple[int, int]:
    """(PSS, private bytes) of a process."""
    pss = private = 0
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for text in f:
            name, _, value = text.partition(":")
            if name == "Pss":
                pss = int(value.split()[0]) * 1024
            elif name in ("Private_Clean", "Private_Dirty"):
                private += int(value.split()[0]) * 1024
    return pss, private


def bare(interpreter: str, workdir: pathlib.Path, settle: float) -> tuple[int, int]:
    """(RSS, module count) of an interpreter that imports what the template does."""
    script = workdir / "bare.py"
    script.write_text(BARE)
    process = subprocess.Popen([interpreter, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        modules = int(process.stdout.readline())
        time.sleep(settle)  # a figure of the idle process, not a synchronisation
        return rss(process.pid), modules
    finally:
        process.kill()
        process.wait()


def nodes(interpreter: str, workdir: pathlib.Path, settle: float, spawn: str) -> dict[str, Any]:
    """RSS of the idle seed template and of the reporting template, modules of the latter."""
    workdir.mkdir(exist_ok=True)
    (workdir / "reporter.py").write_text(REPORTER)
    tables = [
        {"id": "template", "file": str(SEEDS / "seed_template.py"), "interpreter": interpreter},
        {"id": "reporter", "file": str(workdir / "reporter.py"), "interpreter": interpreter,
         "wires": [["bench:report"]]},
    ]
    catalog = Catalog({"nodes": PluginInfo("nodes", NodesPlugin, SCHEMA, "benchmark")})
    sections = {"daemon": {"state_dir": str(workdir / "var"), "plugins": ["nodes"]},
                "nodes": {"node": tables, "spawn": spawn}}
    config, errors = validate(read(sections, base_dir=workdir, environ={}), catalog.schemas())
    if errors:
        raise SystemExit("\n".join(str(e) for e in errors))
    out: dict[str, Any] = {}

    async def scenario(reactor: Any) -> None:
        daemon = Daemon(config, reactor, catalog=catalog)
        reports: list[Any] = []
        daemon.startService()
        try:
            await daemon.started
            daemon.bus.register("bench:report", lambda _a, m: reports.append(m["payload"]))
            plugin: Any = daemon.plugin("nodes")
            if plugin is None:
                raise SystemExit(f"the nodes plugin did not start: {daemon.failed}")
            await wait_until(reactor, lambda: plugin.startup_done and bool(reports) and all(
                r.startup_sent for r in plugin.runtimes.values()), timeout=60.0,
                what="the nodes to start")
            await task.deferLater(reactor, settle, lambda: None)  # idle, then measure
            state = plugin.nodes()
            out["template"] = rss(state["template"]["pid"])
            out["pss"], out["private"] = shared_and_private(state["template"]["pid"])
            out["reporter"] = rss(state["reporter"]["pid"])
            out["modules"] = reports[0]["modules"]
            out["added"] = reports[0]["added"]
        finally:
            await daemon.stopService()

    run_in_reactor(scenario, timeout=120)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--interpreter", action="append",
                        help="a node interpreter to measure (repeatable; default: this one)")
    parser.add_argument("--settle", type=float, default=1.0,
                        help="seconds idle before RSS is read (default 1)")
    args = parser.parse_args()
    mib = 1024 * 1024
    for interpreter in [os.path.abspath(i) for i in args.interpreter or [sys.executable]]:
        with tempfile.TemporaryDirectory() as tmp:
            workdir = pathlib.Path(tmp)
            bare_rss, bare_modules = bare(interpreter, workdir, args.settle)
            measured = {spawn: nodes(interpreter, workdir / spawn, args.settle, spawn)
                        for spawn in ("fork", "exec")}
        version = subprocess.run([interpreter, "-c", "import sys; print(sys.version.split()[0])"],
                                 capture_output=True, text=True, check=True).stdout.strip()
        print(f"{interpreter} (Python {version}), {os.cpu_count()} cores, same run:")
        print(f"  bare interpreter (imports sys, time): RSS {bare_rss / mib:5.1f} MiB, "
              f"{bare_modules} modules")
        for spawn, node in measured.items():
            how = "forked from the spawner" if spawn == "fork" else "exec'd afresh"
            print(f"  spawn = {spawn} (each node {how}):")
            print(f"    idle seed template:                   RSS {node['template'] / mib:5.1f} "
                  f"MiB (+{(node['template'] - bare_rss) / mib:.1f} MiB; PSS "
                  f"{node['pss'] / mib:.1f} MiB, private {node['private'] / mib:.1f} MiB)")
            print(f"    idle template reporting its modules:  RSS {node['reporter'] / mib:5.1f} "
                  f"MiB, {node['modules']} modules (+{node['modules'] - bare_modules})")
            print(f"    modules homegear brought in: {' '.join(node['added']) or '(preloaded)'}")


if __name__ == "__main__":
    main()
