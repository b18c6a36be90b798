"""What a connection to the node socket may cost: memory that follows what it sends, and
that is freed as soon as it closes; before it authenticated, a place among a bounded few
and a bounded time. Through the real socket of a daemon running real nodes."""

from __future__ import annotations

import functools
import gc
import os
import pathlib
import signal
import socket
import tracemalloc
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import msgpack
import pytest
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure

from hadaemon import binrpc
from hadaemon.nodes.connection import Limits, State
from hadaemon.nodes.flushes import Flushes
from hadaemon.nodes.protocol import MsgpackNodeProtocol
from hadaemon.nodes.server import NodeServerFactory, WireSelector
from hadaemon.testing import capture_logs, run_in_reactor, wait_until
from tests.nodes.helpers import Running, logged, make_config, node, running


def pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def factory_of(run: Running) -> NodeServerFactory:
    factory = run.plugin._port.factory  # type: ignore[union-attr]
    assert isinstance(factory, NodeServerFactory)
    return factory


class Watched:
    """Weak references to every protocol object the node socket builds from now on: the
    selector of each connection and the wire protocol it hands the connection to."""

    def __init__(self, factory: NodeServerFactory) -> None:
        self.refs: list[weakref.ref[Any]] = []
        build = factory.buildProtocol

        def watched_build(addr: Any) -> Any:
            protocol = build(addr)
            self.refs.append(weakref.ref(protocol))
            return protocol

        factory.buildProtocol = watched_build  # type: ignore[method-assign]
        for magic, make in list(factory.wires.items()):
            factory.wires[magic] = self._wrap(make)

    def _wrap(self, make: Callable[..., Any]) -> Callable[..., Any]:
        def watched_make(*args: Any) -> Any:
            protocol = make(*args)
            self.refs.append(weakref.ref(protocol))
            return protocol
        return watched_make

    def alive(self) -> list[str]:
        return [type(obj).__name__ for obj in (ref() for ref in self.refs) if obj is not None]


@contextmanager
def no_collector() -> Iterator[None]:
    """The cyclic garbage collector off: only reference counting frees anything."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def lost(ref: weakref.ref[Any]) -> bool:
    """Whether the connection (weakly) referred to is gone or closed."""
    connection = ref()
    return connection is None or connection.state is State.CLOSED


def connect(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    return sock


def until_closed(sock: socket.socket) -> bytes:
    """Everything the daemon sends until it closes the connection (blocking)."""
    sock.settimeout(30.0)
    received = b""
    try:
        while data := sock.recv(65536):
            received += data
    except ConnectionResetError:
        pass
    sock.close()
    return received


def in_thread(reactor: Any, fn: Any, *args: Any) -> Any:
    return deferToThreadPool(reactor, reactor.getThreadPool(), fn, *args)


def test_a_closed_connection_is_freed_at_once_without_the_collector(
    tmp_path: pathlib.Path,
) -> None:
    """With the cyclic collector off, every connection's objects are gone as soon as the
    connection is: refused frames on both wires, a truncated frame, a silent peer, an
    oversized frame, and a node's own connection when the node is killed."""
    config = make_config(tmp_path, [node("a", "relay.py", wires=[["test:sink/a"]]),
                                    node("b", "relay.py", "binrpc", wires=[["test:sink/b"]])])
    frames = {
        "unauthenticated call": pack([0, 1, "getVersion", []]),
        "wrong token": pack([0, 0, "authenticate", ["a", "forged", {}]]),
        "setPid of no node": binrpc.encode_request("setPid", [1, 1, [os.getpid()]]),
        "truncated": pack([0, 1, "getVersion", ["x" * 100]])[:50],
        "oversized": pack(["x" * 200_000]),
        "malformed": b"\x94\xc1\xc1",
        "half magic": b"Bi",
        "nothing": b"",
    }

    async def scenario(reactor: Any) -> None:
        async with running(reactor, config) as run:
            factory = factory_of(run)
            watched = Watched(factory)
            with no_collector():
                for name, frame in frames.items():
                    sock = connect(run.plugin.socket_path)
                    sock.sendall(frame)
                    await wait_until(reactor, lambda: watched.refs, what="the connection")
                    sock.close()
                    # Gone once its place among the unauthenticated is free again (that
                    # is the last thing it does when the connection is lost).
                    await wait_until(reactor, lambda: factory.handshakes.waiting == 0,
                                     what=f"{name}: the connection lost")
                    assert watched.alive() == [], name
                    watched.refs.clear()
                # A node's connection, bound and busy: the node is killed.
                for node_id in ("a", "b"):
                    run.send(f"node:{node_id}/0", {"payload": 1})
                    await run.sink.wait(reactor, 1, node_id)
                    runtime = run.plugin.runtimes[node_id]
                    link = weakref.ref(runtime.link)
                    assert runtime.pid is not None
                    os.kill(runtime.pid, signal.SIGKILL)
                    await wait_until(reactor, functools.partial(lost, link),
                                     what=f"node {node_id}'s connection lost")
                    await wait_until(reactor, lambda: factory.handshakes.waiting == 0)
                    assert link() is None, node_id
                    await run.ready(node_id)  # restarted, and working again
                    run.send(f"node:{node_id}/0", {"payload": 2})
                    assert await run.sink.wait(reactor, 2, node_id) == [1, 2]

    run_in_reactor(scenario, timeout=60)


