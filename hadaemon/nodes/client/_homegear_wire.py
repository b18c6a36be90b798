"""hadaemon's node wire without I/O: a decoded msgpack-rpc message in, one typed call out.

Shared by both ends: the node client (``_homegear_rpc``) and the daemon
(``hadaemon.nodes.wire``, whose reader also bounds what a peer may send). The three
shapes of the msgpack-rpc spec::

    request       [0, msgid, method, params]     msgid: u32, method: non-empty str,
                                                 params: array
    response      [1, msgid, error, result]      error: nil or {faultCode, faultString}
    notification  [2, method, params]            method: str, params: array

:func:`dispatch` checks a message's shape and calls the receiver's method for it::

    receiver.request(msgid, method, params)
    receiver.response(msgid, error, result)
    receiver.notification(method, params)

What is no msgpack-rpc raises :class:`WireError`, whose text names the problem (and
whose ``msgid`` is set when the sender can still be answered). What the methods mean is
the receiver's business: this module knows shapes, not methods.

Python 3.7+, standard library only (a node imports it).
"""

from __future__ import annotations

REQUEST, RESPONSE, NOTIFICATION = 0, 1, 2
MSGID_MAX = (1 << 32) - 1

TYPE_CHECKING = False  # typing is not imported at run time (a node's memory)
if TYPE_CHECKING:
    from typing import Any


class WireError(ValueError):
    """A message that is not msgpack-rpc; ``msgid`` is set when an answer is possible."""

    def __init__(self, message: str, msgid: int | None = None) -> None:
        super().__init__(message)
        self.msgid = msgid


def dispatch(message: Any, receiver: Any) -> None:
    """Call ``receiver``'s method for ``message`` (a decoded msgpack object), or raise
    :class:`WireError` (see the module docstring)."""
    # Every message of a busy node is a notification or a request of the right shape:
    # those go straight through, anything else is looked at closely below.
    if type(message) is list:
        size = len(message)
        if size == 3:
            kind, method, params = message
            if kind == NOTIFICATION and type(kind) is int and type(method) is str \
                    and type(params) is list:
                receiver.notification(method, params)
                return
        elif size == 4:
            kind, msgid, third, fourth = message
            if type(kind) is int and type(msgid) is int and 0 <= msgid <= MSGID_MAX:
                if kind == RESPONSE:
                    receiver.response(msgid, third, fourth)
                    return
                if kind == REQUEST and type(third) is str and third \
                        and type(fourth) is list:
                    receiver.request(msgid, third, fourth)
                    return
    raise _problem(message)


def _problem(obj: Any) -> WireError:
    """What is wrong with ``obj``, which :func:`dispatch` did not take."""
    if type(obj) is not list or not obj:
        return WireError(f"a message is a non-empty array [type, ...], got {type(obj).__name__}")
    kind = obj[0]
    if kind == REQUEST and type(kind) is int:
        if len(obj) != 4:
            return WireError(f"a request has 4 elements, got {len(obj)}")
        msgid = obj[1]
        if type(msgid) is not int or not 0 <= msgid <= MSGID_MAX:
            return _bad_msgid(msgid)
        method, params = obj[2], obj[3]
        if type(method) is not str or not method:
            return WireError(f"method must be a non-empty string, got {show(method)}", msgid)
        return WireError(
            f"params of {method} must be an array, got {type(params).__name__}", msgid
        )
    if kind == RESPONSE and type(kind) is int:
        if len(obj) != 4:
            return WireError(f"a response has 4 elements, got {len(obj)}")
        return _bad_msgid(obj[1])
    if kind == NOTIFICATION and type(kind) is int:
        if len(obj) != 3:
            return WireError(f"a notification has 3 elements, got {len(obj)}")
        return WireError("a notification is [2, method: str, params: array]")
    return WireError(
        f"unknown message type {show(kind)} (0 request, 1 response, 2 notification)"
    )


def _bad_msgid(value: Any) -> WireError:
    return WireError(f"msgid must be an unsigned 32-bit int, got {show(value)}")


def show(value: Any) -> str:
    """``repr(value)``, cut short for an error message."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
