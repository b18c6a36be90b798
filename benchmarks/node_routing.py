"""Node routing benchmark: node A -> daemon -> node B, against a raw msgpack relay floor.

Prints, in one run:

1. hadaemon: messages/s and p50/p99 latency for small messages from node A to node B
   through the daemon (real node processes, the real socket and client), flat out and
   paced at 1000 messages/s;
2. the floor: the same with a minimal raw relay (A, a relay and B as three processes
   speaking msgpack over Unix sockets, blocking I/O, no hadaemon), which keeps the same
   ordering guarantee (B handles messages one at a time, in order);
3. a node process's RSS and its start-to-ready time (spawn to answering ping);
4. the same A -> B on Homegear's binary wire, with the nodes on the test stand-in for
   the real module (tests/nodes/binclient, pure Python: slower than the real C++ client;
   every nodeOutput waits for its answer and the window is one input).

Run it by hand: ``.venv/bin/python benchmarks/node_routing.py [--messages 50000]``.
Latency is measured with the system-wide monotonic clock (comparable across processes).
"""

from __future__ import annotations

import argparse
import os
import pathlib
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from twisted.internet.defer import Deferred

from hadaemon.bus import Address, Bus
from hadaemon.config import read, validate
from hadaemon.daemon import Daemon
from hadaemon.nodes import SCHEMA, NodesPlugin
from hadaemon.plugin import Catalog, PluginInfo
from hadaemon.testing import run_in_reactor, wait_until

BINCLIENT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "nodes" / "binclient"


def wired(node: dict[str, Any], wire: str) -> dict[str, Any]:
    """A node table on ``wire`` (binrpc: the test stand-in for the real module)."""
    if wire == "binrpc":
        return {**node, "wire": "binrpc", "env": {"PYTHONPATH": str(BINCLIENT)}}
    return node

SOURCE = '''
import sys, time
from homegear import Homegear

def nodeInput(nodeInfo, inputIndex, msg):
    count, interval = msg["payload"]
    now = time.monotonic_ns
    output = hg.nodeOutput
    if interval:
        start = time.monotonic()
        for i in range(count):
            delay = start + i * interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            output(0, {"payload": i, "t": now()})
    else:
        for i in range(count):
            output(0, {"payload": i, "t": now()})

hg = Homegear(sys.argv[1], None, sys.argv[2], nodeInput)
while hg.connected():
    time.sleep(1)
'''

SINK = '''
import sys, time
from homegear import Homegear

latencies = []
first = [None]

def nodeInput(nodeInfo, inputIndex, msg):
    t = time.monotonic_ns()
    if msg["payload"] == "reset":
        latencies.clear()
        return None
    latencies.append(t - msg["t"])
    if len(latencies) == 1:
        first[0] = msg["t"]
    if msg["payload"] == nodeInfo["info"]["last"]:
        hg.nodeOutput(0, {"payload": {"latencies": latencies[:], "first_sent": first[0],
                                      "last_received": t, "count": len(latencies)}})
        latencies.clear()

hg = Homegear(sys.argv[1], None, sys.argv[2], nodeInput)
while hg.connected():
    time.sleep(1)
'''

RELAY = '''
import socket, sys, msgpack
listener = socket.socket(socket.AF_UNIX)
listener.bind(sys.argv[1])
listener.listen(2)
print("ready", flush=True)
a, _ = listener.accept()
b, _ = listener.accept()
unpacker = msgpack.Unpacker(raw=False)
packb = msgpack.packb
while True:
    data = a.recv(262144)
    if not data:
        break
    unpacker.feed(data)
    out = [packb(message) for message in unpacker]   # decode and re-encode each message
    if out:
        b.sendall(b"".join(out))
b.close()
'''

RAW_SOURCE = '''
import socket, sys, time, msgpack
sock = socket.socket(socket.AF_UNIX)
sock.connect(sys.argv[1])
count, interval = int(sys.argv[2]), float(sys.argv[3])
now = time.monotonic_ns
packb = msgpack.packb
send = sock.sendall
start = time.monotonic()
for i in range(count):
    if interval:
        delay = start + i * interval - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    send(packb({"payload": i, "t": now()}))
sock.close()
'''

RAW_SINK = '''
import json, socket, sys, time, msgpack
sock = socket.socket(socket.AF_UNIX)
sock.connect(sys.argv[1])
count = int(sys.argv[2])
unpacker = msgpack.Unpacker(raw=False)
latencies = []
first = None

def handle(msg):  # one at a time, in order: the same guarantee as nodeInput
    global first
    t = time.monotonic_ns()
    latencies.append(t - msg["t"])
    if first is None:
        first = msg["t"]
    return t

last = None
while len(latencies) < count:
    data = sock.recv(262144)
    if not data:
        break
    unpacker.feed(data)
    for message in unpacker:
        last = handle(message)
print(json.dumps({"latencies": latencies, "first_sent": first, "last_received": last,
                  "count": len(latencies)}))
'''


