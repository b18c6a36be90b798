"""Homegear binary RPC on the node socket: the real ``homegear`` C++ module, unchanged.

The real client (``libhomegear-ipc``) speaks Homegear binary RPC (:mod:`hadaemon.binrpc`)
and is served through the same :class:`~hadaemon.nodes.dispatcher.Dispatcher` as
hadaemon's own wire. Layers: :mod:`hadaemon.binrpc` frames and decodes packets,
:mod:`hadaemon.nodes.ipc` reads and writes the IPC envelopes around them (no I/O: bytes
in, ``call`` and ``answer`` calls of this protocol out), and this protocol gives them
their meaning. The node's calls are answered in whatever order the results are ready
(the client matches answers by thread). The daemon's calls: ``ping()``,
``broadcastEvent(source, peerId, channel, [name], [value])`` (the two lists always of
equal length: the client never answers otherwise) and
``nodeInput(nodeInfo, inputIndex, msg)``. Each waits at most ``call_timeout``.

Identity: the real client cannot present a token; its only handshake is
``setPid(getpid())``. The connection's identity is the peer's pid as the kernel reports
it (``SO_PEERCRED``, read by :mod:`hadaemon.nodes.server` at connect), which must be the
pid of a node process the supervisor started (it executes nodes directly, no shell or
wrapper in between, so the pids are the same); ``setPid`` must name that same pid. Node
calls may come before ``setPid`` (the client does not wait for its answer): they are
accepted, as the pid already says which node this is, and the node id they carry must
be that node's. A peer whose pid is no node's gets a fault (-32001) to its first call,
and the connection is closed.

Lifecycle (:mod:`hadaemon.nodes.connection`): ``AUTHENTICATING`` until ``setPid`` (calls
of an identified node are served), ``BOUND`` once ``setPid`` agreed (the dispatcher pings
it; inputs and events flow once it answered), ``CLOSED``.

Ordering: the real client runs every call from the daemon on a pool of ten threads, so
two ``nodeInput`` calls in flight at once may run concurrently and out of order. The
only way to keep a node's inputs in order and one at a time is to send the next only
once the previous one was answered (the client answers when its callback returned):
this wire's window is 1, whatever ``[nodes].window`` says. A ``nodeInput`` without an
answer within ``call_timeout`` fails (reported as the node's error) and the next goes
out: a callback still running then may overlap with the next one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from hadaemon import binrpc
from hadaemon.bus import Level
from hadaemon.nodes import faults
from hadaemon.nodes.auth import PeerCredentials
from hadaemon.nodes.connection import Limits, NodeConnection, State
from hadaemon.nodes.delivery import Throttle, suppressed
from hadaemon.nodes.faults import Fault
from hadaemon.nodes.handshake import HANDSHAKE_FRAME
from hadaemon.nodes.ipc import (
    NO_ARGUMENTS,
    PACKET_ID_MAX,
    IpcError,
    IpcReader,
    encode_answer,
    encode_call,
    show,
)
from hadaemon.nodes.link import (
    EventMessage,
    InputDone,
    InputSink,
    LinkLost,
    OutgoingMessage,
    input_ended,
)

if TYPE_CHECKING:
    from hadaemon.nodes.dispatcher import Dispatcher

class CallTimeout(Exception):
    """A node did not answer one of the daemon's calls within ``call_timeout``."""


class _Call:
    """One of the daemon's calls waiting for the node's answer."""

    __slots__ = ("deadline", "done", "method")

    def __init__(self, method: str, done: Callable[[Any, Any], None], deadline: float) -> None:
        self.method = method
        self.done = done
        self.deadline = deadline


