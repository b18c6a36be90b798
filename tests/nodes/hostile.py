"""Hostile clients of the node socket, for the memory test and benchmark: connections that
never authenticate, and random, truncated and oversized frames on both wires; and the
daemon they attack, as a process running a legitimate flow (:class:`FlowDaemon`).

Plain blocking sockets, run from threads of the test (or benchmark) process: each frame
goes on a connection of its own, which is closed right after sending (the daemon may
answer or close first: whatever it does, the next connection follows).
"""

from __future__ import annotations

import os
import pathlib
import random
import socket
import struct
import threading
import time
from collections.abc import Iterable, Iterator, Sequence

import msgpack

from hadaemon import binrpc
from hadaemon.testing import ChildProcesses, DaemonProcess, write_config

NODES = pathlib.Path(__file__).parent / "nodes"
BINCLIENT = pathlib.Path(__file__).parent / "binclient"


def _pack(obj: object) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def unauthenticated_frames() -> list[bytes]:
    """One frame each of what an unauthenticated client may send: node calls before
    ``authenticate``, wrong tokens, ``setPid`` of a pid that is no node's, and a bare
    header (which leaves the connection waiting for the rest until it closes)."""
    return [
        _pack([0, 1, "getVersion", []]),
        _pack([2, "nodeOutput", ["a", 0, {"payload": 1}]]),
        _pack([0, 0, "authenticate", ["ticker", "not-the-token", {"protocol": 2}]]),
        binrpc.encode_request("setPid", [1, 1, [os.getpid()]]),
        binrpc.encode_request("getVersion", [1, 2, []]),
        b"\x94\x00\x01",  # a request's first bytes only
    ]


def garbage_frames(count: int, oversized: int = 256 * 1024, seed: int = 10) -> list[bytes]:
    """``count`` bad frames, in equal parts: random bytes, valid frames cut short
    (msgpack and binary RPC), frames declaring a size of 2 GiB, and frames of
    ``oversized`` bytes sent in full (beyond what a connection may send before it
    authenticated)."""
    rng = random.Random(seed)
    valid = [
        _pack([0, 7, "authenticate", ["ticker", "x" * 40, {"protocol": 2, "pid": 1}]]),
        _pack([2, "nodeOutput", ["ticker", 0, {"payload": list(range(50))}]]),
        binrpc.encode_request("setPid", [1, 1, [1234]]),
        binrpc.encode_request("nodeOutput", [1, 2, ["ticker", 0, {"payload": "x" * 100}]]),
    ]
    declared = [
        b"\xdb" + struct.pack(">I", 0x7FFFFFFF) + b"x" * 100,  # str32 of 2 GiB
        b"\xdd" + struct.pack(">I", 0x7FFFFFFF) + b"\x01" * 100,  # array32 of 2^31 items
        b"Bin\x00" + struct.pack(">I", 0x7FFFFFFF) + b"\x00" * 100,
        b"Bin\x40" + struct.pack(">I", 0x7FFFFFFF),  # a header block of 2 GiB
    ]
    big = oversized
    sent_in_full = [
        _pack([0, 1, "authenticate", ["ticker", "x" * big, {}]]),
        binrpc.encode_request("setPid", [1, 1, ["x" * big]]),
    ]
    frames: list[bytes] = []
    for i in range(count):
        kind = i % 4
        if kind == 0:
            frames.append(rng.randbytes(rng.randint(1, 2048)))
        elif kind == 1:
            frame = valid[rng.randrange(len(valid))]
            frames.append(frame[:rng.randint(1, len(frame) - 1)])
        elif kind == 2:
            frames.append(declared[rng.randrange(len(declared))])
        else:
            frames.append(sent_in_full[rng.randrange(len(sent_in_full))])
    return frames


