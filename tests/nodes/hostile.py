"""Hostile clients of the node socket, for the memory test and benchmark: connections that
never authenticate, and random, truncated and oversized frames on both wires.

Plain blocking sockets, run from threads of the test (or benchmark) process: each frame
goes on a connection of its own, which is closed right after sending (the daemon may
answer or close first: whatever it does, the next connection follows).
"""

from __future__ import annotations

import os
import random
import socket
import struct
import threading
from collections.abc import Iterable, Iterator, Sequence

import msgpack

from hadaemon import binrpc


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