def test_a_producer_killed_while_held_back_leaves_no_cycle(tmp_path: pathlib.Path) -> None:
    """A node killed while its outputs wait for room at a slow destination (its
    connection holds the waits): once they are released, nothing of its connection is
    left, with the cyclic collector off."""
    config = make_config(tmp_path, [
        node("p", "ticker.py", wires=[["a"]], env={"TICK_INTERVAL": "0.001"}),
        node("a", "relay.py", info={"mode": "slow", "delay": 0.005},
             wires=[["test:sink/a"]]),
    ], queue_size=2)

    async def scenario(reactor: Any) -> None:
        async with running(reactor, config) as run:
            runtime = run.plugin.runtimes["p"]
            await wait_until(reactor, lambda: runtime.link is not None
                             and runtime.link._credits.held > 0,  # type: ignore[attr-defined]
                             what="the producer held back")
            link = weakref.ref(runtime.link)
            with no_collector():
                assert runtime.pid is not None
                os.kill(runtime.pid, signal.SIGKILL)
                await wait_until(reactor, functools.partial(lost, link),
                                 what="the producer's connection lost")
                # Freed once the destination released what it held (its queue drains).
                await wait_until(reactor, lambda: link() is None, timeout=30,
                                 what="the producer's connection freed")

    run_in_reactor(scenario, timeout=60)


def test_buffers_grow_with_what_a_connection_sends(tmp_path: pathlib.Path) -> None:
    """50 connections that each sent the start of a message hold a few KiB each, not a
    buffer sized for the largest frame (16 MiB: msgpack used to allocate 1 MiB up front);
    a node's buffer grown by a 2 MiB message is given back once it was handled."""
    config = make_config(tmp_path, [node("a", "relay.py", info={"mode": "echo"},
                                         wires=[["test:sink/a"]])])
    starts = [b"\x94\x00\x01\xa5", b"Bin\x00\x00\x00\x10\x00\x00\x00"]  # never finished

    async def scenario(reactor: Any) -> None:
        async with running(reactor, config) as run:
            factory = factory_of(run)
            watched = Watched(factory)
            tracemalloc.start()
            try:
                before = tracemalloc.get_traced_memory()[0]
                socks = []
                for i in range(50):
                    socks.append(connect(run.plugin.socket_path))
                    socks[-1].sendall(starts[i % 2])
                # Each one was handed to its wire, which holds its buffer.
                await wait_until(reactor, lambda: len(watched.alive()) == 100,
                                 what="50 connections on their wires")
                await run.send("node:a/0", {"payload": "settle"})
                await run.sink.wait(reactor, 1, "a")
                run.sink.messages.clear()
                per_connection = (tracemalloc.get_traced_memory()[0] - before) / 50
                for sock in socks:
                    sock.close()
                await wait_until(reactor, lambda: factory.handshakes.waiting == 0)
                assert per_connection < 128 * 1024, per_connection
                # A big message through a node's connection and back: what the wire
                # code holds afterwards (its buffers; the rest of the daemon keeps
                # process-wide buffers of its own) is back to a few KiB.
                wire_code = [tracemalloc.Filter(True, f"*/hadaemon/nodes/{name}.py")
                             for name in ("protocol", "binwire", "connection", "server")]
                big = {"payload": "x" * (2 << 20)}
                answer = await run.send("node:a/0", big)  # echoed: the answer, and
                assert answer == big  # the same on its output
                assert (await run.sink.wait(reactor, 1, "a")) == [big["payload"]]
                del answer
                del big
                run.sink.messages.clear()
                held = sum(stat.size for stat in tracemalloc.take_snapshot().filter_traces(
                    wire_code).statistics("filename"))
                assert held < 256 * 1024, held
            finally:
                tracemalloc.stop()

    run_in_reactor(scenario, timeout=60)


