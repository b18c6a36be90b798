"""Connections that have not authenticated yet: bounded in number and in time.

Anyone of the daemon's user can connect to the node socket, so what a connection costs
before it proved to be a node must stay small whatever a client does: at most
``[nodes].max_unauthenticated`` such connections at once (one more is closed at connect,
with a log line; a flood of them is logged once per period), each closed
``[nodes].auth_timeout`` seconds after it connected unless it authenticated by then, and
each may send at most :data:`HANDSHAKE_FRAME` bytes of a message before it did.

A connection from a process the daemon started as a node does not count against the
cap: a node that restarts while the socket is flooded is never refused (its time limit
holds all the same).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.logger import Logger

from hadaemon.nodes.auth import PeerCredentials
from hadaemon.nodes.delivery import Throttle, suppressed

HANDSHAKE_FRAME = 64 * 1024
"""The largest message a connection may send before it authenticated (the handshake is
``authenticate(nodeId, token, info)`` or ``setPid(pid)``: a few hundred bytes)."""


class Handshake:
    """One connection's time to authenticate: its ``deadline`` (reactor time) and its
    place among the unauthenticated connections, given back once by :meth:`done`."""

    __slots__ = ("_release", "deadline")

    def __init__(self, deadline: float, release: Callable[[], None] | None) -> None:
        self.deadline = deadline
        self._release = release

    def done(self) -> None:
        """It authenticated or it is gone (idempotent)."""
        release, self._release = self._release, None
        if release is not None:
            release()


class Handshakes:
    """Admits connections to the handshake, ``cap`` at most at once (see the module)."""

    def __init__(
        self,
        cap: int,
        timeout: float,
        reactor: Any,
        log: Logger,
        is_node: Callable[[int], bool],
    ) -> None:
        self.cap = cap
        self.timeout = timeout
        self.reactor = reactor
        self.log = log
        self._is_node = is_node
        self.waiting = 0
        """Connections counted against the cap now."""
        self.refused = 0
        """Connections refused for the cap so far."""
        self._throttle = Throttle(reactor)

    def admit(self, peer: PeerCredentials | None) -> Handshake | None:
        """The handshake of a new connection from ``peer``, or None (logged) when it
        must be closed: ``cap`` connections already wait to authenticate."""
        deadline = self.reactor.seconds() + self.timeout
        if peer is not None and self._is_node(peer.pid):
            return Handshake(deadline, None)
        if self.waiting >= self.cap:
            self.refused += 1
            count = self._throttle.hit("cap")
            if count is not None:
                self.log.warn(
                    "node socket: closed a connection from pid {pid}: {waiting} connections "
                    "are already waiting to authenticate, the most allowed "
                    "([nodes].max_unauthenticated){more}",
                    pid=peer.pid if peer is not None else "?", waiting=self.waiting,
                    more=suppressed(count))
            return None
        self.waiting += 1
        return Handshake(deadline, self._release)

    def _release(self) -> None:
        self.waiting -= 1
