"""The node socket's listening port: Twisted's Unix port, reading with plain ``recv``."""

from __future__ import annotations

from typing import Any

from twisted.internet import tcp, unix
from twisted.internet.interfaces import IListeningPort
from twisted.internet.protocol import Factory


class _NodeTransport(unix.Server):
    """A node connection: Twisted's Unix server transport, but it reads with ``recv``,
    as its TCP one does. Twisted's Unix transport reads with ``recvmsg`` to receive file
    descriptors, which no node sends: ~1.4-2.3 us more per read (4 KB reads, a
    socketpair), and the daemon reads once per node per message on a round trip."""

    doRead = tcp.Connection.doRead  # type: ignore[assignment]  # (its result: lost or None)


class _NodePort(unix.Port):
    transport = _NodeTransport


def listen_nodes(reactor: Any, path: str, factory: Factory, mode: int) -> IListeningPort:
    """``reactor.listenUNIX(path, factory, mode=mode)`` with the node transport."""
    # A str path, as listenUNIX passes it on (Port's annotation says bytes).
    port = _NodePort(path, factory, mode=mode, reactor=reactor)  # type: ignore[arg-type]
    port.startListening()  # type: ignore[no-untyped-call]
    return port