class BinaryNodeProtocol(NodeConnection):
    """One connection of a Homegear binary RPC client; a
    :class:`~hadaemon.nodes.link.NodeLink` (see the module docstring)."""

    wire = "binrpc"
    window = 1  # see "Ordering" in the module docstring

    def __init__(
        self,
        dispatcher: Dispatcher,
        limits: Limits,
        reactor: Any,
        log: Logger,
        peer: PeerCredentials | None = None,
    ) -> None:
        super().__init__(dispatcher, limits, reactor, log, peer)
        self._reader = IpcReader()  # limits: see connectionMade
        self._next_id = 1
        # The daemon's calls in the order they were made: with one timeout for all, the
        # first one is always the next to expire (one timer serves them all).
        self._calls: dict[int, _Call] = {}
        self._expiry: IDelayedCall | None = None
        self._node_info: bytes | None = None
        self._refused: str | None = None
        self._throttle = Throttle(reactor)

    # -- connection -----------------------------------------------------------------------

    def connectionMade(self) -> None:
        super().connectionMade()
        pid = self.peer.pid if self.peer is not None else None
        node_id = self.dispatcher.node_for_pid(pid) if pid is not None else None
        if node_id is None:
            self._refused = (f"pid {pid} is not a node process this daemon started (a node "
                             "must be executed directly, not by a shell or wrapper that forks)")
        else:
            self.node_id = node_id  # known by its pid: calls before setPid are served
        self._limit_frames()

    # -- the incoming buffer: sized by what the peer sends --------------------------------

    def _limit_frames(self) -> None:
        """A node's packets may take ``max_frame``; a peer that is no node's (refused at
        its first call) may send no more than a handshake. The decoder's buffer grows
        with the bytes received, whatever size a packet declares."""
        self._reader.limit(self.limits.max_frame if self._refused is None else min(
            self.limits.max_frame, HANDSHAKE_FRAME))

    def _unfinished(self) -> int:
        return self._reader.unfinished

    def _auth_problem(self) -> str:
        return f"did not call setPid within {self.limits.auth_timeout:g} s"

    def _fail_calls(self, lost: LinkLost) -> None:
        if self._expiry is not None and self._expiry.active():
            self._expiry.cancel()
        self._expiry = None
        calls, self._calls = self._calls, {}
        for call in calls.values():
            call.done(lost, None)

    # -- incoming: the reader's calls -----------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        if self.state is State.CLOSED:
            return
        try:
            self._reader.feed(data, self)
        except binrpc.BinRpcError as exc:
            unknown = f" (and {self._refused})" if self._refused else ""
            self._fail(f"malformed Homegear binary RPC: {exc}{unknown}")
        except IpcError as exc:
            self._fail(str(exc))

    def call(self, thread_id: int, packet_id: int, method: str, args: list[Any]) -> None:
        """The node calls: ``setPid`` binds the connection, anything else is served."""
        if self._refused is not None:
            fault = Fault(faults.AUTH_REFUSED, f"refused: {self._refused}")
            self._fail(fault.message, encode_answer(thread_id, packet_id, fault.as_dict()))
            return
        if method == "setPid":
            self._set_pid(thread_id, packet_id, args)
            return
        try:
            result = self.dispatcher.call(self, method, args)
        except Fault as fault:
            self._answer(thread_id, packet_id, fault.as_dict())
            return
        except Exception as exc:
            self.log.failure("{who}: {method} failed", failure=Failure(), who=self.who(),
                             method=method)
            self._answer(thread_id, packet_id, faults.from_exception(exc).as_dict())
            return
        if isinstance(result, Deferred):
            result.addCallbacks(
                self._deferred_answer, self._deferred_fault,
                (thread_id, packet_id), {}, (thread_id, packet_id, method),
            )
        else:
            self._answer(thread_id, packet_id, result)

    def answer(self, packet_id: int, error: Any, result: Any) -> None:
        """The node answered one of the daemon's calls."""
        call = self._calls.pop(packet_id, None)
        if call is not None:  # else an event's answer (not waited for), or a late one
            call.done(error, result)

    def _set_pid(self, thread_id: int, packet_id: int, args: list[Any]) -> None:
        pid = args[0] if args else None
        own = self.peer.pid if self.peer is not None else None
        if type(pid) is not int or pid != own or self.dispatcher.node_for_pid(pid) != self.node_id:
            fault = Fault(faults.AUTH_REFUSED,
                          f"setPid({show(pid)}): this connection comes from pid {own}")
            self._fail(f"refused: {fault.message}",
                       encode_answer(thread_id, packet_id, fault.as_dict()))
            return
        self._answer(thread_id, packet_id, None)
        if self.state is State.AUTHENTICATING:
            assert self.node_id is not None
            self._authenticated()
            self._node_info = None
            self.dispatcher.bind(self, self.node_id)

    def _deferred_answer(self, result: Any, thread_id: int, packet_id: int) -> None:
        self._answer(thread_id, packet_id, result)

    def _deferred_fault(self, failure: Failure, thread_id: int, packet_id: int,
                        method: str) -> None:
        fault = faults.from_exception(failure.value)
        if fault.code == faults.APPLICATION_ERROR:
            self.log.failure("{who}: {method} failed", failure=failure, who=self.who(),
                             method=method)
        self._answer(thread_id, packet_id, fault.as_dict())

    def _answer(self, thread_id: int, packet_id: int, result: Any) -> None:
        if self.state is not State.CLOSED:
            self._send(encode_answer(thread_id, packet_id, result))

    # -- the daemon's calls ---------------------------------------------------------------

    def _packet_id(self) -> int:
        packet_id = self._next_id
        self._next_id = packet_id + 1 if packet_id < PACKET_ID_MAX else 1
        return packet_id

    def _call(self, method: str, args: bytes, done: Callable[[Any, Any], None]) -> None:
        """Send ``method`` with its encoded argument Array; ``done(error, result)`` gets
        the answer, a :class:`CallTimeout`, or :class:`LinkLost`."""
        packet_id = self._packet_id()
        deadline = self.reactor.seconds() + self.limits.call_timeout
        self._calls[packet_id] = _Call(method, done, deadline)
        self._send(encode_call(packet_id, method, args))
        if self._expiry is None:
            self._expiry = self.reactor.callLater(self.limits.call_timeout, self._expire)

    def _expire(self) -> None:
        self._expiry = None
        now = self.reactor.seconds()
        calls = self._calls
        while calls:
            packet_id, call = next(iter(calls.items()))
            if call.deadline > now:
                self._expiry = self.reactor.callLater(call.deadline - now, self._expire)
                return
            del calls[packet_id]
            call.done(CallTimeout(f"{self.who()} did not answer {call.method} within "
                                  f"{self.limits.call_timeout:g} s ([nodes].call_timeout)"),
                      None)

    def send_input(
        self, port: int, message: OutgoingMessage, done: InputDone | None, sink: InputSink
    ) -> None:
        if self.state is not State.BOUND:
            input_ended(done, sink, LinkLost(f"{self.who()} is not connected"), None)
            return
        try:
            args = binrpc.encoded_array(
                [self._encoded_node_info(), binrpc.encode_value(port), message.binrpc])
        except binrpc.BinRpcError as exc:
            error = binrpc.BinRpcError(
                f"input {port} of node {self.node_id} cannot take this message: it speaks "
                f"Homegear binary RPC, which cannot carry it ({exc})")
            self._report(("undeliverable",), str(error))
            # Answered in a later turn: never from inside the queue's own send loop.
            self.reactor.callLater(0, input_ended, done, sink, error, None)
            return

        def answered(error: Any, result: Any) -> None:
            if isinstance(error, CallTimeout):
                self._report(("timeout",), f"{error}: the next input is sent (the "
                             "callback may still be running)")
            input_ended(done, sink, error, result)

        self._call("nodeInput", args, answered)

    def node_info_changed(self) -> None:
        self._node_info = None  # every nodeInput carries it: the next one the new one

    def _encoded_node_info(self) -> bytes:
        if self._node_info is None:
            assert self.node_id is not None
            self._node_info = binrpc.encode_value(
                self.dispatcher.flows.node_info(self.node_id), lossy=True)
        return self._node_info

    def send_event(self, event: EventMessage) -> bool:
        if self.state is not State.BOUND:
            return False
        try:
            args = event.binrpc
        except binrpc.BinRpcError as exc:
            count = self._throttle.hit(("event", event.source, event.name))
            if count is not None:
                self.log.warn(
                    "{who}: event {source} {peer}/{channel}/{name} cannot be sent on Homegear "
                    "binary RPC: {error}{more}", who=self.who(), source=event.source,
                    peer=event.peer_id, channel=event.channel, name=event.name,
                    error=str(exc), more=suppressed(count))
            return False
        # Not waited for: the client's answer (Void) is ignored when it comes.
        return self._send(encode_call(self._packet_id(), "broadcastEvent", args),
                          droppable=True)

    def ping(self) -> Deferred[Any]:
        d: Deferred[Any] = Deferred()

        def answered(error: Any, result: Any) -> None:
            if isinstance(error, LinkLost | CallTimeout):
                d.errback(error)
                if isinstance(error, CallTimeout):
                    self.close("it did not answer ping")
            else:
                # Any answer, even a fault (an older client without ping), shows that
                # the node's client is up and serving the daemon's calls.
                d.callback(result)

        self._call("ping", NO_ARGUMENTS, answered)
        return d

    def _report(self, key: tuple[Any, ...], message: str) -> None:
        """The node's error, throttled: logged and published (catch nodes see it)."""
        count = self._throttle.hit(key)
        if count is not None and self.node_id is not None:
            self.dispatcher.report(self.node_id, message + suppressed(count), int(Level.ERROR))
