"""How long a Prometheus scrape keeps the reactor busy, on a big house.

Runs the real daemon (the ``metrics`` plugin, the watchdog on) in a fresh asyncio reactor
with ``--devices`` registry devices of 5 variables each (each a bus endpoint) and
``--services`` extra bus endpoints of another kind, then times ``render()`` (the whole
scrape: every figure read and the text written), which runs on the reactor thread.

Usage: ``python benchmarks/metrics.py [--devices 1000] [--endpoints 200] [--scrapes 50]``.
Prints p50/p99/max of a scrape and the body's size.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from typing import Any

from hadaemon.app import prepare
from hadaemon.daemon import Daemon
from hadaemon.metrics import MetricsPlugin
from hadaemon.registry.model import ChannelSpec, ValueType, VariableSpec
from hadaemon.testing import run_in_reactor, write_config

VARIABLES = [VariableSpec("temperature", ValueType.FLOAT), VariableSpec("humidity",
             ValueType.FLOAT), VariableSpec("battery", ValueType.INT),
             VariableSpec("state", ValueType.BOOL), VariableSpec("name", ValueType.STRING)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--endpoints", type=int, default=200)
    parser.add_argument("--scrapes", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = write_config(__import__("pathlib").Path(tmp) / "hadaemon.toml", {
            "daemon": {"state_dir": f"{tmp}/state", "plugins": ["metrics"]},
        })
        prepared = prepare(path, strict=False)
        prepared.raise_for_errors()

        async def scenario(reactor: Any) -> tuple[list[float], int]:
            daemon = Daemon(prepared.config, reactor, catalog=prepared.catalog)
            daemon.startService()
            await daemon.started
            try:
                for n in range(args.devices):
                    daemon.registry.add_device("bench", f"d{n}", f"device {n}",
                                               [ChannelSpec(1, VARIABLES)], None)
                for n in range(args.endpoints):
                    daemon.bus.register(f"bench:e{n}", lambda address, message: None)
                    daemon.bus.post(f"bench:e{n}", n)
                plugin = daemon.plugin("metrics")
                assert isinstance(plugin, MetricsPlugin)
                times = []
                size = 0
                for _ in range(args.scrapes):
                    started = time.perf_counter()
                    body, _ = plugin.render()
                    times.append(time.perf_counter() - started)
                    size = len(body)
                return times, size
            finally:
                await daemon.stopService()

        times, size = run_in_reactor(scenario, timeout=600)
    times.sort()
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    print(f"metrics scrape, {args.devices} devices x {len(VARIABLES)} variables, "
          f"{args.endpoints} more endpoints, {args.scrapes} scrapes:")
    print(f"  render(): p50 {statistics.median(times) * 1000:.2f} ms   p99 {p99 * 1000:.2f} ms"
          f"   max {times[-1] * 1000:.2f} ms   body {size:,} bytes")


if __name__ == "__main__":
    main()
