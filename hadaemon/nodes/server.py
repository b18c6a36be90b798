"""The node socket: who may connect, and which wire each connection speaks.

Every connection first goes through :class:`WireSelector`, which refuses a peer of
another user (``SO_PEERCRED``) and then picks the wire from the first bytes: every
Homegear binary RPC packet starts with ``b"Bin"``, which no msgpack-rpc message does
(those start with an array header, ``0x93``/``0x94``). Both are served by the same
dispatcher: hadaemon's msgpack-rpc (:mod:`hadaemon.nodes.protocol`) and Homegear's binary
RPC for the real ``homegear`` C++ module (:mod:`hadaemon.nodes.binwire`), registered
under ``b"Bin"``. Wires are pluggable (:class:`NodeServerFactory` ``wires``).

Until it authenticated, a connection is bounded in number and time
(:mod:`hadaemon.nodes.handshake`): the selector admits it at connect (or closes it, over
``[nodes].max_unauthenticated``) and hands its handshake on to the wire's protocol.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from twisted.internet.interfaces import IAddress, IDelayedCall
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from hadaemon.nodes.auth import PeerCredentials, peer_credentials, same_user
from hadaemon.nodes.binwire import BinaryNodeProtocol
from hadaemon.nodes.connection import Limits, NodeConnection
from hadaemon.nodes.handshake import Handshake, Handshakes
from hadaemon.nodes.protocol import MsgpackNodeProtocol

if TYPE_CHECKING:
    from hadaemon.nodes.dispatcher import Dispatcher

BINARY_MAGIC = b"Bin"

WireFactory = Callable[["Dispatcher", Limits, Any, Logger, PeerCredentials | None], Protocol]
"""Builds the protocol of one wire for one connection."""


class WireSelector(Protocol):
    """Checks the peer, then hands the connection to the protocol of its wire."""

    @property
    def _t(self) -> Any:
        return self.transport

    def __init__(self, factory: NodeServerFactory) -> None:
        self.factory = factory
        self.peer: PeerCredentials | None = None
        self.chosen: Protocol | None = None
        self._head = b""
        self._timer: IDelayedCall | None = None
        self.handshake: Handshake | None = None

    def connectionMade(self) -> None:
        log = self.factory.log
        try:
            self.peer = peer_credentials(self._t.getHandle())
        except OSError as exc:
            log.warn("node socket: cannot read the peer's credentials ({error}); refused",
                     error=str(exc))
            self._t.abortConnection()
            return
        if not same_user(self.peer):
            log.warn("node socket: refused a connection from uid {uid} (pid {pid}): only "
                     "the daemon's own user may connect",
                     uid=getattr(self.peer, "uid", "?"), pid=getattr(self.peer, "pid", "?"))
            self._t.abortConnection()
            return
        self._admit()

    # -- the handshake: bounded in number and time (hadaemon.nodes.handshake) -------------

    def _admit(self) -> None:
        """Count the connection among the unauthenticated ones, or close it."""
        self.handshake = self.factory.handshakes.admit(self.peer)
        if self.handshake is None:
            self._t.abortConnection()
            return
        self._timer = self.factory.reactor.callLater(self.factory.limits.auth_timeout,
                                                     self._silent)

    def _hand_over(self, chosen: Protocol) -> None:
        """The wire's protocol keeps the handshake (and ends it once authenticated)."""
        if isinstance(chosen, NodeConnection):
            chosen.handshake, self.handshake = self.handshake, None

    def _gone(self) -> None:
        """The connection closed before a wire took it over."""
        if self._head:
            self.factory.log.warn(
                "node socket: peer pid {pid} closed the connection after {count} byte(s) "
                "{head!r}, before its first message was complete; dropped",
                pid=getattr(self.peer, "pid", "?"), count=len(self._head), head=self._head)
        self._head = b""
        if self.handshake is not None:
            self.handshake.done()
            self.handshake = None

    def _silent(self) -> None:
        self._timer = None
        if self.chosen is None:
            self.factory.log.warn("node socket: peer pid {pid} sent nothing; closed",
                                  pid=getattr(self.peer, "pid", "?"))
            self._t.abortConnection()

    def dataReceived(self, data: bytes) -> None:
        if self.chosen is not None:
            self.chosen.dataReceived(data)
            return
        if self.handshake is None:
            return  # refused at connect (closing)
        self._head += data
        head = self._head
        if len(head) < len(BINARY_MAGIC) and BINARY_MAGIC.startswith(head):
            return  # could still be "Bin": wait for the third byte
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        magic = BINARY_MAGIC if head.startswith(BINARY_MAGIC) else b""
        make = self.factory.wires.get(magic)
        if make is None:
            self.factory.log.warn(
                "node socket: peer pid {pid} speaks Homegear binary RPC, which this "
                "hadaemon does not serve; closed", pid=getattr(self.peer, "pid", "?"),
            )
            self._t.abortConnection()
            return
        f = self.factory
        self.chosen = make(f.dispatcher, f.limits, f.reactor, f.log, self.peer)
        self._hand_over(self.chosen)
        self.chosen.makeConnection(self.transport)
        self._head = b""
        self.chosen.dataReceived(head)

    def connectionLost(self, reason: Failure = Failure(ConnectionError())) -> None:  # noqa: B008
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if self.chosen is not None:
            self.chosen.connectionLost(reason)
        self._gone()


def _msgpack_wire(
    dispatcher: Dispatcher, limits: Limits, reactor: Any, log: Logger,
    peer: PeerCredentials | None,
) -> Protocol:
    return MsgpackNodeProtocol(dispatcher, limits, reactor, log, peer)


def _binary_wire(
    dispatcher: Dispatcher, limits: Limits, reactor: Any, log: Logger,
    peer: PeerCredentials | None,
) -> Protocol:
    return BinaryNodeProtocol(dispatcher, limits, reactor, log, peer)


class NodeServerFactory(Factory):
    """Builds a :class:`WireSelector` per connection on the node socket."""

    noisy = False  # no "Starting factory" lines: the plugin logs what matters

    def __init__(
        self,
        dispatcher: Dispatcher,
        limits: Limits,
        reactor: Any,
        log: Logger,
        wires: Mapping[bytes, WireFactory] | None = None,
    ) -> None:
        self.dispatcher = dispatcher
        self.limits = limits
        self.reactor = reactor
        self.log = log
        self.wires: dict[bytes, WireFactory] = {
            b"": _msgpack_wire, BINARY_MAGIC: _binary_wire, **(wires or {})
        }
        self.handshakes = Handshakes(
            limits.max_unauthenticated, limits.auth_timeout, reactor, log,
            lambda pid: dispatcher.node_for_pid(pid) is not None,
        )

    def buildProtocol(self, addr: IAddress | None) -> Protocol:
        return WireSelector(self)