def send_each(path: str, frames: Sequence[bytes], threads: int = 4) -> int:
    """Send every frame on a connection of its own from ``threads`` threads at once;
    how many connections the daemon refused or closed before the frame was sent in full
    (over the cap of unauthenticated connections, or already closed for the frame's
    first bytes)."""
    refused = [0]
    lock = threading.Lock()
    chunks = [frames[i::threads] for i in range(threads)]

    def run(mine: Iterable[bytes]) -> None:
        for frame in mine:
            if not _send_one(path, frame):
                with lock:
                    refused[0] += 1

    workers = [threading.Thread(target=run, args=(chunk,)) for chunk in chunks]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return refused[0]


def _send_one(path: str, frame: bytes) -> bool:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)  # blocking: waits while the listen backlog is full
        sock.settimeout(10.0)
        sock.sendall(frame)
        return True
    except OSError:  # reset or closed by the daemon, or the socket went with it
        return False
    finally:
        sock.close()


def rounds(path: str, connections: int, count: int) -> Iterator[int]:
    """``count`` rounds of ``connections`` unauthenticated connections; yields after
    each (the number the daemon refused or closed early)."""
    frames = unauthenticated_frames()
    for _ in range(count):
        yield send_each(path, [frames[i % len(frames)] for i in range(connections)])


class FlowDaemon:
    """``hadaemon run`` as a process, with three real node processes exchanging messages:
    ticker -> relay -> tally (msgpack, Homegear binary RPC through the test stand-in of
    the real module, msgpack; a message every 10 ms). ``start()`` returns once the
    messages arrive."""

    def __init__(self, tmp: pathlib.Path, processes: ChildProcesses, **nodes: object) -> None:
        self.tally_file = tmp / "tally.txt"
        self.socket_path = str(tmp / "run" / "nodes.sock")
        config = write_config(tmp / "hadaemon.toml", {
            "daemon": {"state_dir": "var", "plugins": ["nodes"], "stop_timeout": 10.0},
            "nodes": {"grace": 1.0, "socket_dir": str(tmp / "run"), **nodes, "node": [
                {"id": "ticker", "file": str(NODES / "ticker.py"), "wires": [["relay"]]},
                {"id": "relay", "file": str(NODES / "relay.py"), "wires": [["tally"]],
                 "wire": "binrpc", "env": {"PYTHONPATH": str(BINCLIENT)}},
                {"id": "tally", "file": str(NODES / "tally.py"),
                 "info": {"file": str(self.tally_file)}},
            ]},
        })
        self.daemon = DaemonProcess(config, processes=processes)

    def start(self) -> FlowDaemon:
        self.daemon.start(timeout=30)
        self.wait_for_flow(0)
        return self

    @property
    def pid(self) -> int:
        assert self.daemon.proc is not None
        return self.daemon.proc.pid

    def running(self) -> bool:
        return self.daemon.proc is not None and self.daemon.proc.poll() is None

    def rss_kib(self) -> int:
        """The daemon's resident memory (VmRSS)."""
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise RuntimeError(f"no VmRSS for pid {self.pid}")

    def open_fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def settle(self, fds: int, timeout: float = 60.0) -> None:
        """Wait until the daemon closed what was opened since it had ``fds`` open."""
        deadline = time.monotonic() + timeout
        while self.open_fds() > fds + 1:
            if time.monotonic() > deadline or not self.running():
                raise RuntimeError(f"the daemon still has {self.open_fds()} open file "
                                   f"descriptors (had {fds})")
            time.sleep(0.05)

    def tally(self) -> tuple[int, int]:
        """(received, gaps) as the tally node last wrote them."""
        try:
            received, gaps, _last = self.tally_file.read_text().split()
        except (FileNotFoundError, ValueError):
            return 0, 0
        return int(received), int(gaps)

    def wait_for_flow(self, received: int, timeout: float = 30.0) -> int:
        """Wait until the flow delivered more than ``received`` messages; how many."""
        deadline = time.monotonic() + timeout
        while (now := self.tally()[0]) <= received:
            if time.monotonic() > deadline or not self.running():
                raise RuntimeError(f"the flow stopped at {now} messages:\n"
                                   + self.daemon.output()[-3000:])
            time.sleep(0.02)
        return now
