"""Errors a sender of a bus message can tell apart."""

from __future__ import annotations


class BusError(Exception):
    """Base of the bus's own errors."""


class UnknownDestination(BusError):
    """Nothing is registered at the address's endpoint."""

    def __init__(self, address: str) -> None:
        super().__init__(f"no destination registered for {address}")
        self.address = address


class QueueFull(BusError):
    """The destination's bounded queue is full: the sender should slow down or drop."""

    def __init__(self, address: str, size: int) -> None:
        super().__init__(f"queue of {address} is full ({size} messages waiting)")
        self.address = address
        self.size = size


class DestinationGone(BusError):
    """The destination unregistered while the message was still queued."""

    def __init__(self, address: str) -> None:
        super().__init__(f"{address} was unregistered before the message was delivered")
        self.address = address


class HostOffline(DestinationGone):
    """The host a message is for (a host of the federated site) is offline or unknown: a
    send fails at once rather than wait for a host that may never come
    (docs/federation.md)."""

    def __init__(self, host: str, detail: str = "", *, address: str = "") -> None:
        BusError.__init__(self, f"host {host!r} is offline" + (f": {detail}" if detail else ""))
        self.host = host
        self.address = address


class AmbiguousDestination(UnknownDestination):
    """An id without ``@host`` that several hosts of the site have: name the host."""

    def __init__(self, address: str, hosts: list[str]) -> None:
        BusError.__init__(self, f"{address} is on several hosts ({', '.join(hosts)}): "
                          "name one, as <kind>:<id>@<host>/<path>")
        self.address = address
        self.hosts = hosts


class EndpointExists(BusError):
    """Two registrations for one endpoint: ids must be unique within a kind."""


class WrongThread(RuntimeError):
    """The bus was used from a thread other than the reactor thread (a programming error,
    raised at once, never turned into a failed Deferred)."""
