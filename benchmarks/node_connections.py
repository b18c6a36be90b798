"""Node socket memory benchmark: the daemon's RSS under hostile connections, while a
legitimate flow runs.

Starts the real daemon (``hadaemon run``, its own process) with three real node
processes, ticker -> relay -> tally (msgpack, Homegear binary RPC through the test
stand-in of the real module, msgpack; a message every 10 ms), then from this process:

1. ``--rounds`` rounds (default 10) of ``--connections`` connections (default 1,000),
   each sending one frame without authenticating and closing (both wires);
2. ``--frames`` (default 10,000) random, truncated and oversized frames, each on a
   connection of its own (both wires), in rounds of ``--connections``.

After every round, once the daemon closed every connection of it (its count of open
file descriptors is back where it was), it prints the daemon's RSS (VmRSS) and its
difference to the anchor, the RSS measured in the same run once the flow ran and one
warm-up round of 100 connections was served (the first connections load code and fill
caches that stay). It also prints how many messages the flow delivered in the round and
whether any was lost or out of order (the flow must keep moving throughout), and the
refused connection counts. The goal: every round within 10 MB of the anchor.

Run it by hand: ``.venv/bin/python benchmarks/node_connections.py``.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hadaemon.testing import ChildProcesses, DaemonProcess, write_config  # noqa: E402
from tests.nodes import hostile  # noqa: E402

NODES = ROOT / "tests" / "nodes" / "nodes"
BINCLIENT = ROOT / "tests" / "nodes" / "binclient"


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def tally(path: pathlib.Path) -> tuple[int, int]:
    """(received, gaps) as the tally node last wrote them."""
    try:
        received, gaps, _last = path.read_text().split()
    except (FileNotFoundError, ValueError):
        return 0, 0
    return int(received), int(gaps)


def settle(pid: int, fds: int, timeout: float = 60.0) -> None:
    """Wait until the daemon closed the round's connections (its fds are back)."""
    deadline = time.monotonic() + timeout
    while open_fds(pid) > fds + 1:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the daemon still has {open_fds(pid)} fds (was {fds})")
        time.sleep(0.05)


def start(tmp: pathlib.Path, processes: ChildProcesses) -> tuple[DaemonProcess, pathlib.Path]:
    tally_file = tmp / "tally.txt"
    config = write_config(tmp / "hadaemon.toml", {
        "daemon": {"state_dir": "var", "plugins": ["nodes"], "stop_timeout": 10.0},
        "nodes": {"grace": 1.0, "socket_dir": str(tmp / "run"), "node": [
            {"id": "ticker", "file": str(NODES / "ticker.py"), "wires": [["relay"]]},
            {"id": "relay", "file": str(NODES / "relay.py"), "wires": [["tally"]],
             "wire": "binrpc", "env": {"PYTHONPATH": str(BINCLIENT)}},
            {"id": "tally", "file": str(NODES / "tally.py"),
             "info": {"file": str(tally_file)}},
        ]},
    })
    daemon = DaemonProcess(config, processes=processes).start(timeout=30)
    deadline = time.monotonic() + 30
    while tally(tally_file)[0] == 0:
        if time.monotonic() > deadline:
            raise RuntimeError("the flow did not start:\n" + daemon.output()[-3000:])
        time.sleep(0.05)
    return daemon, tally_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--frames", type=int, default=10000)
    parser.add_argument("--log", type=pathlib.Path, help="keep the daemon's output here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hadaemon-bench-") as tmp_name, \
            ChildProcesses() as processes:
        tmp = pathlib.Path(tmp_name)
        daemon, tally_file = start(tmp, processes)
        assert daemon.proc is not None
        pid = daemon.proc.pid
        path = str(tmp / "run" / "nodes.sock")
        fds = open_fds(pid)
        hostile.send_each(path, hostile.unauthenticated_frames() * 17)  # warm-up
        settle(pid, fds)
        anchor = rss_kib(pid)
        print(f"machine: {os.cpu_count()} cores (shared: other work may run); "
              f"python {sys.version.split()[0]}")
        print(f"anchor: daemon RSS {anchor / 1024:.1f} MiB after start-up, the flow "
              "running and a warm-up of 100 connections")
        print(f"{'round':<22} {'refused':>8} {'RSS MiB':>8} {'vs anchor':>10} "
              f"{'flow msgs':>9} {'lost/out of order':>17}")
        worst = 0
        received, _ = tally(tally_file)

        def report(name: str, refused: int) -> None:
            nonlocal worst, received
            settle(pid, fds)
            rss = rss_kib(pid)
            worst = max(worst, rss - anchor)
            now, gaps = tally(tally_file)
            print(f"{name:<22} {refused:>8} {rss / 1024:>8.1f} {(rss - anchor) / 1024:>+10.1f} "
                  f"{now - received:>9} {gaps:>17}", flush=True)
            received = now

        for i, refused in enumerate(hostile.rounds(path, args.connections, args.rounds)):
            report(f"unauthenticated {i + 1}", refused)
        garbage = hostile.garbage_frames(args.frames)
        for start_at in range(0, len(garbage), args.connections):
            chunk = garbage[start_at:start_at + args.connections]
            refused = hostile.send_each(path, chunk)
            report(f"bad frames {start_at + len(chunk)}", refused)
        final, gaps = tally(tally_file)
        print(f"worst: {worst / 1024:+.1f} MiB vs the anchor (goal: within 10 MB); "
              f"the flow delivered {final} messages, {gaps} lost or out of order; "
              f"daemon {'running' if daemon.proc.poll() is None else 'EXITED'}")
        daemon.stop()
        output = daemon.output()
        print(f"daemon log: {output.count(chr(10))} lines, "
              f"{output.count('node socket: ')} of them about the node socket")
        if args.log:
            args.log.write_text(output)


if __name__ == "__main__":
    main()
