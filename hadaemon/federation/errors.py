"""What a request to another host can fail with, and why a message was refused.

``HostOffline`` (a :class:`hadaemon.bus.DestinationGone`) is the bus's own: a send to an
offline host fails with it whichever way it was made.
"""

from __future__ import annotations

from typing import Any

from hadaemon.bus import HostOffline


class FederationError(Exception):
    """Base of the federation's own errors."""


class RemoteTimeout(FederationError, TimeoutError):
    """The host did not answer a request in time (it may still apply it)."""

    fault_code = -1

    def __init__(self, host: str, kind: str, seconds: float) -> None:
        super().__init__(f"host {host!r} did not answer the {kind} request within {seconds:g} s")
        self.host = host
        self.kind = kind
        self.seconds = seconds


class RemoteError(FederationError):
    """The host's handler failed: its error's class name, message and Homegear fault code
    (``fault_code``: what a node's RPC call sees, as for a local error)."""

    def __init__(self, host: str, type_name: str, message: str, code: int | None) -> None:
        super().__init__(f"{host}: {type_name}: {message}")
        self.host = host
        self.type = type_name
        self.message = message
        self.code = code
        self.fault_code = code if code is not None else -1


class PayloadTooLarge(FederationError, ValueError):
    """A message beyond ``[federation].max_payload``: refused before it is sent."""

    def __init__(self, what: str, size: int, limit: int) -> None:
        super().__init__(f"{what} is {size} bytes, more than [federation].max_payload "
                         f"({limit})")
        self.size = size
        self.limit = limit


class Refused(FederationError):
    """A received message that is dropped (with a warning naming it): malformed, too
    large, of an unknown version, or claiming a host other than its topic's."""

    def __init__(self, topic: str, reason: str, claimed: Any = None) -> None:
        super().__init__(f"{topic}: {reason}")
        self.topic = topic
        self.reason = reason
        self.claimed = claimed


__all__ = ["FederationError", "HostOffline", "PayloadTooLarge", "Refused", "RemoteError",
           "RemoteTimeout"]
