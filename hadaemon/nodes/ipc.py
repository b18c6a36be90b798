"""Homegear IPC on the node socket, without I/O: bytes in, typed calls out, and back.

The real client (``libhomegear-ipc``) wraps every call in an envelope on top of Homegear
binary RPC (:mod:`hadaemon.binrpc`, which frames and decodes the packets):

- its calls are requests whose parameters are ``[threadId, packetId, [arguments]]``
  (Integer64s: the calling thread and a per-process counter), answered with the Array
  ``[threadId, packetId, result]``, both ids echoed exactly; a fault is the result
  ``{faultCode, faultString}`` in a normal (0x01) response;
- the daemon's calls are requests with the parameters ``[packetId, [arguments]]`` (an
  Integer packet id, as Homegear sends it), answered with ``[packetId, result]``.

:class:`IpcReader` turns bytes, split anywhere, into one call per packet on a receiver::

    receiver.call(thread_id, packet_id, method, args)   # the node calls the daemon
    receiver.answer(packet_id, error, result)           # the node answers the daemon

A packet that is not binary RPC raises :class:`~hadaemon.binrpc.BinRpcError`, one that is
binary RPC but no IPC envelope :class:`IpcError`; each says what is wrong. The encoders
below make the daemon's side of the same envelopes.
"""

from __future__ import annotations

from typing import Any, Protocol

from hadaemon import binrpc
from hadaemon.nodes.faults import APPLICATION_ERROR, Fault

FAULT_KEYS = frozenset(("faultCode", "faultString"))
PACKET_ID_MAX = (1 << 31) - 1
"""The daemon's packet ids count 1 .. this, then start again."""


class IpcError(Exception):
    """A binary RPC packet that is not a Homegear IPC envelope."""


class IpcReceiver(Protocol):
    """What an :class:`IpcReader` calls, one call per packet."""

    def call(self, thread_id: int, packet_id: int, method: str, args: list[Any]) -> None: ...

    def answer(self, packet_id: int, error: Any, result: Any) -> None:
        """``error`` is the fault dict (then ``result`` is None), else None."""
        ...

    @property
    def closed(self) -> bool:
        """True once the receiver wants no more packets of this feed."""
        ...


def show(value: Any) -> str:
    """``repr(value)``, cut short for an error message."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class IpcReader:
    """The incoming half of the binary wire (see the module docstring).

    ``max_data`` bounds a packet's body, ``max_header`` its header block; both may change
    between feeds. The buffer grows with the bytes received, whatever size a packet
    declares. After an error the stream cannot be resynchronised: close it.
    """

    def __init__(self, max_data: int = binrpc.MAX_DATA) -> None:
        self._decoder = binrpc.Decoder(plain=True)
        self.limit(max_data)

    def limit(self, max_data: int) -> None:
        """At most ``max_data`` bytes of a packet from now on (its header block too)."""
        self._decoder.max_data = max_data
        self._decoder.max_header = min(binrpc.MAX_HEADER, max_data)

    @property
    def unfinished(self) -> int:
        """Bytes of an unfinished packet held."""
        return self._decoder.buffered

    def feed(self, data: bytes, receiver: IpcReceiver) -> None:
        """Hand every complete packet received so far to ``receiver`` until it is
        closed; raises :class:`~hadaemon.binrpc.BinRpcError` or :class:`IpcError`."""
        for packet in self._decoder.feed(data):
            if receiver.closed:  # a packet before closed it
                return
            if isinstance(packet, binrpc.Request):
                params = packet.params
                if (len(params) != 3 or type(params[0]) is not int
                        or type(params[1]) is not int or type(params[2]) is not list):
                    raise IpcError(
                        f"{show(packet.method)} is not a Homegear IPC call: its parameters "
                        f"must be [threadId, packetId, [arguments]], got {show(params)}")
                receiver.call(params[0], params[1], packet.method, params[2])
                continue
            value = packet.value
            if type(value) is not list or len(value) != 2 or type(value[0]) is not int:
                raise IpcError(f"an answer is the Array [packetId, result], got {show(value)}")
            result = value[1]
            if type(result) is dict and result.keys() == FAULT_KEYS:
                receiver.answer(value[0], result, None)
            else:
                receiver.answer(value[0], None, result)


def encode_answer(thread_id: int, packet_id: int, result: Any) -> bytes:
    """The answer ``[threadId, packetId, result]`` to one of the node's calls; a result
    the wire cannot carry becomes a fault saying so."""
    try:
        return binrpc.encode_response([thread_id, packet_id, result], lossy=True)
    except binrpc.BinRpcError as exc:
        fault = Fault(APPLICATION_ERROR,
                      f"the result cannot be sent on Homegear binary RPC: {exc}")
        return binrpc.encode_response([thread_id, packet_id, fault.as_dict()])


def encode_call(packet_id: int, method: str, args: bytes) -> bytes:
    """The daemon's call ``method`` with its encoded argument Array (an encoding shared
    by many packets, such as an event's, is made once)."""
    return binrpc.encode_request_encoded(
        method, [binrpc.encode_value(binrpc.Integer(packet_id)), args])


NO_ARGUMENTS = binrpc.encoded_array([])
