"""msgpack-rpc on the node wire, without I/O: the incremental reader and the encoders.

The Twisted protocol (:mod:`hadaemon.nodes.protocol`) frames nothing itself: it feeds
what it receives to a :class:`MessageReader` and gets one typed call per message
(``request``, ``response``, ``notification``); the shapes are checked by
:mod:`hadaemon.nodes.client._homegear_wire`, which the node client uses too. The
msgpack-rpc spec's three shapes, every value in hadaemon's value model
(:mod:`hadaemon.values`, shared with the node client)::

    request       [0, msgid, method, params]     msgid: int, method: str, params: array
    response      [1, msgid, error, result]      error: nil or {faultCode, faultString}
    notification  [2, method, params]

Either side sends requests. Node to daemon: ``authenticate(nodeId, token, info)`` first,
then node methods and RPC methods. Daemon to node: ``ping()`` and
``nodeInput(inputIndex, msg)`` (the node keeps its nodeInfo from ``authenticate``), and
the notification ``event(source, peerId, channel, name, value)``.

Since protocol 2 (:data:`COUNTED_INPUTS`), a ``nodeInput`` whose return value nobody
waits for (a message from another node) is a notification, and the client reports
handled inputs by count with the notification ``inputDone(handled, failed)``: one
message per batch instead of an answer per input, on both sides.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import msgpack

from hadaemon.nodes.client._homegear_wire import (
    NOTIFICATION,
    REQUEST,
    RESPONSE,
    WireError,
    dispatch,
)
from hadaemon.values import make_unpacker, pack

__all__ = [
    "NOTIFICATION", "REQUEST", "RESPONSE", "FrameTooLarge", "MalformedMsgpack",
    "MessageReader", "Notification", "ProtocolError", "Receiver", "Request", "Response",
    "WireError", "dispatch", "parse",
]

PROTOCOL_VERSION = 2
COUNTED_INPUTS = 2
"""The client protocol from which ``nodeInput`` may be a notification (see above)."""

FIRST_BUFFER = 4096
"""Bytes of a new reader's buffer (it grows as messages need)."""
SHRINK_ABOVE = 256 * 1024
"""A reader's buffer that grew beyond this is replaced by a small one once empty."""

ProtocolError = WireError
"""A message that is not msgpack-rpc (the shared :class:`WireError`)."""


class Receiver(Protocol):
    """What a :class:`MessageReader` calls, one call per message (see
    :func:`~hadaemon.nodes.client._homegear_wire.dispatch`)."""

    def request(self, msgid: int, method: str, params: list[Any]) -> None: ...

    def response(self, msgid: int, error: Any, result: Any) -> None: ...

    def notification(self, method: str, params: list[Any]) -> None: ...

    @property
    def closed(self) -> bool:
        """True once the receiver wants no more messages of this feed."""
        ...


