"""The node socket against bad peers: garbage, oversized and malformed frames, missing or
wrong tokens, other users, and a node acting as another node. Nothing of it disturbs the
daemon or the other nodes."""

from __future__ import annotations

import os
import pathlib
import shutil
import stat
import subprocess
import sys
import tempfile
from typing import Any

import msgpack
import pytest
from twisted.internet.threads import deferToThreadPool
from twisted.logger import LogLevel

from hadaemon.nodes.client import CLIENT_DIR
from hadaemon.testing import capture_logs, run_in_reactor, wait_until
from tests.nodes.helpers import WIRES, exchange, logged, make_config, node, running


def msgpack_exchange(path: str, *frames: bytes) -> tuple[list[Any], bool]:
    """:func:`exchange` with msgpack answers."""
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)

    def decode(data: bytes) -> list[Any]:
        unpacker.feed(data)
        return list(unpacker)

    return exchange(path, *frames, decode=decode)


def pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def in_thread(reactor: Any, fn: Any, *args: Any) -> Any:
    return deferToThreadPool(reactor, reactor.getThreadPool(), fn, *args)


def test_garbage_oversized_and_malformed_frames(tmp_path: pathlib.Path) -> None:
    config = make_config(tmp_path, [node("a", "relay.py", info={"mode": "sum"})],
                         max_frame=4096)

    async def scenario(reactor: Any) -> None:
        with capture_logs() as logs:
            async with running(reactor, config) as run:
                path = run.plugin.socket_path
                cases = {
                    "garbage": [b"\xc1\xc1\xc1garbage"],
                    "big string": [pack("x" * 10000)],
                    "many small items": [b"\xdd\x00\x01\x00\x00" + b"\x01" * 5000],
                    "bad utf-8": [b"\xa2\xff\xfe"],
                    "not an array": [pack({"method": "getVersion"})],
                    "unknown type": [pack([5, 1])],
                    "params not an array": [pack([0, 7, "getVersion", 5])],
                    "unauthenticated": [pack([0, 1, "getVersion", []])],
                    "wrong token": [pack([0, 0, "authenticate", ["a", "not-the-token", {}]])],
                    "unknown node": [pack([0, 0, "authenticate", ["zz", "x", {}]])],
                    "split magic": [b"B", b"i", b"x"],  # "Bi" could still be binary RPC
                }
                results = {}
                for name, frames in cases.items():
                    results[name] = await in_thread(reactor, msgpack_exchange, path, *frames)
                    # Every time, the node and the daemon carry on.
                    assert await run.send("node:a/0", {"payload": name}) == [0, name]
                for name, (_answers, closed) in results.items():
                    assert closed, name
                assert results["params not an array"][0] == [
                    [1, 7, {"faultCode": -32602, "faultString":
                            "params of getVersion must be an array, got int"},
                     None]]
                fault = results["unauthenticated"][0][0][2]
                assert fault["faultCode"] == -32002
                for name in ("wrong token", "unknown node"):
                    assert results[name][0][0][2]["faultCode"] == -32001
                assert run.state("a")["restarts"] == 0 and run.state("a")["connected"]
        lines = "\n".join(logged(logs, level=LogLevel.warn))
        for expected in ("malformed msgpack", "larger than the limit of 4096 bytes",
                         "unknown message type 5", "called getVersion before authenticating",
                         "refused as node 'a'", "a message is a non-empty array"):
            assert expected in lines, expected

    run_in_reactor(scenario, timeout=60)


@pytest.mark.parametrize("wire", WIRES)
def test_a_node_cannot_act_as_another(tmp_path: pathlib.Path, wire: str) -> None:
    calls = [
        ["setNodeData", ["victim", "k", "forged"]],
        ["nodeOutput", ["victim", 0, {"payload": "forged"}]],
        ["nodeEvent", ["impostor", "status/victim", {"text": "forged"}]],
        ["getNodeCredentials", ["victim"]],
        ["setNodeData", ["impostor", "k", "mine"]],
        ["nodeOutput", ["impostor", 0, {"payload": "mine"}]],
    ]
    config = make_config(tmp_path, [
        node("impostor", "raw.py" if wire == "msgpack" else "raw_binary.py", wire,
             info={"scenario": "calls", "calls": calls}, wires=[["test:sink/impostor"]]),
        node("victim", "calls.py", wire, wires=[["test:sink/victim"]]),
    ])

    async def scenario(reactor: Any) -> None:
        async with running(reactor, config) as run:
            answers = (await run.sink.wait(reactor, 2, "impostor"))
            answers = next(a for a in answers if isinstance(a, list))
            for error, _result in answers[:4]:
                assert error["faultCode"] == -32003, error
            assert "this connection is node 'impostor', not 'victim'" in answers[0][0][
                "faultString"]
            assert answers[4] == [None, None] and answers[5] == [None, None]
            store = run.daemon.store
            assert store.get("plugin/nodes/node/victim/k") is None
            assert store.get("plugin/nodes/node/impostor/k") == "mine"
            assert run.sink.payloads("victim") == []
            assert "mine" in run.sink.payloads("impostor")
            assert run.state("victim")["status"] == {}

    run_in_reactor(scenario, timeout=30)


