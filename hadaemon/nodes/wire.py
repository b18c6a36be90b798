"""msgpack-rpc messages of the node wire: plain data and functions, no I/O.

The msgpack-rpc spec's three shapes, every value in hadaemon's value model
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
from typing import Any

import msgpack

from hadaemon.values import pack

REQUEST = 0
RESPONSE = 1
NOTIFICATION = 2

PROTOCOL_VERSION = 2
COUNTED_INPUTS = 2
"""The client protocol from which ``nodeInput`` may be a notification (see above)."""
_MSGID_MAX = (1 << 32) - 1


class ProtocolError(Exception):
    """A message that is not msgpack-rpc; ``msgid`` is set when an answer is possible."""

    def __init__(self, message: str, msgid: int | None = None) -> None:
        super().__init__(message)
        self.msgid = msgid


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


def _msgid(value: Any) -> int:
    if type(value) is not int or not 0 <= value <= _MSGID_MAX:
        raise ProtocolError(f"msgid must be an unsigned 32-bit int, got {_show(value)}")
    return value


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def parse(obj: Any) -> Message:
    """The message ``obj`` (a decoded msgpack object) is, or :class:`ProtocolError`."""
    if type(obj) is not list or not obj:
        raise ProtocolError(
            f"a message is a non-empty array [type, ...], got {type(obj).__name__}"
        )
    kind = obj[0]
    if kind == REQUEST and type(kind) is int:
        if len(obj) != 4:
            raise ProtocolError(f"a request has 4 elements, got {len(obj)}")
        msgid = _msgid(obj[1])
        method, params = obj[2], obj[3]
        if type(method) is not str or not method:
            raise ProtocolError(f"method must be a non-empty string, got {_show(method)}", msgid)
        if type(params) is not list:
            raise ProtocolError(
                f"params of {method} must be an array, got {type(params).__name__}", msgid
            )
        return Request(msgid, method, params)
    if kind == RESPONSE and type(kind) is int:
        if len(obj) != 4:
            raise ProtocolError(f"a response has 4 elements, got {len(obj)}")
        return Response(_msgid(obj[1]), obj[2], obj[3])
    if kind == NOTIFICATION and type(kind) is int:
        if len(obj) != 3:
            raise ProtocolError(f"a notification has 3 elements, got {len(obj)}")
        method, params = obj[1], obj[2]
        if type(method) is not str or type(params) is not list:
            raise ProtocolError("a notification is [2, method: str, params: array]")
        return Notification(method, params)
    raise ProtocolError(
        f"unknown message type {_show(kind)} (0 request, 1 response, 2 notification)"
    )


def encode_request(msgid: int, method: str, params: list[Any]) -> bytes:
    return pack([REQUEST, msgid, method, params])


def encode_response(msgid: int, error: Any, result: Any) -> bytes:
    """A response; a result outside the value model becomes a fault saying so."""
    if error is None and result is None:
        return b"".join((_RESPONSE_HEAD, _packb(msgid), b"\xc0\xc0"))  # the common answer
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
_NOTE_HEADS: list[bytes] = [_NOTE_HEAD + _packb(port) for port in range(16)]  # usual ports


def encode_input(msgid: int, port: int, packed_msg: bytes) -> bytes:
    """``nodeInput(port, msg)`` around a message packed once for every destination."""
    return b"".join((_INPUT_HEAD, _packb(msgid), _INPUT_METHOD, b"\x92", _packb(port),
                     packed_msg))


def encode_input_notification(port: int, packed_msg: bytes) -> bytes:
    """``nodeInput(port, msg)`` as a notification (protocol 2: no answer but a count)."""
    if 0 <= port < 16:
        return _NOTE_HEADS[port] + packed_msg
    return b"".join((_NOTE_HEAD, _packb(port), packed_msg))


def encode_event(source: str, peer_id: int, channel: int, name: str, value: Any) -> bytes:
    """The ``event`` notification (packed once, written to every node that wants it)."""
    return b"".join((_EVENT_HEAD, pack(source), pack(peer_id), pack(channel), pack(name),
                     pack(value)))
