"""What every node connection shares, whatever its wire: states, limits, the bounded
outgoing buffer, closing.

Lifecycle of a connection (an explicit state machine, the same on every wire):

``AUTHENTICATING``
    The connection has not proved which node it is yet (msgpack-rpc: ``authenticate``
    with the node's token; Homegear binary RPC: ``setPid`` agreeing with the peer's
    pid). It is closed ``auth_timeout`` seconds after it connected unless it did by
    then, and it is one of the few allowed at once (:mod:`hadaemon.nodes.handshake`).
``BOUND``
    The dispatcher bound it to its node and pinged it; node methods, RPC methods, and
    the daemon's ``nodeInput`` calls and events flow.
``CLOSED``
    After a protocol error, an overflow, a replacement, or the peer going away.

Outgoing data is bounded: when the node does not read, the transport asks the
connection (its producer) to pause; later messages wait here, and past ``max_buffer``
bytes events are dropped and counted (``overflow = "drop"``) or the node is disconnected
(``"disconnect"``). What must not be dropped (answers, ``nodeInput``) may take twice
``max_buffer`` before the node is disconnected anyway. What a node connection's read
queues for any node is written at the end of that read (what else queues it, at the end
of the reactor turn), many messages per system call, and straight to the socket when the
transport holds nothing.

Memory follows what a connection sends, never the limits: a wire's incoming buffer
starts small and grows with an unfinished message, and a closed connection holds no
reference cycle and no timer, so that it is freed as soon as the transport lets go.
"""

from __future__ import annotations

from collections import deque
from enum import Enum
from typing import TYPE_CHECKING, Any

from twisted.internet.abstract import FileDescriptor
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IPushProducer
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from hadaemon.nodes.auth import PeerCredentials
from hadaemon.nodes.handshake import Handshake
from hadaemon.nodes.link import EventMessage, InputDone, InputSink, LinkLost, OutgoingMessage
from hadaemon.nodes.settings import NodesSettings

if TYPE_CHECKING:
    from hadaemon.nodes.dispatcher import Dispatcher


class State(Enum):
    AUTHENTICATING = "authenticating"
    BOUND = "bound"
    CLOSED = "closed"


Limits = NodesSettings
"""Per-connection limits are the ``[nodes]`` settings (max_frame, max_buffer, overflow,
window, auth_timeout, call_timeout, max_unauthenticated): declared there, once."""


CLOSE_GRACE = 1.0  # seconds a closing connection may take to flush before it is aborted
WRITE_NOW = 65536  # bytes queued in one turn that are written at once, not at its end


def _writes_directly(connection: NodeConnection, transport: Any) -> bool:
    """Whether ``transport`` is a reactor's socket connection, whose buffers are known
    (a test's StringTransport is not): its type is noted for the next flush."""
    if isinstance(transport, FileDescriptor) and hasattr(transport, "writeSomeData") \
            and hasattr(transport, "_tempDataLen"):
        connection._direct_type = type(transport)
        return True
    return False


