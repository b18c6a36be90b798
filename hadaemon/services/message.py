"""The queue message services exchange: the original agent's ``queue_message.QueueMessage``.

Service files import it as ``from queue_message import QueueMessage`` (see
:mod:`hadaemon.services.loading`). ``message`` is a tuple, one element in practice
(``msg.message[0]`` is the payload), because handlers written for the original read it so.
"""

from __future__ import annotations

from typing import Any


class QueueMessage:
    """A message from ``source`` to ``destination``'s method ``action``; plain data."""

    __slots__ = ("action", "destination", "message", "source")

    def __init__(self, source: str, destination: str, action: str, *message: Any) -> None:
        self.source = source
        self.destination = destination
        self.action = action
        self.message: tuple[Any, ...] = message

    @property
    def payload(self) -> Any:
        """``message[0]`` (None for an empty message): the one value a handler reads."""
        return self.message[0] if self.message else None

    def __repr__(self) -> str:
        return (
            f"QueueMessage(source={self.source!r}, destination={self.destination!r}, "
            f"action={self.action!r}, message={self.message!r})"
        )


__all__ = ["QueueMessage"]