def python_for_nobody() -> str | None:
    """A Python that uid 65534 may run (the venv's may sit in a private home)."""
    for candidate in (sys.executable, "/usr/bin/python3", "/usr/local/bin/python3"):
        try:
            subprocess.run([candidate, "-c", "pass"], user=65534, check=True, timeout=10,
                           capture_output=True)
        except (OSError, subprocess.SubprocessError):
            continue
        return candidate
    return None


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to connect as another user")
def test_a_peer_of_another_user_is_refused(tmp_path: pathlib.Path) -> None:
    python = python_for_nobody()
    if python is None:
        pytest.skip("no Python that uid 65534 can run")
    # (the test's tmp_path is private to root: put the socket where others could reach it)
    socket_dir = pathlib.Path(tempfile.mkdtemp(prefix="hadaemon-test-"))
    config = make_config(tmp_path, [node("a", "relay.py")], socket_dir=str(socket_dir))
    probe = (
        "import socket, sys\n"
        "s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.settimeout(3)\n"
        "try:\n"
        "    s.sendall(bytes([0x94, 0, 0, 0xac]) + b'authenticate' + bytes([0x90]))\n"
        "    print(repr(s.recv(100)))  # the close, or an answer\n"
        "except OSError as e:\n"
        "    print(type(e).__name__)\n"
    )

    async def scenario(reactor: Any) -> None:
        with capture_logs() as logs:
            async with running(reactor, config) as run:
                path = pathlib.Path(run.plugin.socket_path)
                # The file system already keeps others out: 0700 directory, 0600 socket.
                assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
                assert stat.S_IMODE(path.stat().st_mode) == 0o600
                # Open it up, to see that SO_PEERCRED refuses them anyway.
                os.chmod(path.parent, 0o755)
                os.chmod(path, 0o777)
                result = await in_thread(reactor, lambda: subprocess.run(
                    [python, "-c", probe, str(path)], user=65534,
                    capture_output=True, text=True, timeout=10))
                # Closed without a word: nothing was answered (the daemon closed before
                # or after the request arrived, whichever came first).
                assert result.stdout.strip() in (
                    "b''", "ConnectionResetError", "BrokenPipeError"), result
        assert any("refused a connection from uid 65534" in line
                   for line in logged(logs, level=LogLevel.warn))

    try:
        run_in_reactor(scenario, timeout=30)
    finally:
        shutil.rmtree(socket_dir, ignore_errors=True)


def test_a_process_the_daemon_does_not_know_exits(tmp_path: pathlib.Path) -> None:
    # E.g. an orphan of a killed daemon, reconnecting to its successor: refused, it ends
    # itself (here a node that ignores connected() entirely).
    config = make_config(tmp_path, [node("a", "relay.py")])
    orphan = (
        "import sys, time\n"
        "from homegear import Homegear\n"
        "hg = Homegear(sys.argv[1], None, 'a', None)\n"
        "print('connected' if hg.connected() else 'not connected', flush=True)\n"
        "while True:\n    time.sleep(1)\n"
    )

    async def scenario(reactor: Any) -> None:
        async with running(reactor, config) as run:
            env = {**os.environ, "PYTHONPATH": CLIENT_DIR, "HADAEMON_NODE_TOKEN": "stale"}
            result = await in_thread(reactor, lambda: subprocess.run(
                [sys.executable, "-c", orphan, run.plugin.socket_path], env=env,
                capture_output=True, text=True, timeout=20))
            assert result.stdout.strip() == "not connected"
            assert "refused this node" in result.stderr and "exiting" in result.stderr
            assert result.returncode != 0
            assert run.state("a")["connected"]  # the real node was not disturbed

    run_in_reactor(scenario, timeout=40)





def test_a_false_input_count_closes_the_connection(tmp_path: pathlib.Path) -> None:
    config = make_config(tmp_path, [
        node("liar", "raw.py", info={"scenario": "false_count"},
             env={"RAW_PROTOCOL": "2"}),
        node("a", "relay.py", info={"mode": "sum"}),
    ])

    async def scenario(reactor: Any) -> None:
        with capture_logs() as logs:
            async with running(reactor, config, wait=False) as run:
                await wait_until(reactor, lambda: any(
                    "does not match" in line for line in logged(logs, level=LogLevel.warn)),
                    what="the false count to be refused", timeout=10.0)
                assert await run.send("node:a/0", {"payload": 1}) == [0, 1]
        lines = "\n".join(logged(logs, level=LogLevel.warn))
        assert "inputDone(3, 0) does not match the 0 input(s) in flight" in lines

    run_in_reactor(scenario, timeout=30)
