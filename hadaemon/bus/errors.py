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


class EndpointExists(BusError):
    """Two registrations for one endpoint: ids must be unique within a kind."""


class WrongThread(RuntimeError):
    """The bus was used from a thread other than the reactor thread (a programming error,
    raised at once, never turned into a failed Deferred)."""
