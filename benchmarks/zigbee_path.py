"""The zigbee2mqtt adapter's own CPU per message, in process, without a broker or sockets.

Run by hand::

    .venv/bin/python benchmarks/zigbee_path.py [--messages 5000] [--profile]

The real path from the MQTT reader to the ``/set`` writer (``PahoSession.doRead``, the
connection, the network, the registry and the bus, an automation's listener, the
collator, the connection's publish, ``PahoSession``'s write) runs on a fake clock over
an in-memory socket, so that no syscall, broker or other process is in the figure:

- ``ingest``: a six-value state message of the sensor (as ``benchmarks/zigbee.py``
  floods), one bus subscriber on its temperature;
- ``reaction``: a one-value sensor report that the mirror automation of
  ``benchmarks/zigbee.py`` answers with a QoS 1 ``/set``, whose PUBACK comes back with
  the next report (as the broker sends it).

Each figure is process CPU per message over batches of 250, the least and the median
of the batches: on a shared machine the least is what the code costs, the median what
it got. Compare builds by running this file against each (``--root``), taking turns.

``--callgrind`` counts instructions instead (valgrind's callgrind, load-independent):
each mode runs twice under it, with 500 and 1500 messages, and the difference over
1000 is the instructions per message of the path alone (start-up cancels out).
``--profile [cumulative|tottime]`` prints cProfile's view of where the time goes.
``benchmarks/zigbee.py --hops`` splits a real reaction (broker, sockets) hop by hop.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BATCH = 250
WARMUP = 200


class _MemorySocket:
    """What paho and the session need of a socket: bytes in, bytes out, no syscall."""

    def __init__(self) -> None:
        self.inbox = bytearray()
        self.outbox = bytearray()

    def recv(self, size: int) -> bytes:
        if not self.inbox:
            raise BlockingIOError
        data = bytes(self.inbox[:size])
        del self.inbox[:size]
        return data

    def send(self, data: bytes) -> int:
        self.outbox += data
        return len(data)

    def setsockopt(self, *args: Any) -> None:
        pass

    def close(self) -> None:
        pass

    def fileno(self) -> int:
        return -1


def _setup(mode: str) -> tuple[Any, Any, Any, _MemorySocket]:
    from paho.mqtt.client import _ConnectionState
    from twisted.internet.task import Clock
    from zigbee import MIRROR

    from hadaemon.bus import Bus
    from hadaemon.logs import get_logger
    from hadaemon.mqtt import MqttConnection, MqttSettings
    from hadaemon.mqtt.machine import State
    from hadaemon.mqtt.transport import PahoSession, _BufferedSocket
    from hadaemon.registry import Registry
    from hadaemon.testing.packets import publish_packet
    from hadaemon.zigbee.automation import AutomationRuntime
    from hadaemon.zigbee.codegen import write_module
    from hadaemon.zigbee.network import Network, NetworkSettings
    from hadaemon.zigbee.simulator import sample_devices
    from hadaemon.zigbee.testkit import _MemoryStore

    clock = Clock()
    for name in ("addReader", "addWriter", "removeReader", "removeWriter"):
        setattr(clock, name, lambda *args: None)  # nothing is registered: no real I/O
    bus = Bus(clock)
    store = _MemoryStore()
    registry = Registry(clock, bus, store)
    settings = MqttSettings(host="127.0.0.1", port=1, client_id="bench-path")
    connection = MqttConnection(clock, settings, bus=bus)
    network = Network(clock, connection, registry, bus, store,
                      NetworkSettings(initial_query=False), log=get_logger("bench"))
    if mode == "reaction":
        workdir = Path(tempfile.mkdtemp(prefix="hadaemon-bench-path-"))
        (workdir / "mirror.py").write_text(MIRROR)
        write_module(workdir, sample_devices())
        AutomationRuntime(workdir / "mirror.py", network, reactor=clock, bus=bus,
                          log=get_logger("bench")).load()
    network.start()
    raw = _MemorySocket()
    session = PahoSession(clock, settings, None, on_connack=lambda ok, reason: None,
                          on_message=connection._on_message, on_publish=connection._on_publish,
                          on_closed=lambda reason: None, log=connection.log,
                          on_read_done=connection._read_done)
    sock = _BufferedSocket(raw, quickack=True)
    session.client._sock = sock
    session.client._state = _ConnectionState.MQTT_CS_CONNECTED
    session._sock = sock
    session._handed_over = True
    connection._session = session
    connection.machine.state = State.CONNECTED
    raw.inbox += publish_packet("zigbee2mqtt/bridge/devices", json.dumps(sample_devices()).encode())
    while raw.inbox:
        session.doRead()
    network._become_ready()
    clock.advance(0.1)
    if mode == "ingest":
        temp = network.find("Living room temp")
        assert temp is not None
        bus.subscribe(f"variable/zigbee2mqtt/{temp.peer_id}/0/temperature", lambda _e: None)
    return clock, session, connection, raw


def _packets(mode: str, count: int) -> list[bytes]:
    from zigbee import SENSOR

    from hadaemon.testing.packets import publish_packet

    def one(i: int) -> dict[str, Any]:
        if mode == "reaction":
            return {"humidity": 10 + i % 200}
        return {"battery": 90, "humidity": 40 + (i % 100) / 10, "linkquality": i % 255,
                "pressure": 1000 + i % 7, "temperature": 20 + (i % 50) / 10, "voltage": 3000}

    return [publish_packet(SENSOR, json.dumps(one(i)).encode()) for i in range(count)]


def _pubacks(out: bytes) -> bytes:
    """A PUBACK for every QoS 1 PUBLISH in ``out`` (the broker's answer to our /set)."""
    from zigbee import split_packets

    from hadaemon.testing.packets import mqtt_packet

    packets, _rest = split_packets(out)
    return b"".join(mqtt_packet(0x40, body[topic_end:topic_end + 2])
                    for first, body in packets if first & 0xF0 == 0x30 and first & 0x06
                    for topic_end in [2 + ((body[0] << 8) | body[1])])


def run(mode: str, count: int, profile: str) -> dict[str, float]:
    clock, session, _connection, raw = _setup(mode)
    packets = _packets(mode, count + WARMUP)
    answered = 0

    def step(i: int) -> None:
        nonlocal answered
        raw.inbox += packets[i]
        session.doRead()
        clock.advance(0)
        if raw.outbox:
            acks = _pubacks(bytes(raw.outbox))
            raw.outbox.clear()
            answered += len(acks) // 4
            raw.inbox += acks  # read with the next report

    for i in range(WARMUP):
        step(i)
    clock.advance(2)
    answered = 0
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    batches = []
    for start in range(WARMUP, WARMUP + count - BATCH + 1, BATCH):
        cpu = time.process_time()
        for i in range(start, start + BATCH):
            step(i)
        batches.append((time.process_time() - cpu) / BATCH * 1e6)
    if profiler is not None:
        import pstats

        profiler.disable()
        pstats.Stats(profiler).sort_stats(profile).print_stats(45)
    batches.sort()
    if mode == "reaction" and answered < len(batches) * BATCH:
        raise SystemExit(f"only {answered} of {len(batches) * BATCH} reports were answered")
    return {"least": batches[0], "median": batches[len(batches) // 2]}


def instructions(mode: str, root: Path) -> int:
    """Instructions per message of ``mode`` under callgrind (1500 messages less 500)."""
    import os
    import subprocess

    counts = []
    for count in (500, 1500):
        with tempfile.NamedTemporaryFile(prefix="callgrind-") as out:
            subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out.name}",
                            sys.executable, __file__, "--root", str(root), "--modes", mode,
                            "--messages", str(count)],
                           env={**os.environ, "PYTHONHASHSEED": "0"}, check=True,
                           capture_output=True)
            summary = [line for line in Path(out.name).read_text().splitlines()
                       if line.startswith("summary:")]
            counts.append(int(summary[0].split()[1]))
    return (counts[1] - counts[0]) // 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--modes", default="ingest,reaction")
    parser.add_argument("--root", default=str(Path(__file__).resolve().parents[1]),
                        help="the hadaemon tree to measure (another build, for A/B)")
    parser.add_argument("--callgrind", action="store_true",
                        help="instructions per message under valgrind instead of CPU time")
    parser.add_argument("--profile", nargs="?", const="cumulative", default="",
                        help="cProfile, sorted by this (cumulative, tottime)")
    args = parser.parse_args()
    root = Path(args.root).resolve()
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # zigbee.py: MIRROR, SENSOR
    import zigbee  # noqa: F401  (it puts its own tree first on sys.path: imported first,
    sys.path.insert(0, str(root))  # ... the tree measured goes before it)
    import hadaemon

    if not Path(hadaemon.__file__).resolve().is_relative_to(root):
        raise SystemExit(f"hadaemon came from {hadaemon.__file__}, not from {root}")
    for mode in args.modes.split(","):
        if args.callgrind:
            print(f"{mode:9s} {instructions(mode.strip(), root):8d} instructions per message "
                  f"(callgrind)   [{root}]")
            continue
        result = run(mode.strip(), args.messages, args.profile)
        print(f"{mode:9s} {result['least']:6.1f} us CPU per message (least of batches), "
              f"median {result['median']:6.1f} us   [{root}]")


if __name__ == "__main__":
    main()