# -- before authenticating: a bounded time and a bounded number (task.Clock) -------------


class NoNodes(Flushes):
    """The dispatcher as the socket sees it before authentication: no process is a node."""

    def __init__(self) -> None:
        Flushes.__init__(self)

    def node_for_pid(self, pid: int) -> str | None:
        return None


class PeerTransport(StringTransport):
    """A transport whose handle is a real socket, so that the peer's credentials
    (``SO_PEERCRED``: this process) can be read."""

    def __init__(self) -> None:
        super().__init__()
        self._pair = socket.socketpair()

    def getHandle(self) -> socket.socket:
        return self._pair[0]

    def close(self) -> None:
        for sock in self._pair:
            sock.close()


@contextmanager
def selector_on_clock(**limits: Any) -> Iterator[tuple[NodeServerFactory, Clock, Any]]:
    """A node socket factory whose timers run on a Clock, and a function making one
    connection to it (its selector and transport)."""
    clock = Clock()
    factory = NodeServerFactory(NoNodes(), Limits(**limits), clock,  # type: ignore[arg-type]
                                Logger(namespace="hadaemon.plugin.nodes"))
    transports: list[PeerTransport] = []

    def connection() -> tuple[WireSelector, PeerTransport]:
        transport = PeerTransport()
        transports.append(transport)
        selector = factory.buildProtocol(None)
        assert isinstance(selector, WireSelector)
        selector.makeConnection(transport)
        return selector, transport

    try:
        yield factory, clock, connection
    finally:
        for transport in transports:
            transport.close()


def closed(transport: StringTransport) -> bool:
    return bool(transport.disconnecting)


def test_the_handshake_time_counts_from_the_connect() -> None:
    """A connection that starts a message late is still closed ``auth_timeout`` after it
    connected (the wire does not start the time over), on both wires; a silent one too."""
    with capture_logs() as logs, selector_on_clock(auth_timeout=5.0) as (
            factory, clock, connection):
        silent, silent_transport = connection()
        late, late_transport = connection()
        late_binary, late_binary_transport = connection()
        clock.advance(4.0)
        late.dataReceived(b"\x94\x00")
        late_binary.dataReceived(b"Bin\x00")
        clock.advance(0.9)
        assert not any(closed(t) for t in (silent_transport, late_transport,
                                           late_binary_transport))
        clock.advance(0.2)
        assert all(closed(t) for t in (silent_transport, late_transport,
                                       late_binary_transport))
        for selector in (silent, late, late_binary):
            selector.connectionLost(Failure(ConnectionDone()))
        assert factory.handshakes.waiting == 0
    lines = "\n".join(logged(logs, level=LogLevel.warn))
    assert "sent nothing; closed" in lines
    assert "did not authenticate within 5 s" in lines
    assert "did not call setPid within 5 s" in lines


