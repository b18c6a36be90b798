"""hadaemon's node wire: msgpack-rpc over the Unix socket, as a Twisted protocol.

The connection's life is :mod:`hadaemon.nodes.connection`'s state machine:

``AUTHENTICATING``
    Only ``authenticate(nodeId, token, info)`` is accepted; any other call is refused
    (``-32002``) and the connection closed, so is a wrong token, or a right one from a
    process other than the one the daemon started for that node (``-32001``: the client
    then exits), so is silence beyond the authentication timeout.
``BOUND``
    The dispatcher bound it to its node and pinged it; node methods, RPC methods, and
    the daemon's ``nodeInput`` calls and events flow.
``CLOSED``
    After a protocol error, an overflow, a replacement, or the peer going away.

Layers: this protocol does no parsing. What it receives goes to a
:class:`~hadaemon.nodes.wire.MessageReader` (no I/O), which never holds more than
``max_frame`` bytes of an unfinished message
(:data:`~hadaemon.nodes.handshake.HANDSHAKE_FRAME` before the connection authenticated)
and calls :meth:`~MsgpackNodeProtocol.request`, :meth:`~MsgpackNodeProtocol.response` or
:meth:`~MsgpackNodeProtocol.notification` once per message; a larger message, malformed
msgpack or a message that is not msgpack-rpc closes the connection with a log line naming
the node and the problem. Here: what the calls mean (authentication, the dispatcher,
``nodeOutput`` straight to the router) and the sender's credits (flow control).
Outgoing data is bounded as every node connection's is (see
:mod:`hadaemon.nodes.connection`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from hadaemon.nodes import faults
from hadaemon.nodes.auth import PeerCredentials
from hadaemon.nodes.connection import Limits, NodeConnection, State
from hadaemon.nodes.credits import Credits
from hadaemon.nodes.faults import Fault
from hadaemon.nodes.handshake import HANDSHAKE_FRAME
from hadaemon.nodes.link import (
    EventMessage,
    InputDone,
    InputSink,
    LinkLost,
    OutgoingMessage,
    input_ended,
)
from hadaemon.nodes.wire import (
    COUNTED_INPUTS,
    FrameTooLarge,
    MalformedMsgpack,
    MessageReader,
    WireError,
    encode_input,
    encode_input_notification,
    encode_notification,
    encode_request,
    encode_response,
)

if TYPE_CHECKING:
    from hadaemon.nodes.dispatcher import Dispatcher


class MsgpackNodeProtocol(NodeConnection):
    """One node connection speaking msgpack-rpc; a :class:`~hadaemon.nodes.link.NodeLink`."""

    wire = "msgpack"

    def __init__(
        self,
        dispatcher: Dispatcher,
        limits: Limits,
        reactor: Any,
        log: Logger,
        peer: PeerCredentials | None = None,
    ) -> None:
        super().__init__(dispatcher, limits, reactor, log, peer)
        self.window = limits.window
        # What comes in: bytes to typed calls of this object, no more than a handshake
        # before the peer authenticated.
        self._reader = MessageReader(min(limits.max_frame, HANDSHAKE_FRAME), limits.max_frame)
        self._next_id = 1
        self._calls: dict[int, Callable[[Any, Any], None]] = {}
        # The node's flow control: what it sends without awaiting an answer costs it a
        # credit, given back once handled.
        self._credits = Credits()
        # Set once bound: the node's nodeOutput, straight to the router.
        self._route: Callable[[Any, Any], Deferred[None] | None] | None = None
        # Inputs sent as notifications (the client counts them, see wire.COUNTED_INPUTS).
        self._counted_inputs = False
        self._counted = 0  # of those, in flight
        self._sink: InputSink | None = None

    def _fail_calls(self, lost: LinkLost) -> None:
        calls, self._calls = self._calls, {}
        for done in calls.values():
            done(lost, None)
        counted, self._counted = self._counted, 0
        if counted and self._sink is not None:
            self._sink.inputs_done(0, 0, counted)

    # -- incoming: the reader's calls -----------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        """Every complete message to its handler below; a protocol error closes."""
        if self.state is not State.CLOSED:
            try:
                self._reader.feed(data, self)
            except FrameTooLarge as exc:
                self._fail(self._too_large(exc.limit))
            except MalformedMsgpack as exc:
                self._fail(f"malformed msgpack ({exc})")
            except WireError as exc:
                answer = None
                if exc.msgid is not None:
                    answer = encode_response(
                        exc.msgid, Fault(faults.INVALID_PARAMS, str(exc)).as_dict(), None)
                self._fail(f"not msgpack-rpc: {exc}", answer)
        self.end_of_read()

    def _too_large(self, limit: int) -> str:
        if self.state is State.BOUND:
            return f"message larger than the limit of {limit} bytes ([nodes].max_frame)"
        return (f"message larger than the limit of {limit} bytes before authenticating "
                "(the first message is authenticate, a few hundred bytes)")

    def _unfinished(self) -> int:
        return self._reader.unfinished

    def notification(self, method: str, params: list[Any]) -> None:
        """A call whose answer is not wanted: the client's ``nodeOutput(nodeId, index,
        msg)`` (the most frequent message), inputDone, nodeLog..."""
        if method == "nodeOutput" and self.state is State.BOUND:
            route = self._route
            if route is not None and len(params) >= 3 and params[0] == self.node_id:
                # Straight to the router, not through Dispatcher.call (its lookups,
                # _quietly's frame): benchmarks/shortcuts.py, 100 nodeOutputs through
                # the protocol in 121-188 us against 184-310 us the general way, ~640 ns
                # a message saved (16% of the daemon's CPU per message in
                # benchmarks/node_routing.py).
                try:
                    held = route(params[1], params[2])
                except Exception as exc:
                    self._call_failed("nodeOutput", exc)
                    held = None
                if held is None:
                    self._grant(1)
                else:  # the credit comes back once the destination has room
                    self._credits.hold(held, self._grant)
                return
            # Anything unusual takes the general way, which faults as it should.
        elif method == "inputDone" and self.state is State.BOUND:
            self._inputs_done(params)
            return
        self._notification(method, params)

    def _inputs_done(self, params: list[Any]) -> None:
        """``inputDone(handled, failed)``: the node ran that many counted inputs."""
        if (len(params) != 2 or type(params[0]) is not int or type(params[1]) is not int
                or params[0] < 0 or params[1] < 0 or params[0] + params[1] > self._counted):
            self._fail(f"inputDone{tuple(params)!r} does not match the {self._counted} "
                       "input(s) in flight")
            return
        handled, failed = params
        self._counted -= handled + failed
        if self._sink is not None:
            self._sink.inputs_done(handled, failed, 0)

    def response(self, msgid: int, error: Any, result: Any) -> None:
        """The answer to one of our calls (a ping, a nodeInput someone waits for)."""
        done = self._calls.pop(msgid, None)
        if done is None:
            self.log.debug("{who}: answer to unknown call {msgid} ignored",
                           who=self.who(), msgid=msgid)
        else:
            done(error, result)

    def request(self, msgid: int, method: str, params: list[Any]) -> None:
        """A call the node waits for: authenticate first, then any node or RPC method."""
        if self.state is State.AUTHENTICATING:
            self._authenticate(msgid, method, params)
            return
        try:
            result = self.dispatcher.call(self, method, params)
        except Fault as fault:
            self._answer(msgid, fault.as_dict(), None)
            return
        except Exception as exc:
            self.log.failure("{who}: {method} failed", failure=Failure(), who=self.who(),
                             method=method)
            self._answer(msgid, faults.from_exception(exc).as_dict(), None)
            return
        if isinstance(result, Deferred):
            result.addCallbacks(
                self._deferred_answer, self._deferred_fault,
                (msgid,), {}, (msgid, method),
            )
        else:
            self._answer(msgid, None, result)

    def _notification(self, method: str, params: list[Any]) -> None:
        """A call whose answer is not wanted (the client's nodeOutput, nodeLog...).

        The client spends a credit on each; it gets it back once the call was handled,
        later if the answer is held (a full destination): that is its flow control.
        """
        if self.state is not State.BOUND:
            self._fail(f"sent {method} before authenticating")
            return
        result = self._quietly(method, self.dispatcher.call, self, method, params)
        if isinstance(result, Deferred):
            result.addCallbacks(self._credit_back, self._held_fault, (), {}, (method,))
        else:
            self._grant(1)

    def _quietly(self, method: str, call: Callable[..., Any], *args: Any) -> Any:
        """``call(*args)`` for a notification: a failure goes back to the node as a
        ``fault`` notification (and is logged if unexpected); the result is then None."""
        try:
            return call(*args)
        except Exception as exc:
            self._call_failed(method, exc)
        return None

    def _call_failed(self, method: str, exc: Exception) -> None:
        """A notification's call raised (in an ``except`` block: logged with its
        traceback unless it is a Fault); the node gets a ``fault`` notification."""
        if isinstance(exc, Fault):
            self._note_fault(method, exc)
            return
        self.log.failure("{who}: {method} failed", failure=Failure(), who=self.who(),
                         method=method)
        self._note_fault(method, faults.from_exception(exc))

    def _credit_back(self, _: object = None) -> None:
        self._grant(1)

    def _held_fault(self, failure: Failure, method: str) -> None:
        self._note_fault(method, faults.from_exception(failure.value))
        self._grant(1)

    def _note_fault(self, method: str, fault: Fault) -> None:
        self.log.debug("{who}: {method} (no answer wanted) failed: {error}",
                       who=self.who(), method=method, error=fault.message)
        self._send(encode_notification("fault", [f"{method}: {fault.message}"]))

    def _grant(self, credits: int) -> None:
        if self.state is State.CLOSED:
            return
        if self._credits.earn(credits) and not self._flush_due and not self._paused:
            self._schedule_flush()

    def _deferred_answer(self, result: Any, msgid: int) -> None:
        self._answer(msgid, None, result)

    def _deferred_fault(self, failure: Failure, msgid: int, method: str) -> None:
        fault = faults.from_exception(failure.value)
        if fault.code == faults.APPLICATION_ERROR:
            self.log.failure("{who}: {method} failed", failure=failure, who=self.who(),
                             method=method)
        self._answer(msgid, fault.as_dict(), None)

    def _answer(self, msgid: int, error: Any, result: Any) -> None:
        if self.state is not State.CLOSED:
            self._send(encode_response(msgid, error, result))

    def _authenticate(self, msgid: int, method: str, params: list[Any]) -> None:
        if method != "authenticate":
            fault = Fault(faults.NOT_AUTHENTICATED,
                          f"{method}: not authenticated (call authenticate first)")
            self._fail(f"called {method} before authenticating",
                       encode_response(msgid, fault.as_dict(), None))
            return
        node_id = params[0] if params else None
        token = params[1] if len(params) > 1 else None
        try:
            result = self.dispatcher.authenticate(self, node_id, token)
            self._check_pid(node_id)
        except Fault as fault:
            shown = node_id if isinstance(node_id, str) else type(node_id).__name__
            self._fail(f"refused as node {shown!r}: {fault.message}",
                       encode_response(msgid, fault.as_dict(), None))
            return
        assert isinstance(node_id, str)
        info = params[2] if len(params) > 2 else None
        protocol = info.get("protocol") if type(info) is dict else None
        self._counted_inputs = type(protocol) is int and protocol >= COUNTED_INPUTS
        self._authenticated()
        self._reader.limit = self.limits.max_frame
        credits = result.get("credits") if type(result) is dict else None
        if type(credits) is int and credits > 0:
            # Credits owed go with whatever else goes to the node, or on their own once a
            # quarter of the node's are owed (it always has the other three quarters to
            # go on with, so it never waits for these). A credit message of their own for
            # every nodeOutput handled woke a relay's reader once more per message.
            # benchmarks/nodes_vs_nodered.py, MQTT round trip on the test broker,
            # interleaved: the two nodes' threads slept 10.3-11.1 times per round trip,
            # against 11.8-12.1 with a credit message per output.
            self._credits.batch = max(1, credits // 4)
        self._answer(msgid, None, result)
        self.dispatcher.bind(self, node_id)
        self._route = self.dispatcher.output_route(node_id)

    def _check_pid(self, node_id: object) -> None:
        """A token counts only from the process the daemon started for that node (one
        read by another process of the same user is worth nothing)."""
        pid = self.peer.pid if self.peer is not None else None
        if pid is None or self.dispatcher.node_for_pid(pid) != node_id:
            raise Fault(faults.AUTH_REFUSED, f"this connection comes from pid {pid}, not "
                        f"from the process this daemon started for node {node_id!r} (a "
                        "wrapper interpreter must exec Python, not fork it)")

    # -- outgoing calls -------------------------------------------------------------------

    def _call(self, method: str, params: list[Any], done: Callable[[Any, Any], None]) -> None:
        msgid = self._next_id
        self._next_id = msgid + 1 if msgid < 0xFFFFFFFF else 1
        self._calls[msgid] = done
        self._send(encode_request(msgid, method, params))

    def send_input(
        self, port: int, message: OutgoingMessage, done: InputDone | None, sink: InputSink
    ) -> None:
        if self.state is not State.BOUND:
            input_ended(done, sink, LinkLost(f"{self.who()} is not connected"), None)
            return
        if done is None and self._counted_inputs:
            # Nobody wants the value: a notification, counted back by inputDone.
            self._sink = sink
            self._counted += 1
            self._send(encode_input_notification(port, message.packed))
            return
        msgid = self._next_id
        self._next_id = msgid + 1 if msgid < 0xFFFFFFFF else 1
        self._calls[msgid] = functools.partial(input_ended, done, sink)
        self._send(encode_input(msgid, port, message.packed))

    def ping(self) -> Deferred[Any]:
        d: Deferred[Any] = Deferred()

        def answered(error: Any, result: Any) -> None:
            if error is None:
                d.callback(result)
            else:
                d.errback(error if isinstance(error, Exception) else
                          Exception(str(error)))

        self._call("ping", [], answered)
        return d

    def send_event(self, event: EventMessage) -> bool:
        if self.state is not State.BOUND:
            return False
        return self._send(event.msgpack, droppable=True)

    def node_info_changed(self) -> None:
        # The client keeps the nodeInfo of its authenticate answer; this replaces it
        # (a client that does not know the notification ignores it).
        if self.state is State.BOUND and self.node_id is not None:
            info = self.dispatcher.flows.node_info(self.node_id)
            self._send(encode_notification("nodeInfo", [info]))

    def _before_flush(self) -> None:
        # Many credits, one message: with what else goes to the node in this write, or
        # on its own once a batch (a quarter of the node's credits) is owed.
        credit = self._credits.message(bool(self._backlog))
        if credit is not None:
            self._backlog.append(credit)
