"""Every node goal of one run, side by side with Node-RED's figures when it is installed.

Runs, one after the other on the same machine, so their figures share one load:

1. ``node_startup.py``: how long a spawn blocks the reactor (goal: at most 2 ms), and
   100 nodes to startUpComplete (goal: at most 2 s on 2 cores), quiet and busy, each
   next to its anchor (100 bare interpreters);
2. ``node_memory.py``: an idle node's RSS (goal: at most 12 MiB) next to a bare
   interpreter's;
3. ``nodes_vs_nodered.py``: the four-node chain's lossless throughput (goal: at least
   2x Node-RED's) and MQTT in -> two nodes -> MQTT out latency (goal: p50 no slower
   than Node-RED's), Node-RED 4.1 measured in the same run (``npm install node-red``;
   the script says when it is missing), on a stock mosquitto and on the test broker.

Each part states its own conditions. Run it by hand: ``.venv/bin/python benchmarks/nodes.py``.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).parent
PARTS = (
    ("start-up", ["node_startup.py"]),
    ("memory", ["node_memory.py"]),
    ("throughput and latency", ["nodes_vs_nodered.py"]),
)


def main() -> None:
    print(f"node benchmarks: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
          f"load average {os.getloadavg()[0]:.2f} at start", flush=True)
    failed = []
    for title, argv in PARTS:
        print(f"\n== {title} ({argv[0]})", flush=True)
        script = [sys.executable, str(HERE / argv[0]), *argv[1:]]
        if subprocess.run(script, check=False).returncode:
            failed.append(argv[0])
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