class FrameTooLarge(WireError):
    """A message would exceed the reader's limit (``limit``, bytes)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"message larger than the limit of {limit} bytes")
        self.limit = limit


class MalformedMsgpack(WireError):
    """Bytes that are not msgpack (or not hadaemon's value model); the stream is lost."""


class MessageReader:
    """The incoming half of the msgpack wire: bytes in, split anywhere, typed calls out.

    :meth:`feed` decodes every complete message and hands it to the receiver
    (:func:`dispatch`), never holding more than ``limit`` bytes of an unfinished message
    (the limit may change between feeds: a connection allows more once authenticated).
    The buffer starts small, grows with what the peer sends, and is given back after a
    large message. After an error the stream cannot be resynchronised: close it.
    """

    def __init__(self, limit: int, max_limit: int | None = None) -> None:
        self.limit = limit
        """The most bytes of one message accepted now."""
        self._max = max(limit, max_limit or 0)  # the most limit may ever become
        self._unpacker = self._new_unpacker()
        self._fed = 0  # bytes fed to the unpacker
        self._message_start = 0  # where in them the unfinished message starts
        self._peak = 0  # the most bytes the unpacker held at once

    @property
    def unfinished(self) -> int:
        """Bytes received of a message not complete yet."""
        return self._fed - self._message_start

    def feed(self, data: bytes, receiver: Receiver) -> None:
        """Hand every complete message in what was received so far to ``receiver``,
        until it is closed; raises :class:`FrameTooLarge`, :class:`MalformedMsgpack` or
        :class:`WireError` (the receiver is not kept: a closed connection leaves no
        reference cycle through its reader)."""
        unpacker = self._unpacker
        while data:
            # The unpacker parses incrementally (its own buffer limit does not bound a
            # message), so count the bytes of the unfinished message here: never feed
            # more than would complete a message beyond the limit.
            held = self._fed - self._message_start
            room = self.limit - held
            if room <= 0:
                raise FrameTooLarge(self.limit)
            if len(data) > room:
                chunk, data = data[:room], data[room:]
            else:
                chunk, data = data, b""
            unpacker.feed(chunk)
            self._fed += len(chunk)
            self._peak = max(self._peak, held + len(chunk))
            if not self._dispatch_all(unpacker, receiver):
                return
        if self._peak > SHRINK_ABOVE and self._fed == self._message_start:
            self._shrink()

    def _dispatch_all(self, unpacker: Any, receiver: Receiver) -> bool:
        """Every complete message buffered; False once the receiver closed."""
        tell = unpacker.tell
        while True:
            try:
                obj = next(unpacker)
            except StopIteration:
                return True
            except Exception as exc:  # FormatError, bad UTF-8, unhashable keys...
                detail = str(exc) or "a byte that begins no msgpack value"
                raise MalformedMsgpack(f"{type(exc).__name__}: {detail}") from None
            # Where the next message starts (only here: the unpacker's position moves
            # on through an unfinished message too, which must count against the limit).
            self._message_start = tell()
            dispatch(obj, receiver)
            if receiver.closed:
                return False

    def _new_unpacker(self) -> Any:
        # Its buffer starts at FIRST_BUFFER bytes and doubles as a message needs it (by
        # default msgpack would allocate min(max_buffer_size, 1 MiB) up front).
        return make_unpacker(max_buffer_size=self._max + 1,
                             read_size=min(FIRST_BUFFER, self._max + 1))

    def _shrink(self) -> None:
        """After a large message, a fresh (small) buffer: the unpacker never gives back
        what it grew to."""
        self._unpacker = self._new_unpacker()
        self._fed = self._message_start = self._peak = 0


@dataclass(frozen=True, slots=True)
class Request:
    msgid: int
    method: str
    params: list[Any]


@dataclass(frozen=True, slots=True)
class Response:
    msgid: int
    error: Any
    result: Any


@dataclass(frozen=True, slots=True)
class Notification:
    method: str
    params: list[Any]


Message = Request | Response | Notification


class _Collect:
    """A receiver that keeps the one message it got, as a value (for :func:`parse`)."""

    message: Message | None = None
    closed = False

    def request(self, msgid: int, method: str, params: list[Any]) -> None:
        self.message = Request(msgid, method, params)

    def response(self, msgid: int, error: Any, result: Any) -> None:
        self.message = Response(msgid, error, result)

    def notification(self, method: str, params: list[Any]) -> None:
        self.message = Notification(method, params)


def parse(obj: Any) -> Message:
    """The message ``obj`` (a decoded msgpack object) is, as a value, or
    :class:`WireError`."""
    collect = _Collect()
    dispatch(obj, collect)
    assert collect.message is not None
    return collect.message


def encode_request(msgid: int, method: str, params: list[Any]) -> bytes:
    return pack([REQUEST, msgid, method, params])


def encode_response(msgid: int, error: Any, result: Any) -> bytes:
    """A response; a result outside the value model becomes a fault saying so."""
    if error is None and result is None:
        # The common answer, assembled: benchmarks/shortcuts.py, 163-303 ns against
        # 1.3-2.8 us through the value model's pack.
        return b"".join((_RESPONSE_HEAD, _packb(msgid), b"\xc0\xc0"))
    try:
        return pack([RESPONSE, msgid, error, result])
    except TypeError as exc:
        fault = {"faultCode": -32500, "faultString": f"the result cannot be sent: {exc}"}
        return pack([RESPONSE, msgid, fault, None])


def encode_notification(method: str, params: list[Any]) -> bytes:
    return pack([NOTIFICATION, method, params])


_packb = msgpack.Packer(use_bin_type=True).pack  # for ints and strs known to be in range
_RESPONSE_HEAD = b"\x94\x01"  # array(4), type 1 (response)
_INPUT_HEAD = b"\x94\x00"  # array(4), type 0 (request)
_INPUT_METHOD = pack("nodeInput")
_EVENT_HEAD = b"\x93\x02" + pack("event") + b"\x95"  # array(3), type 2, "event", array(5)
_NOTE_HEAD = b"\x93\x02" + _INPUT_METHOD + b"\x92"  # array(3), type 2, "nodeInput", array(2)


def encode_input(msgid: int, port: int, packed_msg: bytes) -> bytes:
    """``nodeInput(port, msg)`` around a message packed once for every destination."""
    return b"".join((_INPUT_HEAD, _packb(msgid), _INPUT_METHOD, b"\x92", _packb(port),
                     packed_msg))


def encode_input_notification(port: int, packed_msg: bytes) -> bytes:
    """``nodeInput(port, msg)`` as a notification (protocol 2: no answer but a count).

    The message is packed once for every destination and spliced in after the call's
    head: ``benchmarks/shortcuts.py``, 95-108 ns against 2.7-4.4 us packing the whole
    call per destination (2.6 us saved of the ~4 us a message costs the daemon in
    ``benchmarks/node_routing.py``). A table of heads per port saved nothing measurable
    over the join and went.
    """
    return b"".join((_NOTE_HEAD, _packb(port), packed_msg))


def encode_event(source: str, peer_id: int, channel: int, name: str, value: Any) -> bytes:
    """The ``event`` notification (packed once, written to every node that wants it)."""
    return b"".join((_EVENT_HEAD, pack(source), pack(peer_id), pack(channel), pack(name),
                     pack(value)))
