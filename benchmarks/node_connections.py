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
caches that stay). It also prints the round's duration, how many messages the flow
delivered in it and whether any was lost or out of order so far (the flow must keep
moving throughout), and how many connections were cut off before their frame was sent in
full (the oversized frames: the daemon closes a connection at 64 KiB before
authentication). Connections over ``[nodes].max_unauthenticated`` (64) are closed at
connect, unread: the client does not notice, the daemon's log says so once per 10 s.
At the end: the worst round, and the daemon's log lines about the node socket (one per
bad frame it read). The goal: every round within 10 MB of the anchor.

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

from hadaemon.testing import ChildProcesses  # noqa: E402
from tests.nodes import hostile  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--frames", type=int, default=10000)
    parser.add_argument("--log", type=pathlib.Path, help="keep the daemon's output here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hadaemon-bench-") as tmp_name, \
            ChildProcesses() as processes:
        flow = hostile.FlowDaemon(pathlib.Path(tmp_name), processes).start()
        path = flow.socket_path
        fds = flow.open_fds()
        hostile.send_each(path, hostile.unauthenticated_frames() * 17)  # warm-up
        flow.settle(fds)
        anchor = flow.rss_kib()
        print(f"machine: {os.cpu_count()} cores (shared: other work may run); "
              f"python {sys.version.split()[0]}")
        print(f"anchor: daemon RSS {anchor / 1024:.1f} MiB after start-up, the flow "
              "running and a warm-up of 100 connections")
        print(f"{'round':<22} {'cut off':>8} {'seconds':>8} {'RSS MiB':>8} {'vs anchor':>10} "
              f"{'flow msgs':>9} {'lost/out of order':>17}")
        worst = 0
        received, _ = flow.tally()
        started = time.monotonic()

        def report(name: str, cut_off: int) -> None:
            nonlocal worst, received, started
            flow.settle(fds)
            rss = flow.rss_kib()
            worst = max(worst, rss - anchor)
            now, gaps = flow.tally()
            print(f"{name:<22} {cut_off:>8} {time.monotonic() - started:>8.2f} "
                  f"{rss / 1024:>8.1f} {(rss - anchor) / 1024:>+10.1f} "
                  f"{now - received:>9} {gaps:>17}", flush=True)
            received, started = now, time.monotonic()

        for i, cut_off in enumerate(hostile.rounds(path, args.connections, args.rounds)):
            report(f"unauthenticated {i + 1}", cut_off)
        garbage = hostile.garbage_frames(args.frames)
        for start_at in range(0, len(garbage), args.connections):
            chunk = garbage[start_at:start_at + args.connections]
            report(f"bad frames {start_at + len(chunk)}", hostile.send_each(path, chunk))
        final, gaps = flow.tally()
        print(f"worst: {worst / 1024:+.1f} MiB vs the anchor (goal: within 10 MB); "
              f"the flow delivered {final} messages, {gaps} lost or out of order; "
              f"daemon {'running' if flow.running() else 'EXITED'}")
        flow.daemon.stop()
        output = flow.daemon.output()
        print(f"daemon log: {output.count(chr(10))} lines, "
              f"{output.count('node socket: ')} of them about the node socket")
        if args.log:
            args.log.write_text(output)


if __name__ == "__main__":
    main()
