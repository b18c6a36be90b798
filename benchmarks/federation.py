"""Federation figures (issue 15, section 7), cross-host next to local-only, in one run.

Two real daemons (``hadaemon run``), ``pi-a`` with ``--devices`` devices and ``pi-b``
with none, on one Mosquitto on loopback (``set_tcp_nodelay true``), each running the
``fedbench`` plugin (benchmarks/federation_plugins/fedbench.py), driven over MQTT:

- event latency: A's device reports a stamp (``time.perf_counter()``, one clock for every
  process) every 20 ms; A's own subscriber (local) and B's, on the mirror (cross-host),
  take the difference when the event reaches them;
- setValue round trip: B writes A's device through its mirror, one write after the
  other, each until the owner accepted it (the answer back on B); local: A writes its
  own device;
- sustained value changes: A changes ``--rate`` values a second for ``--seconds``,
  spread over its devices; B counts the changes that reached its mirrors: sent minus
  counted is lost;
- resynchronisation: A restarts (SIGTERM, start) with new values on every device; from
  the moment B sees A online again until every mirror on B is available with A's new
  value.

    .venv/bin/python benchmarks/federation.py [--devices 1000] [--rate 5000] [--seconds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from hadaemon.testing import BlockingClient, Broker, ChildProcesses, DaemonProcess, write_config

PLUGINS = pathlib.Path(__file__).parent / "federation_plugins"
SITE = "bench"


def host_config(directory: pathlib.Path, name: str, broker: Broker, devices: int,
                run: int) -> pathlib.Path:
    return write_config(directory / f"{name}-run{run}.toml", {
        "daemon": {"name": name, "state_dir": "var", "plugin_dirs": [str(PLUGINS)],
                   "plugins": ["mqtt", "federation", "fedbench"], "stop_timeout": 20.0},
        "log": {"level": "info"},
        "mqtt": {"host": broker.host, "port": broker.port, "client_id": f"bench-{name}",
                 "status_topic": f"{SITE}/{name}/status"},
        "federation": {"site": SITE, "settle_delay": 1.0},
        "fedbench": {"devices": devices, "run": run},
    })


class Bench:
    def __init__(self, base: pathlib.Path, broker: Broker, processes: ChildProcesses,
                 devices: int) -> None:
        self.base, self.broker, self.processes = base, broker, processes
        self.devices = devices
        self.control = BlockingClient(broker).connect()
        self.daemons: dict[str, DaemonProcess] = {}

    def start(self, name: str, devices: int, run: int) -> DaemonProcess:
        directory = self.base / name
        directory.mkdir(parents=True, exist_ok=True)
        config = host_config(directory, name, self.broker, devices, run)
        daemon = DaemonProcess(config, processes=self.processes)
        daemon.start(timeout=120, wait_for="fedbench ready")
        self.daemons[name] = daemon
        return daemon

    def command(self, host: str, **command: Any) -> None:
        self.control.publish(f"fedbench/{host}/cmd", json.dumps(command))

    def result(self, host: str, what: str, timeout: float = 120.0, *,
               fresh: bool = True) -> Any:
        """What the host wrote to ``fedbench-<what>.json`` (waiting for it)."""
        path = self.base / host / f"fedbench-{what}.json"
        deadline = time.monotonic() + timeout
        while True:
            if path.exists():
                try:
                    data = json.loads(path.read_text())
                except ValueError:  # being written
                    data = None
                if data is not None:
                    if fresh:
                        path.unlink()
                    return data
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {path} within {timeout} s")
            time.sleep(0.05)

    def dump(self, host: str, what: str) -> Any:
        self.command(host, do="dump", what=what)
        return self.result(host, what)


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def run(args: argparse.Namespace) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="fedbench-") as tmp, ChildProcesses() as children:
        base = pathlib.Path(tmp)
        broker = Broker(impl="mosquitto", workdir=base / "broker").start()
        try:
            bench = Bench(base, broker, children, args.devices)
            bench.start("pi-a", args.devices, 1)
            bench.start("pi-b", 0, 1)
            deadline = time.monotonic() + 120
            while bench.dump("pi-b", "mirrors") < args.devices:
                if time.monotonic() > deadline:
                    raise TimeoutError("B never mirrored A's devices")
                time.sleep(0.5)

            # 1. event latency
            bench.command("pi-a", do="stamps", count=args.samples, pace=0.02)
            bench.result("pi-a", "stamps")
            time.sleep(1.0)
            local = bench.dump("pi-a", "latency")["local"]
            remote = bench.dump("pi-b", "latency")["remote"]
            rows.append(("event latency p50", ms(statistics.median(remote)),
                         ms(statistics.median(local))))
            rows.append(("event latency p99", ms(p(remote, 0.99)), ms(p(local, 0.99))))
            rows.append(("  (events counted)", f"{len(remote)} of {args.samples}",
                         f"{len(local)} of {args.samples}"))

            # 2. setValue round trips
            bench.command("pi-b", do="setvalue", source="fedbench@pi-a", count=args.samples)
            remote_rt = bench.result("pi-b", "setvalue-fedbench@pi-a")
            bench.command("pi-a", do="setvalue", source="fedbench", count=args.samples)
            local_rt = bench.result("pi-a", "setvalue-fedbench")
            rows.append(("setValue round trip p50", ms(statistics.median(remote_rt)),
                         ms(statistics.median(local_rt))))
            rows.append(("setValue round trip p99", ms(p(remote_rt, 0.99)),
                         ms(p(local_rt, 0.99))))

            # 3. sustained value changes
            before_b = bench.dump("pi-b", "levels")["remote"]
            before_a = bench.dump("pi-a", "levels")["local"]
            bench.command("pi-a", do="flood", rate=args.rate, seconds=args.seconds)
            flood = bench.result("pi-a", "flood", timeout=args.seconds * 10 + 60)
            counted, still = -1, 0
            deadline = time.monotonic() + 60
            while still < 4 and time.monotonic() < deadline:  # 2 s without a change
                now = bench.dump("pi-b", "levels")["remote"] - before_b
                still = still + 1 if now == counted else 0
                counted = now
                time.sleep(0.5)
            local_counted = bench.dump("pi-a", "levels")["local"] - before_a
            achieved = flood["sent"] / flood["seconds"]
            rows.append((f"{args.rate}/s value changes, {args.seconds:g} s",
                         f"{achieved:,.0f}/s sent, {flood['sent'] - counted} lost "
                         f"({counted} of {flood['sent']})",
                         f"{flood['sent'] - local_counted} lost"))

            # 4. resynchronisation of a restarted host
            bench.command("pi-b", do="expect-resync", run=2, devices=args.devices)
            time.sleep(0.5)
            stopped = time.perf_counter()
            bench.daemons["pi-a"].stop(timeout=60)
            spawned = time.perf_counter()
            bench.start("pi-a", args.devices, 2)
            deadline = time.monotonic() + 120
            while True:
                resync = bench.dump("pi-b", "resync")
                if "done" in resync or time.monotonic() > deadline:
                    break
                time.sleep(0.25)
            if "done" in resync and "online" in resync:
                rows.append((f"resync of {args.devices} devices after A is online",
                             ms(resync["done"] - resync["online"]), "n/a"))
                rows.append(("  (A stopped -> started -> all resynced)",
                             f"{spawned - stopped:.2f} s stop, "
                             f"{resync['done'] - spawned:.2f} s start to resynced", ""))
            else:
                rows.append((f"resync of {args.devices} devices", f"not done: {resync}", ""))
            for daemon in bench.daemons.values():
                daemon.stop(timeout=60)
            bench.control.close()
        finally:
            broker.close()
    return rows


def conditions() -> str:
    mosquitto = subprocess.run(["mosquitto", "-h"], capture_output=True, text=True,
                               check=False).stdout.splitlines()[:1]
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"Python {platform.python_version()}, {(mosquitto or ['mosquitto ?'])[0]}, "
            f"{os.cpu_count()} cores, load average {load} (1, 5, 15 min)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--rate", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--samples", type=int, default=300)
    args = parser.parse_args()
    before = conditions()
    rows = run(args)
    print(f"before: {before}\nafter:  {conditions()}")
    print("two daemons and one Mosquitto on loopback; the local column is the same "
          "measurement within host A")
    width = max(len(r[0]) for r in rows)
    print(f"{'figure':<{width}}  {'cross-host':<40}  local-only")
    for name, remote, local in rows:
        print(f"{name:<{width}}  {remote:<40}  {local}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
