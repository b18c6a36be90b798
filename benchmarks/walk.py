"""The walk of issue 12: reaction latency through all three worlds, next to its parts.

Run by hand (it starts its own brokers and daemons)::

    .venv/bin/python benchmarks/walk.py [--reactions 300] [--interval 0.02] [--repeat 3]
        [--brokers stock,test] [--paths walk,zigbee,zigbee+node,zigbee+service,walk+trace]
        [--profile DIR]

A zigbee2mqtt-style sensor report (``zigbee2mqtt/Living room temp``, ``{"humidity": n}``)
leaves a measuring client; the daemon (``hadaemon run`` as its own process, on the config
of ``tests/walk/scenario.py``) answers with ``zigbee2mqtt/Hallway Hue/set``
``{"brightness": n}`` (QoS 1); the latency is from the report leaving to the ``/set``
arriving back at the client. Closed loop: the next report leaves ``--interval`` after
the answer. The paths, each a daemon of its own, taking turns ``--repeat`` times:

- ``walk``: zigbee adapter -> registry -> bus event -> node process ``eventHandler`` ->
  ``nodeOutput`` -> wire -> service action -> ``SubmitAction("device:<lamp>")`` ->
  registry -> zigbee adapter -> ``/set`` (docs/architecture.md, "The walk");
- ``zigbee``: the zigbee world alone, a pyziggy automation mirroring the sensor onto the
  lamp (what ``benchmarks/zigbee.py`` measures, here inside the whole daemon);
- ``zigbee+node``: the node's output wired straight to ``device:<lamp>`` (no service);
- ``zigbee+service``: a service subscribed to the sensor's event (no node);
- ``walk+trace``: the walk with timestamps (one monotonic clock for all processes): the
  node stamps its output, the service its action's start and reports both upstream
  (``walk/trace``), so the latency is split into report -> node ``eventHandler``,
  ``nodeOutput`` -> service action, service action -> ``/set`` at the client (read it on
  the ``test`` broker: on ``stock`` the trace message and the ``/set`` meet Nagle in
  mosquitto, and the last hop waits ~40 ms for a delayed ACK);
- and the floor: a plain paho client mirroring the report (``benchmarks/zigbee.py``).

So ``zigbee+node - zigbee`` is what the node hop costs, ``zigbee+service - zigbee`` the
service hop, and ``walk`` should come near ``zigbee`` plus both.

Brokers: ``stock``, mosquitto with only a listener (Nagle on, as installed); ``test``,
the broker of ``hadaemon.testing`` (``set_tcp_nodelay true``, as docs/mqtt.md
recommends). Each broker's whole config is printed beside its figures.

``--profile DIR`` runs each daemon under cProfile (the reactor thread; the node process
is not profiled) and prints the walk's top functions; the profiled figures are slower.

The machine may be shared: compare figures within one run, never across runs; each
path's runs are printed as a range.
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.zigbee import (  # noqa: E402
    MIRROR,
    floor_latency,
    percentile,
    spawn,
    stock_broker,
)
from tests.walk.scenario import (  # noqa: E402
    LAMP,
    LAMP_SET,
    PATHS,
    SENSOR,
    TRACE_TOPIC,
    write_walk,
)

# What each path's daemon logs once it can react (after "hadaemon started:").
READY = {
    "walk": ("relay ready", "walk lamp ready"),
    "zigbee": (),
    "zigbee+node": ("relay ready",),
    "zigbee+service": (),
    "walk+trace": ("relay ready",),
}
WARMUP = 20
LAST_DEVICE = "zigbee2mqtt: device Garden 2ch"


def make_broker(name: str) -> Any:
    from hadaemon.testing import Broker

    if name == "stock":
        return stock_broker(())
    if name == "test":
        return Broker(impl="mosquitto")
    raise SystemExit(f"unknown broker {name!r}: stock or test")


def run_path(broker: Any, path: str, workdir: Path, args: argparse.Namespace,
             lamp_peer: int | None, profile: Path | None) -> tuple[dict[str, Any], int | None]:
    """One daemon on ``path``, measured closed loop; returns the result and the lamp's
    peer id if the node logged it."""
    from hadaemon.testing import ChildProcesses, DaemonProcess

    directory = workdir / path.replace("+", "_")
    config = write_walk(directory, broker.host, broker.port, path=path, lamp_peer=lamp_peer,
                        automation=MIRROR, daemon={"state_dir": str(workdir / "var")})
    command = None
    if profile is not None:
        command = [sys.executable, "-m", "cProfile", "-o", str(profile), "-m", "hadaemon",
                   "run", "--config", str(config)]
    with ChildProcesses() as processes:
        daemon = DaemonProcess(config, processes=processes, command=command).start(timeout=60)
        try:
            for mark in (LAST_DEVICE, *READY[path]):
                daemon.wait_for_output(mark, timeout=60)
            probe(broker, daemon)
            if path == "walk+trace":
                child = subprocess.Popen(
                    [sys.executable, __file__, "trace", broker.host, str(broker.port),
                     str(args.reactions), str(args.interval)], stdout=subprocess.PIPE, text=True)
            else:
                child = spawn("measure", broker.host, broker.port, args.reactions,
                              args.interval)
            out, _ = child.communicate()
        finally:
            status = daemon.stop(timeout=60)
        if status != 0:
            raise SystemExit(f"{path}: the daemon exited with {status}:\n"
                             + daemon.output()[-3000:])
        found = re.search(rf"lamp {LAMP}: peer (\d+)", daemon.output())
    return dict(json.loads(out)), int(found.group(1)) if found else None


def child_trace(host: str, port: int, count: int, interval: float) -> None:
    """Closed loop on the walk with timestamps: per reaction the report leaving, the
    node's eventHandler, the service's action, the /set arriving (one monotonic clock)."""
    import threading

    from benchmarks.zigbee import _client, _report

    got = threading.Event()
    traces: dict[int, dict[str, float]] = {}
    arrived: list[float] = []

    def on_message(c: Any, u: Any, message: Any) -> None:
        now = time.perf_counter()
        if message.topic == TRACE_TOPIC:
            trace = json.loads(message.payload)
            traces[int(trace["value"])] = trace
        else:
            arrived.append(now)
            got.set()

    client = _client(host, port, f"trace-{os.getpid()}")
    client.on_message = on_message
    client.subscribe(LAMP_SET, qos=1)
    client.subscribe(TRACE_TOPIC, qos=0)
    client.loop_start()
    time.sleep(0.5)
    hops: list[tuple[float, float, float]] = []
    lost = 0
    for i in range(count + WARMUP):
        got.clear()
        value = 10 + i % 200
        traces.pop(value, None)
        start = time.perf_counter()
        client.publish(SENSOR, _report(i), qos=0)
        if not got.wait(2.0):
            lost += 1
            continue
        end = arrived[-1]
        deadline = time.perf_counter() + 2.0
        while value not in traces and time.perf_counter() < deadline:
            time.sleep(0.001)
        trace = traces.get(value)
        if trace is not None and i >= WARMUP:
            hops.append((trace["t_node"] - start, trace["t_service"] - trace["t_node"],
                         end - trace["t_service"]))
        time.sleep(interval)
    client.loop_stop()
    print(json.dumps({"hops": hops, "latencies": [sum(h) * 1000 for h in hops],
                      "lost": lost}))


def trace_summary(results: list[dict[str, Any]]) -> str:
    """The p50 of each hop (ms), ranges over the runs."""
    names = ("report -> node eventHandler", "nodeOutput -> service action",
             "service action -> /set at the client")
    lines = []
    for index, name in enumerate(names):
        p50s = [statistics.median(h[index] for h in r["hops"]) * 1000
                for r in results if r["hops"]]
        lines.append(f"    {name:38s} p50 {min(p50s):5.2f}-{max(p50s):5.2f} ms")
    return "\n".join(lines)


def probe(broker: Any, daemon: Any) -> None:
    """One report answered, or stop here with the daemon's log (rather than time out on
    every reaction)."""
    from hadaemon.testing import BlockingClient

    with BlockingClient(broker) as client:
        client.subscribe(LAMP_SET)
        client.publish(SENSOR, json.dumps({"humidity": 5}))
        try:
            client.expect(LAMP_SET, timeout=10)
        except Exception as exc:
            raise SystemExit(f"no /set: {exc}\n{daemon.output()[-3000:]}") from None


def summary(results: list[dict[str, Any]]) -> str:
    """p50 and p99 of each run (ranges over the runs) and what was lost."""
    p50s = [statistics.median(r["latencies"]) for r in results if r["latencies"]]
    p99s = [percentile(r["latencies"], 99) for r in results if r["latencies"]]
    lost = sum(r["lost"] for r in results)
    if not p50s:
        return "no answers"
    return (f"p50 {min(p50s):5.2f}-{max(p50s):5.2f} ms (median {statistics.median(p50s):5.2f})"
            f"   p99 {min(p99s):6.2f}-{max(p99s):6.2f} ms   lost {lost}")


def median_p50(results: list[dict[str, Any]]) -> float:
    return float(statistics.median(statistics.median(r["latencies"]) for r in results
                                   if r["latencies"]))


def _load() -> str:
    return f"{os.getloadavg()[0]:.1f}"


def bench_broker(name: str, args: argparse.Namespace) -> None:
    paths = [p.strip() for p in args.paths.split(",")]
    broker = make_broker(name)
    with broker:
        from hadaemon.testing import BlockingClient
        from hadaemon.zigbee.simulator import sample_devices

        with BlockingClient(broker) as client:
            client.publish("zigbee2mqtt/bridge/devices", json.dumps(sample_devices()),
                           retain=True)
        lines = [line for line in broker.config_path.read_text().splitlines()
                 if line and not line.startswith("#")]
        print(f"\nmosquitto '{name}', its whole config: " + "; ".join(lines)
              + f"   (load average {_load()})")
        workdir = Path(tempfile.mkdtemp(prefix="hadaemon-walk-"))
        results: dict[str, list[dict[str, Any]]] = {p: [] for p in [*paths, "floor"]}
        lamp_peer: int | None = None
        # The walk first: its node finds the lamp's peer id (fixed in this state dir),
        # which the paths that address the lamp directly need.
        order = ["walk", *(p for p in paths if p != "walk")]
        results.setdefault("walk", [])
        for run in range(args.repeat):
            for path in order:
                profile = None
                if args.profile is not None and run == 0:
                    profile = args.profile / f"{name}-{path.replace('+', '_')}.prof"
                result, peer = run_path(broker, path, workdir, args, lamp_peer, profile)
                lamp_peer = lamp_peer or peer
                results[path].append(result)
            results["floor"].append(floor_latency(broker, "measure", args.reactions,
                                                  args.interval))
        for path in [*order, "floor"]:
            label = "plain paho" if path == "floor" else path
            print(f"  {label:15s} {summary(results[path])}")
            if path == "walk+trace":
                print(trace_summary(results[path]))
        if results.get("zigbee"):
            base = median_p50(results["zigbee"])
            for path in ("zigbee+node", "zigbee+service", "walk"):
                if results.get(path):
                    print(f"  {path:15s} - zigbee: {median_p50(results[path]) - base:+5.2f} ms"
                          " (median p50s)")


def print_profile(directory: Path, top: int) -> None:
    for prof in sorted(directory.glob("*walk.prof")):
        print(f"\nprofile {prof.name} (the daemon's reactor thread, whole run, by own time):")
        stats = pstats.Stats(str(prof))
        stats.sort_stats("tottime").print_stats(top)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reactions", type=int, default=300)
    parser.add_argument("--interval", type=float, default=0.02,
                        help="seconds between an answer and the next report")
    parser.add_argument("--repeat", type=int, default=3, help="runs per path, taking turns")
    parser.add_argument("--brokers", default="stock,test", help="comma-separated: stock, test")
    parser.add_argument("--paths", default=",".join(PATHS),
                        help=f"comma-separated, of {', '.join(PATHS)}")
    parser.add_argument("--profile", type=Path, default=None,
                        help="directory for cProfile output of each path's first run")
    parser.add_argument("--top", type=int, default=30, help="profile lines printed")
    args = parser.parse_args()
    for path in args.paths.split(","):
        if path.strip() not in PATHS:
            raise SystemExit(f"unknown path {path!r}: of {', '.join(PATHS)}")
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    from hadaemon.testing import find_mosquitto

    version = subprocess.run([find_mosquitto() or "mosquitto", "-h"], capture_output=True,
                             text=True, check=False).stdout.splitlines()[:1]
    print(f"hadaemon walk benchmark: python {sys.version.split()[0]}, {os.cpu_count()} cores, "
          f"{' '.join(version)}; closed loop, {args.reactions} reactions per run "
          f"{args.interval * 1000:.0f} ms apart (after 20 warm-up), {args.repeat} runs per "
          "path taking turns; the daemon is `hadaemon run`, the measuring client (paho, "
          "TCP_NODELAY) a child process" + ("; PROFILED (slower)" if args.profile else ""))
    for name in args.brokers.split(","):
        bench_broker(name.strip(), args)
    if args.profile is not None:
        print_profile(args.profile, args.top)
    print(f"\nload average at the end: {_load()}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "trace":
        host, port, count, interval = sys.argv[2:6]
        child_trace(host, int(port), int(count), float(interval))
    else:
        main()
