"""Node start-up benchmark: how long spawning blocks the reactor, and 100 nodes to
startUpComplete.

Prints, for each condition (quiet: nothing else started by this script; busy: two
CPU-bound processes, one per core of a 2-core machine, running throughout):

1. the anchor: 100 bare interpreters (``python -c pass``, site imported as a node's is)
   started together by a plain loop and all waited for, without hadaemon: what the
   machine needs to start that many Pythons at all, under the same load;
2. the time from the daemon's start to every one of 100 nodes (the seed's plain
   template, hadaemon's msgpack wire) having got startUpComplete, for both ways of
   starting them (``[nodes] spawn``): forked from the preloaded spawner, and exec'd
   afresh (run alternately, their order swapped every round);
3. how long each spawn held the reactor thread: the whole of one node's start step
   (``NodeProcess.start``: environment, pipes, the spawn itself, the watchers), its
   longest and its p99 over the 100 spawns, in wall-clock time and in the reactor
   thread's CPU time (on a loaded machine the wall-clock figure also counts the thread
   being preempted, which any step may suffer);
4. the CPU seconds the daemon and the nodes used from the daemon's start to its stop
   (the daemon's include this script's own probe and polling, which run on every
   reactor turn: a reactor that is never blocked takes many more turns, ~0.1 ms each);
5. the longest reactor stall seen while the 100 nodes started (a 1 ms probe's lateness:
   everything the reactor did, spawns, connections, pings, start-up events).

The machine may be shared: read the hadaemon figures against the anchor of the same run.
Run it by hand: ``.venv/bin/python benchmarks/node_startup.py [--nodes 100] [--rounds 1]``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pathlib
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

from node_routing import nodes_started  # (benchmarks/ is this script's path)
from twisted.internet.task import LoopingCall

from hadaemon.nodes.supervisor import NodeProcess
from hadaemon.testing import run_in_reactor

TEMPLATE = '''
from homegear import Homegear
import sys, time

def eventHandler(eventSource, peerId, channel, variableName, value):
    pass

def nodeInput(nodeInfo, inputIndex, msg):
    pass

hg = Homegear(sys.argv[1], eventHandler, sys.argv[2], nodeInput)
while hg.connected():
    time.sleep(1)
'''

BURNER = "while True: pass"


def anchor(n: int) -> float:
    """Seconds to start n bare interpreters together and see them all exit."""
    started = time.monotonic()
    procs = [subprocess.Popen([sys.executable, "-c", "pass"]) for _ in range(n)]
    for proc in procs:
        proc.wait()
    return time.monotonic() - started


def nodes_to_start_up(workdir: pathlib.Path, n: int, spawn: str) -> dict[str, Any]:
    """One daemon start with n nodes: elapsed, per-spawn reactor time, longest stall."""
    spawns: list[float] = []
    cpus: list[float] = []
    original = NodeProcess.start

    def timed(self: NodeProcess) -> None:
        began, cpu = time.perf_counter(), time.thread_time()
        try:
            original(self)
        finally:
            spawns.append(time.perf_counter() - began)
            cpus.append(time.thread_time() - cpu)

    out: dict[str, Any] = {}

    async def scenario(reactor: Any) -> None:
        last = [time.perf_counter()]
        stalls: list[float] = []

        def probe() -> None:
            now = time.perf_counter()
            stalls.append(now - last[0])
            last[0] = now

        ticker = LoopingCall(probe)
        ticker.clock = reactor
        ticker.start(0.001)
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "template.py").write_text(TEMPLATE)
        nodes = [{"id": f"n{i}", "file": str(workdir / "template.py")} for i in range(n)]
        started = time.monotonic()
        try:
            async with nodes_started(reactor, workdir, nodes, spawn=spawn) as (_, plugin):
                out["elapsed"] = time.monotonic() - started
                out["stall"] = max(stalls) - 0.001
                out["started"] = dict(plugin.reaper.started)
        finally:
            ticker.stop()

    before = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
        resource.RUSAGE_CHILDREN)
    NodeProcess.start = timed  # type: ignore[method-assign]
    try:
        run_in_reactor(scenario, timeout=300)
    finally:
        NodeProcess.start = original  # type: ignore[method-assign]
    after = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
        resource.RUSAGE_CHILDREN)
    out["cpu_daemon"], out["cpu_nodes"] = (
        (b.ru_utime + b.ru_stime) - (a.ru_utime + a.ru_stime)
        for a, b in zip(before, after, strict=True))
    spawns.sort()
    out["spawn_max"] = spawns[-1]
    out["spawn_p99"] = spawns[max(0, int(len(spawns) * 0.99) - 1)]
    out["spawn_median"] = statistics.median(spawns)
    out["spawns"] = len(spawns)
    cpus.sort()
    out["cpu_max"] = cpus[-1]
    out["cpu_p99"] = cpus[max(0, int(len(cpus) * 0.99) - 1)]
    return out


@contextlib.contextmanager
def load(busy: bool) -> Iterator[None]:
    """Two CPU-bound processes while ``busy``."""
    burners = [subprocess.Popen([sys.executable, "-c", BURNER]) for _ in range(2 if busy else 0)]
    try:
        yield
    finally:
        for proc in burners:
            proc.kill()
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=1, help="rounds per condition")
    args = parser.parse_args()
    n = args.nodes
    print(f"node start-up: {n} nodes (seed template, msgpack wire), {os.cpu_count()} CPUs, "
          f"Python {sys.version.split()[0]}, load average {os.getloadavg()[0]:.2f} at start")
    for busy in (False, True):
        label = "busy (2 CPU-bound processes)" if busy else "quiet"
        with load(busy), tempfile.TemporaryDirectory(prefix="hadaemon-bench-") as tmp:
            for round_ in range(args.rounds):
                floor = anchor(n)
                print(f"{label}, round {round_ + 1}:")
                print(f"  anchor: {n} bare interpreters started and exited  {floor:5.2f} s")
                order = ("fork", "exec") if round_ % 2 == 0 else ("exec", "fork")
                for spawn in order:
                    result = nodes_to_start_up(pathlib.Path(tmp) / f"r{round_}{spawn}", n,
                                               spawn)
                    report(n, spawn, floor, result)


def report(n: int, spawn: str, floor: float, result: dict[str, Any]) -> None:
    started = ", ".join(f"{count} by {how}" for how, count in result["started"].items())
    print(f"  spawn = {spawn}: {n} nodes to startUpComplete      "
          f"{result['elapsed']:5.2f} s  ({result['elapsed'] / floor:.1f}x the anchor; goal: "
          f"at most 2 s; started {started})")
    print(f"    reactor blocked per spawn ({result['spawns']} spawns): longest "
          f"{result['spawn_max'] * 1000:.2f} ms, p99 "
          f"{result['spawn_p99'] * 1000:.2f} ms, median "
          f"{result['spawn_median'] * 1000:.2f} ms  (goal: at most 2 ms)")
    print(f"      of which CPU time of the reactor thread: longest "
          f"{result['cpu_max'] * 1000:.2f} ms, p99 {result['cpu_p99'] * 1000:.2f} ms"
          "  (the rest: the thread waited, for a CPU or for the child)")
    print(f"    CPU seconds, start to stop: the daemon {result['cpu_daemon']:.2f}, "
          f"the nodes (and the spawner) {result['cpu_nodes']:.2f}  (less "
          "noisy than the wall-clock figures on a shared machine)")
    print(f"    longest reactor stall during the start-up "
          f"{result['stall'] * 1000:.1f} ms")


if __name__ == "__main__":
    main()
