"""Node to bus benchmark: node A's ``nodeOutput`` to bus endpoints (a service, a device).

The path of ``Router._to_bus`` (``hadaemon/nodes/routing.py``): a real node process
outputs small messages flat out on an output wired to one bus endpoint (the message is
handed on as it is) or to two (each gets a ``hadaemon.values.copy``). Prints messages/s,
p50/p99 latency (node's send to the handler's call) and the daemon's CPU time per
message (the steadiest figure on a shared machine) per run, for comparing two
versions interleaved, e.g. ``PYTHONPATH=<other tree> .venv/bin/python
benchmarks/node_to_bus.py`` against the same without PYTHONPATH, alternately.

Run it by hand: ``.venv/bin/python benchmarks/node_to_bus.py [--messages 50000]``.
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import tempfile
import time
from typing import Any

from node_routing import SOURCE, nodes_started  # run as a script: benchmarks/ is on the path

import hadaemon
from hadaemon.bus import Address
from hadaemon.testing import run_in_reactor, wait_until


def to_bus(workdir: pathlib.Path, count: int, sinks: int) -> dict[str, float]:
    workdir = workdir / f"to-bus-{sinks}"
    workdir.mkdir()
    (workdir / "source.py").write_text(SOURCE)
    wires = [[f"bench:sink{i}" for i in range(sinks)]]
    nodes = [{"id": "a", "file": str(workdir / "source.py"), "wires": wires}]
    out: dict[str, float] = {}

    async def scenario(reactor: Any) -> None:
        async with nodes_started(reactor, workdir, nodes) as (daemon, _plugin):
            latencies: list[list[int]] = [[] for _ in range(sinks)]
            now = time.monotonic_ns

            def handler(index: int) -> Any:
                got = latencies[index]

                def handle(address: Address, message: Any) -> None:
                    got.append(now() - message["t"])
                return handle

            for i in range(sinks):
                daemon.bus.register(f"bench:sink{i}", handler(i), queue_size=1000)
            for run in ("warm-up", "measured"):
                for got in latencies:
                    got.clear()
                started, cpu = now(), time.process_time()
                daemon.bus.post("node:a/0", {"payload": [count, 0.0]})
                await wait_until(reactor, lambda: all(len(g) >= count for g in latencies),
                                 timeout=300.0, what=f"the {run} run", interval=0.005)
            elapsed = (now() - started) / 1e9
            out["cpu_us"] = (time.process_time() - cpu) / count * 1e6
            every = sorted(latency for got in latencies for latency in got)
            out["rate"] = count / elapsed
            out["p50"] = statistics.median(every) / 1e6
            out["p99"] = every[min(len(every) - 1, int(len(every) * 0.99))] / 1e6

    run_in_reactor(scenario, timeout=900)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50_000)
    args = parser.parse_args()
    print(f"node to bus, {args.messages} small messages, hadaemon from "
          f"{pathlib.Path(hadaemon.__file__).parent.parent}")
    with tempfile.TemporaryDirectory(prefix="hadaemon-bench-", dir="/tmp") as tmp:
        for sinks in (1, 2):
            r = to_bus(pathlib.Path(tmp), args.messages, sinks)
            print(f"  A -> {sinks} bus endpoint(s)  {r['rate']:>9,.0f} msg/s   "
                  f"p50 {r['p50']:8.3f} ms   p99 {r['p99']:8.3f} ms   "
                  f"daemon CPU {r['cpu_us']:5.1f} us/msg")


if __name__ == "__main__":
    main()
