"""What the dispatcher needs from a connection to a node, whatever its wire.

hadaemon's own wire is msgpack-rpc (:mod:`hadaemon.nodes.protocol`); Homegear's binary
RPC can be served through the same :class:`~hadaemon.nodes.dispatcher.Dispatcher` by a
second protocol implementing :class:`NodeLink` (the server tells them apart by the first
bytes, see :mod:`hadaemon.nodes.server`). Outgoing messages are built once and encoded
lazily per wire, so a message fanned out to many nodes is packed once per wire.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import msgpack
from twisted.internet.defer import Deferred

from hadaemon import binrpc
from hadaemon.nodes import wire
from hadaemon.nodes.auth import PeerCredentials
from hadaemon.values import pack

InputDone = Callable[[Any, Any], None]
"""``done(error, result)``: called once, on the reactor thread, when the node answered a
``nodeInput`` (error None), or with an exception when the answer cannot come."""


class InputSink(Protocol):
    """Where a link reports how its ``nodeInput`` calls ended (the node's input queue).

    A link reports every input it was given, exactly once: handled (the callback
    returned), failed (it raised, or the answer timed out) or lost (the connection went
    first). Counts, so that a wire may report many at once.
    """

    def inputs_done(self, handled: int, failed: int, lost: int) -> None:
        """``handled + failed + lost`` inputs in flight have ended."""


class LinkLost(Exception):
    """The connection went away before the node answered."""


def input_ended(done: InputDone | None, sink: InputSink, error: Any, result: Any) -> None:
    """A ``nodeInput`` call ended: its sender (if any) gets the answer, the queue the count."""
    if done is not None:
        done(error, result)
    if error is None:
        sink.inputs_done(1, 0, 0)
    elif isinstance(error, LinkLost):
        sink.inputs_done(0, 0, 1)
    else:
        sink.inputs_done(0, 1, 0)


class OutgoingMessage:
    """A message for one or more node inputs; its encodings are made once, when needed.

    ``decoded`` says the message was just decoded from the node wire (plus keys the
    daemon added): it is then known to be in the value model, and is encoded by the C
    packer directly instead of being checked item by item first.
    """

    __slots__ = ("_binrpc", "_packed", "decoded", "msg")

    def __init__(self, msg: dict[str, Any], *, decoded: bool = False) -> None:
        self.msg = msg
        self.decoded = decoded
        self._packed: bytes | None = None
        self._binrpc: bytes | binrpc.BinRpcError | None = None

    @property
    def packed(self) -> bytes:
        """The msgpack bytes (value model); raises UnsupportedValue for a bad value."""
        if self._packed is None:
            self._packed = fast_pack(self.msg) if self.decoded else pack(self.msg)
        return self._packed

    @property
    def binrpc(self) -> bytes:
        """The message as one Homegear binary RPC value (lossy where the real client
        would be, see :mod:`hadaemon.binrpc.values`); raises BinRpcError for a value that
        wire cannot carry (an int beyond 64 bits)."""
        return _binrpc_cached(self, lambda: binrpc.encode_value(self.msg, lossy=True))


def fast_pack(value: Any) -> bytes:
    """Pack a value decoded from the wire: the C packer, unless it holds an int beyond
    64 bits or a str with lone surrogates (ext types), which take the value model's way.

    For such values the bytes are exactly those of :func:`hadaemon.values.pack`.
    ``benchmarks/shortcuts.py``: 234-497 ns against 1.4-2.9 us for a small message
    (~1.2 us of the ~4 us a message costs the daemon in ``benchmarks/node_routing.py``).
    Reactor thread only (one packer, kept: making one per message costs more than
    packing a small message).
    """
    try:
        data: bytes = _packb(value)
    except (OverflowError, UnicodeEncodeError, TypeError, ValueError):
        return pack(value)
    return data


_packb = msgpack.Packer(use_bin_type=True).pack  # resets itself after a failure


class EventMessage:
    """One ``eventHandler(source, peerId, channel, name, value)`` call for many nodes."""

    __slots__ = ("_binrpc", "_encoded", "channel", "name", "peer_id", "source", "value")

    def __init__(self, source: str, peer_id: int, channel: int, name: str, value: Any) -> None:
        self.source = source
        self.peer_id = peer_id
        self.channel = channel
        self.name = name
        self.value = value
        self._encoded: bytes | None = None
        self._binrpc: bytes | binrpc.BinRpcError | None = None

    @property
    def msgpack(self) -> bytes:
        if self._encoded is None:
            self._encoded = wire.encode_event(
                self.source, self.peer_id, self.channel, self.name, self.value
            )
        return self._encoded

    @property
    def binrpc(self) -> bytes:
        """The arguments of Homegear's ``broadcastEvent(source, peerId, channel, [name],
        [value])`` as one encoded Array (the two lists always of equal length: the real
        client never answers otherwise); raises BinRpcError like
        :attr:`OutgoingMessage.binrpc`."""
        return _binrpc_cached(self, lambda: binrpc.encode_value(
            [self.source, self.peer_id, self.channel, [self.name], [self.value]], lossy=True
        ))


def _binrpc_cached(holder: OutgoingMessage | EventMessage, encode: Callable[[], bytes]) -> bytes:
    """Encode once for every binary-wire node, failure included."""
    cached = holder._binrpc
    if cached is None:
        try:
            cached = encode()
        except binrpc.BinRpcError as exc:
            cached = exc
        holder._binrpc = cached
    if isinstance(cached, binrpc.BinRpcError):
        raise binrpc.BinRpcError(str(cached))  # a fresh one: no traceback piles up
    return cached


class NodeLink(Protocol):
    """A connection of a node process (reactor thread only).

    ``node_id`` is None until the connection proved which node it is. ``window`` is how
    many ``nodeInput`` calls may be in flight at once on this wire.
    """

    wire: str
    node_id: str | None
    window: int
    peer: PeerCredentials | None

    def send_input(
        self, port: int, message: OutgoingMessage, done: InputDone | None, sink: InputSink
    ) -> None:
        """Call ``nodeInput`` on the node. ``done`` (if any) gets the answer, then
        ``sink`` learns how the input ended. Without ``done`` nobody wants the callback's
        return value: a wire may then send it without asking for an answer."""

    def send_event(self, event: EventMessage) -> bool:
        """Queue an event; False if it was dropped (the node does not keep up)."""

    def ping(self) -> Deferred[Any]:
        """Call ``ping``; fires when the node answered."""

    def node_info_changed(self) -> None:
        """The node's nodeInfo changed (a reload rewired it): hand the node the new one
        (the node's own settings did not change, so its process runs on)."""

    def close(self, reason: str) -> None:
        """Close the connection (logged with ``reason``)."""