@implementer(IPushProducer)
class NodeConnection(Protocol):
    """The shared half of a node connection (reactor thread only).

    A wire's protocol subclasses it, parses what comes in, and implements the rest of
    :class:`~hadaemon.nodes.link.NodeLink`; hooks: :meth:`_auth_problem` (the text when
    the peer did not authenticate in time), :meth:`_unfinished` (bytes of a message
    begun), :meth:`_fail_calls` (the connection went while the daemon's calls to the
    node waited) and :meth:`_before_flush`.
    """

    wire = "?"
    window = 1
    closed = False
    """True once the state is CLOSED (a plain attribute: the wire's reader checks it
    after every message)."""
    _direct_type: type | None = None

    @property
    def _t(self) -> Any:
        """The transport (a Unix socket connection: abortConnection, producers...)."""
        return self.transport

    def __init__(
        self,
        dispatcher: Dispatcher,
        limits: Limits,
        reactor: Any,
        log: Logger,
        peer: PeerCredentials | None = None,
    ) -> None:
        self.dispatcher = dispatcher
        self.limits = limits
        self.reactor = reactor
        self.log = log
        self.peer = peer
        self.node_id: str | None = None
        self.state = State.AUTHENTICATING
        self._paused = False
        self._backlog: deque[bytes] = deque()
        self._backlog_bytes = 0
        self._flush_due = False  # queued in dispatcher.unflushed for this turn's flush
        self._auth_timer: IDelayedCall | None = None
        self._abort_call: IDelayedCall | None = None
        self.handshake: Handshake | None = None
        """Set by the socket before the connection is made: its deadline and its place
        among the unauthenticated connections (see :mod:`hadaemon.nodes.handshake`)."""
        self.events_dropped = 0

    # -- connection -----------------------------------------------------------------------

    def connectionMade(self) -> None:
        self._t.registerProducer(self, True)
        timeout = self.limits.auth_timeout
        if self.handshake is not None:  # the time since the connect counts
            timeout = max(0.0, self.handshake.deadline - self.reactor.seconds())
        self._auth_timer = self.reactor.callLater(timeout, self._auth_timeout)

    def _auth_timeout(self) -> None:
        self._auth_timer = None
        if self.state is State.AUTHENTICATING:
            self._fail(self._auth_problem())

    def _auth_problem(self) -> str:
        return f"did not authenticate within {self.limits.auth_timeout:g} s"

    def _authenticated(self) -> None:
        """The peer proved who it is: no authentication deadline any more."""
        self.state = State.BOUND
        self._end_handshake()

    def _end_handshake(self) -> None:
        """No authentication deadline any more; the connection's place among the
        unauthenticated ones is free."""
        if self._auth_timer is not None and self._auth_timer.active():
            self._auth_timer.cancel()
        self._auth_timer = None
        if self.handshake is not None:
            self.handshake.done()
            self.handshake = None

    def is_closed(self) -> bool:
        return self.state is State.CLOSED

    def who(self) -> str:
        """The peer, for log lines: the node if known, else its pid."""
        if self.node_id is not None:
            return f"node {self.node_id}"
        return f"unauthenticated peer pid {self.peer.pid}" if self.peer else "unknown peer"

    def connectionLost(self, reason: Failure = Failure(ConnectionError())) -> None:  # noqa: B008
        previous = self.state
        self.state = State.CLOSED
        self.closed = True
        if previous is not State.CLOSED:
            self._closed_midway()
        self._release()
        if previous is State.BOUND:
            self.dispatcher.unbind(self)
        self._fail_calls(LinkLost(f"connection of {self.who()} lost"))

    def _closed_midway(self) -> None:
        """The peer closed: a message it had begun is a bad (truncated) frame."""
        unfinished = self._unfinished()
        if unfinished:
            self.log.warn("node socket: {who}: the connection closed in the middle of a "
                          "message ({count} bytes of it received); dropped",
                          who=self.who(), count=unfinished)

    def _release(self) -> None:
        """Let go of everything the connection holds: timers (whose calls would keep it
        alive), its place among the unauthenticated, the outgoing backlog."""
        self._end_handshake()
        if self._abort_call is not None and self._abort_call.active():
            self._abort_call.cancel()
        self._abort_call = None
        self._flush_due = False
        self.dispatcher.unflushed.pop(self, None)
        self._backlog.clear()
        self._backlog_bytes = 0

    def _unfinished(self) -> int:
        """Bytes received of a message not complete yet."""
        return 0

    def _fail_calls(self, lost: LinkLost) -> None:
        """Fail every call to the node still waiting for its answer."""

    # -- the rest of NodeLink, per wire ---------------------------------------------------

    def send_input(
        self, port: int, message: OutgoingMessage, done: InputDone | None, sink: InputSink
    ) -> None:
        raise NotImplementedError

    def send_event(self, event: EventMessage) -> bool:
        raise NotImplementedError

    def ping(self) -> Deferred[Any]:
        raise NotImplementedError

    def node_info_changed(self) -> None:
        raise NotImplementedError

    def close(self, reason: str) -> None:
        """Close after flushing what is queued (aborted if that takes too long)."""
        if self.state is State.CLOSED:
            return
        self.log.info("closing the connection of {who}: {reason}", who=self.who(),
                      reason=reason)
        self._close()

    def _close(self) -> None:
        if self.state is State.BOUND:
            self.dispatcher.unbind(self)
        self.state = State.CLOSED
        self.closed = True
        self._flush_backlog(force=True)
        self._t.loseConnection()
        if self._abort_call is None:
            self._abort_call = self.reactor.callLater(CLOSE_GRACE, self._abort)

    def _abort(self) -> None:
        self._abort_call = None
        if self.transport is not None and self._t.connected:
            self._t.abortConnection()

    def _fail(self, problem: str, answer: bytes | None = None) -> None:
        """A protocol error: log it, answer if possible, close."""
        if self.state is State.CLOSED:
            return
        self.log.warn("node socket: {who}: {problem}; closing the connection",
                      who=self.who(), problem=problem)
        if answer is not None:
            self._send(answer)
        self._close()

    # -- the outgoing buffer --------------------------------------------------------------

    def _send(self, data: bytes, droppable: bool = False) -> bool:
        """Queue ``data``; it is written once per reactor turn, many messages at once."""
        if self.state is State.CLOSED:
            return False
        size = len(data)
        if self._paused:  # the node does not read: the backlog is bounded
            limit = self.limits.max_buffer
            if self._backlog_bytes + size > limit:
                if self.limits.overflow == "disconnect":
                    self._overflow(f"more than {limit} bytes are waiting to be sent")
                    return False
                if droppable:
                    self._dropped_event()
                    return False
                if self._backlog_bytes + size > 2 * limit:
                    self._overflow(f"more than {2 * limit} bytes of answers and inputs are "
                                   "waiting to be sent")
                    return False
            self._backlog.append(data)
            self._backlog_bytes += size
            return True
        self._backlog.append(data)
        self._backlog_bytes += size
        if self._backlog_bytes >= WRITE_NOW:
            self._flush_backlog()
        elif not self._flush_due:
            self._schedule_flush()
        return True

    def _schedule_flush(self) -> None:
        """Write what is queued at the end of this read (or of this reactor turn)."""
        self._flush_due = True
        self.dispatcher.flush_soon(self)

    def end_of_read(self) -> None:
        """What this read gave any node connection to send goes out now, not at the
        next reactor turn (the connections' data of one read is still one write each).

        With the direct write in :meth:`_flush_backlog`: ``benchmarks/nodes_vs_nodered.py``,
        MQTT in -> two nodes -> MQTT out on the test broker, interleaved runs with and
        without (and the client's fewer wake-ups): p50 1.10-1.53 against 1.82-2.43 ms,
        the daemon's CPU per round trip 814-1003 against 1176-1448 us (a machine at load
        30-40); a timeline of the round trip showed each node input written 4-5 us after
        it was queued, against 46-95 us.
        """
        self.dispatcher.read_done()

    def flush_turn(self) -> None:
        """The dispatcher's flush of this turn (:meth:`Dispatcher.flush_all`)."""
        if self._flush_due:
            self._flush_due = False
            self._flush_backlog()

    def _dropped_event(self) -> None:
        self.events_dropped += 1
        count = self.events_dropped
        if count in (1, 10, 100, 1000) or count % 10000 == 0:
            self.log.warn(
                "{who} does not read its socket: {count} event(s) dropped so far "
                "({pending} bytes waiting, [nodes].max_buffer = {limit})",
                who=self.who(), count=count, pending=self._backlog_bytes,
                limit=self.limits.max_buffer,
            )

    def _overflow(self, problem: str) -> None:
        self.log.error("{who} does not read its socket ({problem}); disconnecting it",
                       who=self.who(), problem=problem)
        if self.state is State.BOUND:
            self.dispatcher.unbind(self)
        self.state = State.CLOSED
        self.closed = True
        self._backlog.clear()
        self._backlog_bytes = 0
        self._t.abortConnection()

    @property
    def pending_bytes(self) -> int:
        """Bytes waiting here (not yet handed to the transport)."""
        return self._backlog_bytes

    def _before_flush(self) -> None:
        """Add what a wire sends once per turn (msgpack: the credits earned in it)."""

    def _flush_backlog(self, force: bool = False) -> None:
        """Hand what waits to the transport (which pauses us when its buffer is full)."""
        if self._paused and not force:
            return
        self._before_flush()
        if not self._backlog:
            return
        data = b"".join(self._backlog) if len(self._backlog) > 1 else self._backlog[0]
        self._backlog.clear()
        self._backlog_bytes = 0
        transport = self._t
        if len(data) < WRITE_NOW and (type(transport) is self._direct_type
                                      or _writes_directly(self, transport)) \
                and transport.connected and not transport.dataBuffer \
                and not transport._tempDataLen:
            # Nothing waits in the transport: write now, not when the reactor next finds
            # the socket writable (which costs a reactor turn and two epoll_ctl calls).
            # benchmarks/nodes_vs_nodered.py: see end_of_read. Not a flood's large
            # writes: those go the transport's way, which pauses us as its buffer fills
            # (a node that does not read loses events beyond max_buffer at once).
            written = transport.writeSomeData(data)
            if isinstance(written, int) and written >= 0:
                if written == len(data):
                    return
                data = data[written:]
            # An error: the transport's own write meets it again and handles it.
        # While writing, the transport may call pauseProducing: later sends then wait.
        transport.write(data)

    def pauseProducing(self) -> None:
        self._paused = True

    def resumeProducing(self) -> None:
        self._paused = False
        self._flush_backlog()

    def stopProducing(self) -> None:
        self._paused = True