def summary(result: dict[str, Any]) -> tuple[float, float, float]:
    """(messages/s, p50 ms, p99 ms)."""
    latencies = sorted(result["latencies"])
    elapsed = (result["last_received"] - result["first_sent"]) / 1e9
    rate = result["count"] / elapsed if elapsed > 0 else float("inf")
    p50 = statistics.median(latencies) / 1e6
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] / 1e6
    return rate, p50, p99


def line(label: str, figures: tuple[float, float, float]) -> str:
    rate, p50, p99 = figures
    return f"  {label:<34} {rate:>10,.0f} msg/s   p50 {p50:8.3f} ms   p99 {p99:8.3f} ms"


def catalog() -> Catalog:
    return Catalog({"nodes": PluginInfo("nodes", NodesPlugin, SCHEMA, "benchmark")})


def config(workdir: pathlib.Path, nodes: list[dict[str, Any]], **settings: Any) -> Any:
    sections = {"daemon": {"state_dir": str(workdir / "var"), "plugins": ["nodes"]},
                "nodes": {"node": nodes, "start_deadline": 60.0, **settings}}
    validated, errors = validate(read(sections, base_dir=workdir, environ={}),
                                 catalog().schemas())
    if errors:
        raise SystemExit("\n".join(str(e) for e in errors))
    return validated


@asynccontextmanager
async def nodes_started(
    reactor: Any, workdir: pathlib.Path, nodes: list[dict[str, Any]], **settings: Any
) -> AsyncIterator[tuple[Daemon, Any]]:
    """A daemon on ``nodes`` (more ``[nodes]`` settings: ``settings``), once every node
    got startUpComplete: (daemon, nodes plugin)."""
    daemon = Daemon(config(workdir, nodes, **settings), reactor, catalog=catalog())
    daemon.startService()
    try:
        await daemon.started
        plugin: Any = daemon.plugin("nodes")
        await wait_until(reactor, lambda: plugin.startup_done and all(
            r.startup_sent for r in plugin.runtimes.values()),
            timeout=120.0, what="the nodes to start", interval=0.005)
        yield daemon, plugin
    finally:
        await daemon.stopService()


def a_to_b(workdir: pathlib.Path, count: int, wire: str = "msgpack") -> list[dict[str, Any]]:
    """Node A (SOURCE) wired to node B (SINK), whose results go to ``bench:results``."""
    workdir.mkdir(exist_ok=True)
    (workdir / "source.py").write_text(SOURCE)
    (workdir / "sink.py").write_text(SINK)
    return [
        wired({"id": "a", "file": str(workdir / "source.py"), "wires": [["b"]]}, wire),
        wired({"id": "b", "file": str(workdir / "sink.py"), "wires": [["bench:results"]],
               "info": {"last": count - 1}}, wire),
    ]


class Results:
    """``bench:results``: where a flow's last node reports (its payload)."""

    def __init__(self, bus: Bus) -> None:
        self._bus = bus
        self._waiting: list[Deferred[Any]] = []
        bus.register("bench:results", self._collect)

    def _collect(self, address: Address, message: Any) -> None:
        if self._waiting:
            self._waiting.pop().callback(message["payload"])

    async def after(self, address: str, message: Any) -> Any:
        """Post ``message`` to ``address`` (it starts a run); the next report."""
        done: Deferred[Any] = Deferred()
        self._waiting.append(done)
        self._bus.post(address, message)
        return await done


def hadaemon_routing(workdir: pathlib.Path, count: int, wire: str = "msgpack") -> dict[str, Any]:
    workdir = workdir / f"routing-{wire}"
    nodes = a_to_b(workdir, count, wire)
    out: dict[str, Any] = {}

    async def scenario(reactor: Any) -> None:
        async with nodes_started(reactor, workdir, nodes) as (daemon, plugin):
            results = Results(daemon.bus)

            async def run(n: int, interval: float) -> dict[str, Any]:
                await daemon.bus.send("node:b/0", {"payload": "reset"})
                result: dict[str, Any] = await results.after("node:a/0",
                                                             {"payload": [n, interval]})
                return result

            # nodeInfo is sent once, at authentication: "last" is fixed at count - 1.
            await run(count, 0.0)  # warm-up
            pids = [r.pid for r in plugin.runtimes.values()]
            before = time.process_time(), sum(cpu_seconds(p) for p in pids)
            out["flat"] = await run(count, 0.0)
            out["cpu"] = {
                "daemon": time.process_time() - before[0],
                "nodes": sum(cpu_seconds(p) for p in pids) - before[1],
            }
            state = plugin.nodes()
            out["dropped"] = state["b"]["dropped"]
            out["ready_after"] = {k: v["ready_after"] for k, v in state.items()}
            out["rss"] = {k: rss(v["pid"]) for k, v in state.items()}

    run_in_reactor(scenario, timeout=600)
    return out