def test_unauthenticated_connections_are_capped_and_logged_once_per_period() -> None:
    with capture_logs() as logs, selector_on_clock(max_unauthenticated=3) as (
            factory, clock, connection):
        admitted = [connection() for _ in range(3)]
        assert not any(closed(t) for _, t in admitted)
        refused = [connection() for _ in range(50)]
        assert all(closed(t) for _, t in refused)
        for selector, _ in refused:
            selector.connectionLost(Failure(ConnectionDone()))
        assert factory.handshakes.waiting == 3 and factory.handshakes.refused == 50
        lines = [line for line in logged(logs, level=LogLevel.warn)
                 if "waiting to authenticate" in line]
        assert len(lines) == 1, lines  # a flood is one line per period
        assert "3 connections are already waiting to authenticate" in lines[0]
        assert "[nodes].max_unauthenticated" in lines[0]
        # One leaves (it authenticated or went): a new connection is let in again.
        admitted[0][0].connectionLost(Failure(ConnectionDone()))
        assert not closed(connection()[1])
        clock.advance(10.0)
        assert closed(connection()[1])
        lines = [line for line in logged(logs, level=LogLevel.warn)
                 if "waiting to authenticate" in line]
        assert len(lines) == 2 and "(and 49 more like it)" in lines[1], lines


@pytest.mark.parametrize("wire", ["msgpack", "binrpc"])
def test_a_node_is_let_in_while_the_cap_is_full(tmp_path: pathlib.Path, wire: str) -> None:
    """Over ``max_unauthenticated`` a connection is closed at connect, but not a node
    process the daemon started: a node restarting during a flood connects as usual."""
    config = make_config(tmp_path, [node("a", "relay.py", wire, wires=[["test:sink/a"]])],
                         max_unauthenticated=2, auth_timeout=120.0)

    async def scenario(reactor: Any) -> None:
        with capture_logs() as logs:
            async with running(reactor, config) as run:
                factory = factory_of(run)
                path = run.plugin.socket_path
                silent = [connect(path) for _ in range(2)]
                await wait_until(reactor, lambda: factory.handshakes.waiting == 2)
                # One more is closed at once, without an answer.
                assert await in_thread(reactor, until_closed, connect(path)) == b""
                runtime = run.plugin.runtimes["a"]
                assert runtime.pid is not None
                os.kill(runtime.pid, signal.SIGKILL)
                await wait_until(reactor, lambda: run.state("a")["restarts"] == 1)
                await run.ready("a")
                run.send("node:a/0", {"payload": "after"})
                assert await run.sink.wait(reactor, 1, "a") == ["after"]
                assert factory.handshakes.waiting == 2
                for sock in silent:
                    sock.close()
                await wait_until(reactor, lambda: factory.handshakes.waiting == 0)
        lines = "\n".join(logged(logs, level=LogLevel.warn))
        assert "2 connections are already waiting to authenticate" in lines

    run_in_reactor(scenario, timeout=60)


def test_a_message_arriving_in_pieces_counts_whole_against_the_limit() -> None:
    """The unpacker's position moves on through an unfinished array (it parses the items
    that came): the limit counts from where the message began, not from there."""
    with capture_logs() as logs:
        link = MsgpackNodeProtocol(NoNodes(), Limits(max_frame=1 << 20),  # type: ignore[arg-type]
                                   Clock(), Logger(namespace="hadaemon.plugin.nodes"))
        link.makeConnection(StringTransport())
        link.dataReceived(b"\xdd\x00\x01\x86\xa0")  # an array of 100,000 items...
        for _ in range(63):
            link.dataReceived(b"\x01" * 1024)  # ...sent 1 KiB at a time: 64,517 bytes
        assert not link.is_closed()
        link.dataReceived(b"\x01" * 1024)
        assert link.is_closed()
    lines = "\n".join(logged(logs, level=LogLevel.warn))
    assert "message larger than the limit of 65536 bytes before authenticating" in lines
