"""The bus's point-to-point message: made once by its sender, handed on as it is.

A :class:`BusMessage` is what every world gives the bus and what the bus queues: where
it goes (``address``, an :class:`Address` parsed once), what it carries (``payload``,
the sender's value itself: the bus never copies it), who sent it (``sender``, an
address an answer can be sent to, or None) and where the outcome goes (``reply``).
A node's output, a service's ``SubmitAction`` and a plugin's ``bus.send`` all become
one; a handler registered with ``typed=True`` receives it as it was handed on.

Copies are the sender's business, made with the value model (:func:`hadaemon.values.copy`)
and only where needed: the only destination of a value takes it as it is; each further
one gets a copy of its own (:meth:`BusMessage.copy_for`), so that no receiver can
change what another receives.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from hadaemon.bus.address import Address
from hadaemon.values import copy

Reply = Deferred[Any] | Callable[[object], object]
"""Where a message's outcome goes: a Deferred, or a callable given the result or Failure."""


class BusMessage:
    """One message on its way to ``address`` (see the module docstring).

    A plain class with slots: one is made per message on the hot paths (a node's
    output, a service's action), so it costs what the bus's queue entry cost before.
    """

    __slots__ = ("address", "payload", "reply", "sender")

    address: Address
    payload: Any
    sender: Address | None
    reply: Reply | None

    def __init__(
        self,
        address: Address,
        payload: Any,
        sender: Address | None = None,
        reply: Reply | None = None,
    ) -> None:
        self.address = address
        self.payload = payload
        self.sender = sender
        self.reply = reply

    def copy_for(self, address: Address, reply: Reply | None = None) -> BusMessage:
        """The same message to one more destination, with a payload of its own."""
        return BusMessage(address, copy(self.payload), self.sender,
                          self.reply if reply is None else reply)

    def __repr__(self) -> str:
        return (f"BusMessage(address={self.address!s}, payload={self.payload!r}, "
                f"sender={self.sender!s})")


def tell(reply: Reply | None, outcome: object) -> None:
    """Give ``outcome`` (a result or a Failure) to ``reply``, as the bus does."""
    if reply is None:
        return
    if callable(reply):  # not isinstance(reply, Deferred): an ABC, slow
        reply(outcome)
    elif isinstance(outcome, Failure):
        reply.errback(outcome)
    else:
        reply.callback(outcome)


def answer_address(sender: Address | None) -> str:
    """``sender`` as text to send an answer to: ``node:n1``, ``kind:id/path``; "bus" if
    unknown (the services' ``msg.source`` of a message from another world)."""
    if sender is None:
        return "bus"
    return sender.endpoint if not sender.path else str(sender)


__all__ = ["BusMessage", "Reply", "answer_address", "tell"]
