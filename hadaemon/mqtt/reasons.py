"""Why a connection failed or went away, in words a user can act on (no I/O).

paho reports every lost socket as the reason code "Unspecified error"; the cause is
in what the socket saw (end of stream, a reset, a TLS alert), in a DISCONNECT the broker
sent (MQTT 5: "Session taken over", "Server shutting down"), or in paho's keepalive
check. The transport notes those and asks :func:`describe_loss` for the text the
``disconnected`` log line and the ``Lifecycle`` event carry.
"""

from __future__ import annotations

import socket
import ssl
from typing import Any

# MQTT 5 DISCONNECT reason codes a broker sends, by paho's names.
_FROM_BROKER = {
    "Normal disconnection": "the broker closed the connection",
    "Server shutting down": "the broker is shutting down",
    "Session taken over": "session taken over: another client connected with our client id",
    "Keep alive timeout": "the broker heard nothing from us within 1.5 keepalives",
    "Not authorized": "not authorised (the broker's access rules changed?)",
    "Server busy": "the broker is busy",
    "Administrative action": "disconnected by the broker's administrator",
    "Message rate too high": "we published faster than the broker allows",
    "Quota exceeded": "a broker quota was exceeded",
    "Packet too large": "we sent a packet larger than the broker accepts",
    "Topic Name invalid": "we published to a topic the broker rejects",
    "Protocol error": "the broker saw a protocol error from us",
    "Malformed packet": "the broker could not read a packet we sent",
}


def describe_error(exc: BaseException) -> str:
    """A short, useful reason for a socket or TLS error (connecting or connected)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted: {exc.verify_message or exc}"
    if isinstance(exc, ssl.SSLZeroReturnError | ssl.SSLEOFError):
        return "the broker closed the TLS connection"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {getattr(exc, 'reason', None) or exc}"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset by the broker"
    if isinstance(exc, BrokenPipeError):
        return "connection closed by the broker (broken pipe)"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the host name ({exc.strerror})"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return f"{type(exc).__name__}: {exc}"


def describe_loss(code: Any, *, from_broker: bool, error: BaseException | None, eof: bool,
                  keepalive: float) -> str:
    """Why an established connection ended; ``code`` is paho's reason code (or its name)."""
    name = code.getName() if hasattr(code, "getName") else str(code)
    if from_broker:
        return f"the broker disconnected us: {_FROM_BROKER.get(name, name)}"
    if name == "Keep alive timeout":
        return f"keepalive timeout: no answer from the broker within {keepalive:g} s"
    if error is not None:
        return describe_error(error)
    if eof:
        return "connection closed by the broker"
    if name == "Protocol error":
        return "protocol error: the broker sent something that is not MQTT"
    return f"connection lost ({name})"


__all__ = ["describe_error", "describe_loss"]
