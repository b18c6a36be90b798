"""The daemon as a process (`hadaemon run`) under hostile clients of its node socket: every
bad frame gets a log line naming its problem, thousands of them do not make it grow, and
a flow of real node processes keeps running throughout, nothing lost."""

from __future__ import annotations

import os
import pathlib
import random
import socket
import struct
import time

import msgpack

from hadaemon import binrpc
from hadaemon.testing import ChildProcesses
from tests.nodes import hostile

MARK = "node socket: "


def pack(obj: object) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def socket_lines(flow: hostile.FlowDaemon) -> list[str]:
    return [line for line in flow.daemon.output().splitlines() if MARK in line]


def wait_for_lines(flow: hostile.FlowDaemon, count: int, timeout: float = 30.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while len(lines := socket_lines(flow)) < count:
        if time.monotonic() > deadline or not flow.running():
            raise AssertionError(f"{len(lines)} node socket lines, wanted {count}:\n"
                                 + flow.daemon.output()[-3000:])
        time.sleep(0.02)
    return lines


def send_and_close(path: str, frame: bytes) -> None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
        sock.sendall(frame)
    except OSError:
        pass  # closed by the daemon before all of it was sent (an oversized frame)
    finally:
        sock.close()


def bad_frames() -> list[tuple[bytes, str]]:
    """Bad frames of every kind, each with the problem its log line must name."""
    too_big = "larger than the limit of 65536 bytes before authenticating"
    not_a_node = f"pid {os.getpid()} is not a node process this daemon started"
    frames = [
        (b"\xc1\xc1garbage", "malformed msgpack"),
        (b"\xdd\x7f\xff\xff\xff" + b"\x01" * 100, "malformed msgpack"),
        (b"\xa2\xff\xfe", "malformed msgpack"),
        (pack({"method": "getVersion"}), "a message is a non-empty array"),
        (pack([5, 1]), "unknown message type 5"),
        (pack([0, 7, "getVersion", 5]), "params of getVersion must be an array"),
        (pack([0, 1, "getVersion", []]), "called getVersion before authenticating"),
        (pack([2, "nodeOutput", ["ticker", 0, {}]]), "sent nodeOutput before authenticating"),
        (pack([0, 0, "authenticate", ["ticker", "forged", {}]]), "refused as node 'ticker'"),
        (pack([0, 0, "authenticate", ["nobody", "forged", {}]]), "refused as node 'nobody'"),
        (b"\x94\x00\x01", "closed in the middle of a message (3 bytes of it received)"),
        # A str of 2 GiB, 100 bytes of it: msgpack reads the length as it goes.
        (b"\xdb" + struct.pack(">I", 0x7FFFFFFF) + b"x" * 100,
         "closed in the middle of a message (105 bytes of it received)"),
        (b"\xdd" + struct.pack(">I", 1 << 20) + b"\x01" * 70_000, too_big),
        (pack(["x" * 100_000]), too_big),
        (binrpc.encode_request("setPid", [1, 1, [os.getpid()]]), not_a_node),
        (binrpc.encode_request("getVersion", [1, 2, []]), not_a_node),
        (b"Bin\x00" + struct.pack(">I", 0x7FFFFFFF), "packet data of 2147483647 bytes "
         "exceeds the limit of 65536 bytes"),
        (b"Bin\x40" + struct.pack(">I", 0x7FFFFFFF), "packet header of 2147483647 bytes"),
        (b"Bin\x07\x00\x00\x00\x01x", "unknown packet type 0x07"),
        (b"Bin\x00\x00\x00\x00\x00", "invalid packet: data length 0"),
        (binrpc.encode_request("setPid", [1, 1, [1]])[:12], "closed in the middle of a message"),
        (b"Bi", "closed the connection after 2 byte(s)"),
    ]
    rng = random.Random(4)
    frames += [(rng.randbytes(rng.randint(1, 300)), "") for _ in range(30)]
    return frames


def test_bad_frames_get_clear_errors_memory_stays_and_the_flow_runs(
    tmp_path: pathlib.Path, processes: ChildProcesses
) -> None:
    flow = hostile.FlowDaemon(tmp_path, processes).start()
    path = flow.socket_path
    # 1. One bad frame at a time: each gets a line naming its problem.
    for frame, problem in bad_frames():
        before = len(socket_lines(flow))
        send_and_close(path, frame)
        line = wait_for_lines(flow, before + 1)[before]
        assert problem in line, (frame[:20], problem, line)
    received = flow.wait_for_flow(0)
    # 2. Thousands at once, in rounds: the daemon's memory stays where it was (once the
    # first connections loaded what they need) and the flow keeps moving.
    fds = flow.open_fds()
    hostile.send_each(path, hostile.unauthenticated_frames() * 17)
    flow.settle(fds)
    anchor = flow.rss_kib()
    garbage = hostile.garbage_frames(3000)
    rounds = [[frames[i % 6] for i in range(1000)]
              for frames in [hostile.unauthenticated_frames()] * 3]
    rounds += [garbage[i:i + 1000] for i in range(0, 3000, 1000)]
    growth = []
    for frames in rounds:
        hostile.send_each(path, frames)
        flow.settle(fds)
        growth.append((flow.rss_kib() - anchor) / 1024)
        received = flow.wait_for_flow(received)
    assert max(growth) < 10, growth  # MiB
    assert flow.running()
    assert flow.tally()[1] == 0, "messages of the flow were lost or out of order"
    # Every frame the daemon read got its line; those over the cap of unauthenticated
    # connections were closed unread (logged once per period).
    lines = socket_lines(flow)
    assert len(lines) > 1000
    assert any("waiting to authenticate" in line for line in lines)
    assert flow.daemon.stop() == 0