def hadaemon_paced(workdir: pathlib.Path, count: int, rate: float) -> dict[str, Any]:
    paced = workdir / "paced"
    nodes = a_to_b(paced, count)
    out: dict[str, Any] = {}

    async def scenario(reactor: Any) -> None:
        async with nodes_started(reactor, paced, nodes) as (daemon, _plugin):
            results: list[Any] = []
            daemon.bus.register("bench:results", lambda a, m: results.append(m["payload"]))
            daemon.bus.post("node:a/0", {"payload": [count, 1.0 / rate]})
            await wait_until(reactor, lambda: results, timeout=120.0, what="the paced run",
                             interval=0.005)
            out["paced"] = results[0]

    run_in_reactor(scenario, timeout=600)
    return out


def cpu_seconds(pid: int | None) -> float:
    """User and system CPU time a process used so far."""
    if pid is None:
        return 0.0
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss(pid: int | None) -> int:
    if pid is None:
        return 0
    with open(f"/proc/{pid}/status") as f:
        for text in f:
            if text.startswith("VmRSS:"):
                return int(text.split()[1]) * 1024
    return 0


def raw_floor(workdir: pathlib.Path, count: int, interval: float) -> dict[str, Any]:
    import json

    path = str(workdir / f"relay-{interval}.sock")
    scripts = {}
    for name, text in (("relay", RELAY), ("source", RAW_SOURCE), ("sink", RAW_SINK)):
        scripts[name] = workdir / f"raw_{name}.py"
        scripts[name].write_text(textwrap.dedent(text))
    relay = subprocess.Popen([sys.executable, str(scripts["relay"]), path],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert relay.stdout is not None and relay.stdout.readline().strip() == "ready"
        source = subprocess.Popen([sys.executable, str(scripts["source"]), path, str(count),
                                   str(interval)])
        time.sleep(0.05)  # the relay takes A first, then B
        sink = subprocess.run([sys.executable, str(scripts["sink"]), path, str(count)],
                              capture_output=True, text=True, timeout=600, check=True)
        source.wait(60)
        result: dict[str, Any] = json.loads(sink.stdout)
    finally:
        relay.kill()
        relay.wait()
    return result


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--paced", type=int, default=3_000, help="messages at 1000/s")
    parser.add_argument("--binary", type=int, default=10_000,
                        help="messages on the binary wire")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hadaemon-bench-", dir="/tmp") as tmp:
        workdir = pathlib.Path(tmp)
        print(f"node routing, {args.messages} small messages, {os.cpu_count()} CPUs, "
              f"Python {sys.version.split()[0]}")
        ours = hadaemon_routing(workdir, args.messages)
        paced = hadaemon_paced(workdir, args.paced, 1000.0)
        before = children_cpu()
        floor = raw_floor(workdir, args.messages, 0.0)
        floor_cpu = children_cpu() - before
        floor_paced = raw_floor(workdir, args.paced, 0.001)
        n = args.messages
        ours_flat = summary(ours["flat"])
        floor_flat = summary(floor)
        print("A -> daemon -> B (hadaemon):")
        print(line("flat out", ours_flat))
        print(line("paced at 1000 msg/s", summary(paced["paced"])))
        print(f"  messages dropped: {ours['dropped']}")
        print(f"  CPU per message: daemon {ours['cpu']['daemon'] / n * 1e6:.1f} us, "
              f"nodes A and B {ours['cpu']['nodes'] / n * 1e6:.1f} us")
        print("A -> relay -> B (raw msgpack relay, the floor):")
        print(line("flat out", floor_flat))
        print(line("paced at 1000 msg/s", summary(floor_paced)))
        print(f"  CPU per message: relay, A and B {floor_cpu / n * 1e6:.1f} us")
        print(f"throughput vs the floor: {ours_flat[0] / floor_flat[0]:.0%} "
              f"(target: at least 50%)")
        print("node process:")
        for node_id in ("a", "b"):
            print(f"  {node_id}: RSS {ours['rss'][node_id] / 1e6:.1f} MB, "
                  f"start to ready {ours['ready_after'][node_id] * 1000:.0f} ms")
        print("spawning and 100 nodes to startUpComplete: benchmarks/node_startup.py")
        binary = hadaemon_routing(workdir, args.binary, "binrpc")
        print(f"A -> daemon -> B on Homegear's binary wire ({args.binary} messages, "
              "test stand-in client):")
        print(line("flat out", summary(binary["flat"])))
        print(f"  CPU per message: daemon {binary['cpu']['daemon'] / args.binary * 1e6:.1f} us, "
              f"nodes A and B {binary['cpu']['nodes'] / args.binary * 1e6:.1f} us")


if __name__ == "__main__":
    main()
