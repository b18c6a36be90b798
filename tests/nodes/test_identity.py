"""A node's identity can't be borrowed: the daemon accepts a node only from the process it
started for it, on both wires, and the token is left nowhere another process reads it
(not in the environment, not in what the node's own children inherit)."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import textwrap
from typing import Any

import pytest
from twisted.internet.threads import deferToThreadPool
from twisted.logger import LogLevel

from hadaemon import binrpc
from hadaemon.testing import capture_logs, run_in_reactor
from tests.nodes.helpers import SPAWNS, exchange, logged, make_config, node, running

# Another process of the same user, authenticating with a node id and token it was given.
BORROWER = textwrap.dedent("""
    import socket, sys, msgpack
    s = socket.socket(socket.AF_UNIX)
    s.connect(sys.argv[1])
    s.settimeout(10)
    s.sendall(msgpack.packb([0, 0, "authenticate", [sys.argv[2], sys.argv[3], {}]]))
    unpacker = msgpack.Unpacker(raw=False)
    while True:
        data = s.recv(65536)
        if not data:
            break
        unpacker.feed(data)
        for message in unpacker:
            if message[0] == 1:
                print(repr(message))
                sys.exit(0)
""")

# A node whose child inherits every descriptor and the environment, and reads whatever
# it can from every pipe it inherited.
PARENT = textwrap.dedent("""
    import subprocess, sys, time
    from homegear import Homegear

    CHILD = '''
    import os
    got = b""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            if fd > 2 and os.readlink(f"/proc/self/fd/{fd}").startswith("pipe:"):
                os.set_blocking(fd, False)
                got += os.read(fd, 4096)
        except OSError:
            pass
    print(repr(got), "HADAEMON_NODE_TOKEN_FD" in os.environ)
    '''

    def eventHandler(eventSource, peerId, channel, variableName, value):
        if variableName == "startUpComplete":
            out = subprocess.run([sys.executable, "-c", CHILD], close_fds=False,
                                 capture_output=True, text=True)
            hg.nodeOutput(0, {"payload": [out.stdout.split(), out.stderr]})

    hg = Homegear(sys.argv[1], eventHandler, sys.argv[2])
    while hg.connected():
        time.sleep(1)
""")


def in_thread(reactor: Any, fn: Any, *args: Any) -> Any:
    return deferToThreadPool(reactor, reactor.getThreadPool(), fn, *args)


@pytest.mark.parametrize("spawn", SPAWNS)
def test_a_borrowed_token_is_refused_and_the_node_keeps_its_connection(
    tmp_path: pathlib.Path, spawn: str
) -> None:
    config = make_config(tmp_path, [node("a", "relay.py", info={"mode": "sum"})],
                         spawn=spawn)

    async def scenario(reactor: Any) -> None:
        with capture_logs() as logs:
            async with running(reactor, config) as run:
                runtime = run.plugin.runtimes["a"]
                link, pid = runtime.link, runtime.pid
                token = run.plugin.dispatcher.tokens._tokens["a"]  # as if read somewhere
                # Nowhere in what other processes may read of the node.
                for name in ("environ", "cmdline"):
                    with open(f"/proc/{pid}/{name}", "rb") as f:
                        assert token.encode() not in f.read(), name
                result = await in_thread(reactor, lambda: subprocess.run(
                    [sys.executable, "-c", BORROWER, run.plugin.socket_path, "a", token],
                    capture_output=True, text=True, timeout=20))
                answer = eval(result.stdout)  # [1, 0, fault, None]
                assert answer[2]["faultCode"] == -32001, answer
                assert "not from the process this daemon started for node 'a'" in answer[2][
                    "faultString"]
                # The real node was not cut off: same connection, still served.
                assert runtime.link is link and run.state("a")["connected"]
                assert run.state("a")["restarts"] == 0
                assert await run.send("node:a/0", {"payload": "still"}) == [0, "still"]
        lines = "\n".join(logged(logs, level=LogLevel.warn))
        assert "replaced by a newer connection" not in lines
        assert "comes from pid" in lines

    run_in_reactor(scenario, timeout=60)


@pytest.mark.parametrize("spawn", SPAWNS)
def test_a_borrowed_pid_is_refused_on_the_binary_wire(tmp_path: pathlib.Path,
                                                      spawn: str) -> None:
    config = make_config(tmp_path, [node("b", "relay.py", "binrpc", info={"mode": "echo"},
                                          wires=[["test:sink/b"]])], spawn=spawn)

    async def scenario(reactor: Any) -> None:
        with capture_logs() as logs:
            async with running(reactor, config) as run:
                runtime = run.plugin.runtimes["b"]
                link, pid = runtime.link, runtime.pid
                assert pid is not None
                # This (test) process claims to be the node's process.
                answers, closed = await in_thread(
                    reactor, lambda: exchange(run.plugin.socket_path,
                                              binrpc.encode_request("setPid", [7, 0, [pid]]),
                                              decode=binrpc.Decoder().feed))
                assert closed
                assert answers and answers[0].value[2]["faultCode"] == -32001, answers
                assert runtime.link is link and run.state("b")["connected"]
                await run.send("node:b/0", {"payload": "still"})
                assert await run.sink.wait(reactor, 1, "b") == ["still"]
        lines = "\n".join(logged(logs, level=LogLevel.warn))
        assert f"pid {os.getpid()} is not a node process this daemon started" in lines
        assert "replaced by a newer connection" not in lines

    run_in_reactor(scenario, timeout=60)


def test_a_nodes_children_inherit_no_token(tmp_path: pathlib.Path) -> None:
    (tmp_path / "parent.py").write_text(PARENT)
    config = make_config(tmp_path, [
        node("p", str(tmp_path / "parent.py"), wires=[["test:sink/p"]]),
    ])

    async def scenario(reactor: Any) -> None:
        async with running(reactor, config) as run:
            (words, errors), = await run.sink.wait(reactor, 1, "p")
            assert words == ["b''", "False"], errors

    run_in_reactor(scenario, timeout=60)


WRAPPER = """#!/bin/sh
# An interpreter wrapper that execs Python: the process, its pid and its fd 3 stay.
exec "{python}" "$@"
"""


def test_a_wrapper_interpreter_that_execs_python_keeps_the_identity(
    tmp_path: pathlib.Path,
) -> None:
    wrapper = tmp_path / "python-wrapper"
    wrapper.write_text(WRAPPER.format(python=sys.executable))
    wrapper.chmod(0o755)
    config = make_config(tmp_path, [
        node("w", "relay.py", info={"mode": "sum"}, interpreter=str(wrapper)),
    ])

    async def scenario(reactor: Any) -> None:
        async with running(reactor, config) as run:
            assert await run.send("node:w/0", {"payload": 1}) == [0, 1]
            assert run.state("w")["restarts"] == 0

    run_in_reactor(scenario, timeout=60)
