"""The queue message services exchange: the original agent's ``queue_message.QueueMessage``.

Service files import it as ``from queue_message import QueueMessage`` (see
:mod:`hadaemon.services.loading`). ``message`` is a tuple, one element in practice
(``msg.message[0]`` is the payload), because handlers written for the original read it so.

It is also the bus message itself (a :class:`hadaemon.bus.BusMessage`): the router fills
in ``address``, ``sender`` and ``reply`` and hands it to the bus as it is, and the
receiving service's handler gets that very object. A message from another world (a
node's output, a plugin's ``bus.send``) is made into one on arrival, with its sender's
address as ``source`` (``"node:n1"``: ``SubmitAction(msg.source, "0", ...)`` answers it).
"""

from __future__ import annotations

from typing import Any

from hadaemon.bus import SERVICE, BusMessage, answer_address


class QueueMessage(BusMessage):
    """A message from ``source`` to ``destination``'s method ``action``; plain data.

    ``payload`` is ``message[0]`` (None for an empty message): the one value a handler
    reads, and what the bus hands to a destination in another world.
    """

    __slots__ = ("action", "destination", "message", "source")

    def __init__(self, source: str, destination: str, action: str, *message: Any) -> None:
        self.source = source
        self.destination = destination
        self.action = action
        self.message: tuple[Any, ...] = message
        self.payload = message[0] if message else None
        # ``address`` and ``sender`` are set when it is routed; ``reply`` too, which
        # tells the router that it went once (a message sent again is copied first).
        self.reply = None

    @classmethod
    def arrived(cls, message: BusMessage, service_id: str, action: str) -> QueueMessage:
        """A message from another world as the receiving service's handler sees it."""
        sender = message.sender
        source = sender.id if sender is not None and sender.kind == SERVICE and \
            not sender.path else answer_address(sender)
        qm = cls(source, service_id, action, message.payload)
        qm.address = message.address
        qm.sender = sender
        return qm

    def __repr__(self) -> str:
        return (
            f"QueueMessage(source={self.source!r}, destination={self.destination!r}, "
            f"action={self.action!r}, message={self.message!r})"
        )


__all__ = ["QueueMessage"]
