"""Hostile numbers of connections: idle and half-sent ones are closed after
``[web].idle_timeout``, past ``[web].max_connections`` a new one gets a 503 at once, and
event streams (never idle) go on meanwhile; the reactor keeps answering."""

from __future__ import annotations

import contextlib
import json
import pathlib
import socket
from collections.abc import Iterator

import pytest

from hadaemon.testing import poll_until
from tests.web.helpers import EventReader, LiveDaemon, make_config

CAP = 24
STREAMS = 12


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveDaemon]:
    tmp: pathlib.Path = tmp_path_factory.mktemp("capped")
    config = make_config(tmp, ("demo", "web"),
                         web={"max_connections": CAP, "idle_timeout": 1.0})
    with LiveDaemon(config) as daemon:
        yield daemon


def closed_by_server(sock: socket.socket) -> bool:
    """Whether the server closed ``sock`` (without blocking)."""
    sock.setblocking(False)
    try:
        return sock.recv(1) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True


@contextlib.contextmanager
def idle_sockets(port: int, count: int) -> Iterator[list[socket.socket]]:
    """``count`` connections that send nothing, or half a request and then nothing."""
    socks = []
    try:
        for n in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            if n % 2:
                sock.sendall(b"GET /api/status HTTP/1.1\r\nHost: x\r\nAuthoriz")
            socks.append(sock)
        yield socks
    finally:
        for sock in socks:
            sock.close()


def test_streams_go_on_while_idle_connections_are_cut_and_extra_ones_refused(
        capped: LiveDaemon) -> None:
    client = capped.client()
    streams = [EventReader(capped.port, token=capped.token) for _ in range(STREAMS)]
    try:
        for stream in streams:
            assert stream.status == 200 and stream.next()[0] == "hello"
        # streams + idle ones fill the cap: the next connection is refused at once
        with idle_sockets(capped.port, CAP - STREAMS) as idle:
            poll_until(lambda: capped.call(lambda: capped.web.port.factory.connections)
                       == CAP, what="every connection counted")
            refused = client.get("/api/status")
            assert (refused.status, refused.error) == (503, "busy")
            assert "max_connections" in refused.json["message"]
            assert refused.headers["x-content-type-options"] == "nosniff"
            # the idle and half-sent ones are closed after idle_timeout...
            poll_until(lambda: all(closed_by_server(s) for s in idle), timeout=30,
                       what="idle connections closed")
        # ...and then the daemon answers again, the streams still open
        status = poll_until(lambda: (a := client.get("/api/status")).status == 200 and a,
                            what="answers again")
        assert status.json["counts"]["event_clients"] == STREAMS
        capped.call(capped.daemon.registry.set_system_variable, "after_idle", 1)
        for stream in streams:
            assert stream.until("variable", lambda d: d["name"] == "after_idle")["value"] == 1
    finally:
        for stream in streams:
            stream.close()
    poll_until(lambda: capped.call(lambda: capped.web.port.factory.connections) == 0,
               what="every connection let go")


def test_a_keep_alive_connection_idle_between_requests_is_closed(capped: LiveDaemon) -> None:
    with socket.create_connection(("127.0.0.1", capped.port), timeout=10) as sock:
        request = (f"GET /api/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                   f"{capped.token}\r\n\r\n").encode()
        sock.sendall(request)
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(65536)
        assert head.startswith(b"HTTP/1.1 200")
        poll_until(lambda: closed_by_server(sock), timeout=30, what="closed when idle")


def test_the_busy_answer_is_json(capped: LiveDaemon) -> None:
    with idle_sockets(capped.port, CAP):
        poll_until(lambda: capped.call(lambda: capped.web.port.factory.connections) == CAP,
                   what="every connection counted")
        with socket.create_connection(("127.0.0.1", capped.port), timeout=10) as sock:
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503") and b"Retry-After: 1" in head
    assert json.loads(body)["error"] == "busy"
