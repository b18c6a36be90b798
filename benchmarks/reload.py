"""Hot reload benchmark: from saving a file to the new code handling input.

One daemon (in this process, ``[daemon].reload = "auto"``: the real file watcher) runs a
node and a service. Each round saves a new version of the node's file, then of the
service's file (written in place, as most editors do), while a closed loop of inputs
(the next sent when the previous answered) goes to each; the new code stamps the time it
handled its first input. Printed per world: median, p90 and worst of
``handled by the new code - file saved`` over the rounds, next to the watcher's settle
time (``[daemon].reload_settle``: a burst of saves is coalesced; it is part of every
figure) and the machine's load. Targets (issue 16): a node 300 ms, a service 200 ms.

Run it by hand: ``.venv/bin/python benchmarks/reload.py [--rounds 20] [--settle 0.05]``.
The machine may be shared: read the figures with the load printed beside them.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import sys
import tempfile
import time
from typing import Any

from twisted.internet.defer import Deferred

from hadaemon.config import read, validate
from hadaemon.daemon import Daemon
from hadaemon.nodes import NodesPlugin
from hadaemon.plugin import Catalog, PluginInfo
from hadaemon.services import ServicesPlugin
from hadaemon.testing import run_in_reactor, wait_until

NODE = '''\
import sys
import time
from homegear import Homegear

VERSION = {version}


def eventHandler(eventSource, peerId, channel, variableName, value):
    pass


def nodeInput(nodeInfo, inputIndex, msg):
    return [VERSION, time.time()]


hg = Homegear(sys.argv[1], eventHandler, sys.argv[2], nodeInput)
while hg.connected():
    time.sleep(1)
'''

SERVICE = '''\
import time
from base_service import CustomService

VERSION = {version}


class Bench(CustomService):
    async def stamp(self, msg):
        return [VERSION, time.time()]
'''

TARGETS = {"node": 0.300, "service": 0.200}


def catalog() -> Catalog:
    return Catalog({
        "nodes": PluginInfo("nodes", NodesPlugin, NodesPlugin.schema, "benchmark"),
        "services": PluginInfo("services", ServicesPlugin, ServicesPlugin.schema, "benchmark"),
    })


def config(workdir: pathlib.Path, settle: float) -> Any:
    (workdir / "services").mkdir()
    (workdir / "node.py").write_text(NODE.format(version=0))
    (workdir / "services" / "Bench.py").write_text(SERVICE.format(version=0))
    sections = {
        "daemon": {"state_dir": str(workdir / "var"), "plugins": ["nodes", "services"],
                   "reload": "auto", "reload_settle": settle},
        "nodes": {"node": [{"id": "bench", "file": str(workdir / "node.py")}], "grace": 3.0},
        "services": {"directories": [str(workdir / "services")], "service": {"Bench": {}}},
    }
    cfg, errors = validate(read(sections, base_dir=workdir, environ={}), catalog().schemas())
    assert not errors, [str(e) for e in errors]
    return cfg


async def until_new_code(reactor: Any, send: Any, version: int, timeout: float = 30.0) -> float:
    """Send inputs one after the other until one is handled by ``version``; its time."""
    deadline = reactor.seconds() + timeout
    while True:
        answer = await send()
        if answer[0] == version:
            return float(answer[1])
        if reactor.seconds() > deadline:
            raise TimeoutError(f"version {version} never answered")


def measure(rounds: int, settle: float) -> dict[str, list[float]]:
    figures: dict[str, list[float]] = {"node": [], "service": []}
    with tempfile.TemporaryDirectory(prefix="hadaemon-reload-bench-") as tmp:
        workdir = pathlib.Path(tmp)
        cfg = config(workdir, settle)

        async def scenario(reactor: Any) -> None:
            daemon = Daemon(cfg, reactor, catalog=catalog())
            daemon.startService()
            try:
                await daemon.started
                nodes: Any = daemon.plugin("nodes")
                await wait_until(reactor, lambda: nodes.startup_done, 60, "the node")

                def to_node() -> Deferred[Any]:
                    return daemon.bus.send("node:bench/0", {"payload": None})

                def to_service() -> Deferred[Any]:
                    return daemon.bus.send("service:bench_py/stamp", None)

                await until_new_code(reactor, to_node, 0)
                await until_new_code(reactor, to_service, 0)
                for version in range(1, rounds + 1):
                    for world, path, source, send in (
                        ("node", workdir / "node.py", NODE, to_node),
                        ("service", workdir / "services" / "Bench.py", SERVICE, to_service),
                    ):
                        path.write_text(source.format(version=version))
                        saved = time.time()
                        handled = await until_new_code(reactor, send, version)
                        figures[world].append(handled - saved)
            finally:
                await daemon.stopService()

        run_in_reactor(scenario, timeout=60 + rounds * 20)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--settle", type=float, default=0.05,
                        help="[daemon].reload_settle (default 0.05, the daemon's default)")
    args = parser.parse_args()
    before = os.getloadavg()
    figures = measure(args.rounds, args.settle)
    after = os.getloadavg()
    print(f"hot reload, save -> new code handles input: {args.rounds} rounds, "
          f"reload_settle {args.settle:g} s (included), Python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs, load average {before[0]:.1f} before / {after[0]:.1f} after")
    for world, values in figures.items():
        ordered = sorted(values)
        p90 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]
        target = TARGETS[world]
        verdict = "met" if p90 <= target else "NOT met"
        print(f"  {world:8s} median {statistics.median(values) * 1000:6.1f} ms  "
              f"p90 {p90 * 1000:6.1f} ms  worst {ordered[-1] * 1000:6.1f} ms  "
              f"(target {target * 1000:.0f} ms at p90: {verdict})")


if __name__ == "__main__":
    main()
