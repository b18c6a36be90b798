"""The msgpack wire's flow control, without I/O: the credits a node gets back.

A node spends a credit on every call it sends without awaiting an answer (``nodeOutput``,
``nodeLog``...) and waits when it has none left (it starts with
:data:`~hadaemon.nodes.dispatcher.CREDITS`). The daemon gives the credit back once it
handled the call, later when the call is held (a full destination,
:mod:`hadaemon.nodes.delivery`): so a fast sender is slowed down to what its
destinations take, never buffered without end. Credits owed go to the node in one
``credit(count)`` notification with whatever else is sent to it, or on their own once
:attr:`Credits.batch` are owed.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.defer import Deferred

from hadaemon.nodes.wire import encode_notification


class Credits:
    """One connection's credits owed to its node (reactor thread only)."""

    __slots__ = ("_held", "batch", "due")

    def __init__(self) -> None:
        self.due = 0
        """Credits earned and not sent yet."""
        self.batch = 1
        """Credits owed that are worth a message of their own."""
        self._held: dict[Deferred[None], int] = {}  # calls held, by what they wait for

    @property
    def held(self) -> int:
        """Calls held now (their credits come back when their destinations have room)."""
        return sum(self._held.values())

    def earn(self, count: int) -> bool:
        """``count`` calls were handled: True when what is owed should go now."""
        self.due += count
        return self.due >= self.batch

    def hold(self, held: Deferred[None], grant: Callable[[int], None]) -> None:
        """A call waits for ``held`` (a destination's room): its credit comes back then,
        by ``grant(count)`` for all the calls that waited for the same."""
        count = self._held.get(held)
        if count is None:
            self._held[held] = 1
            held.addCallback(self._release, held, grant)
        else:
            self._held[held] = count + 1

    def _release(self, _: object, held: Deferred[None], grant: Callable[[int], None]) -> None:
        grant(self._held.pop(held, 0))

    def message(self, with_other_data: bool) -> bytes | None:
        """The ``credit`` notification to send now, if any: when a batch is owed, or
        any credit when other data goes to the node anyway."""
        due = self.due
        if due >= self.batch or (due and with_other_data):
            self.due = 0
            return encode_notification("credit", [due])
        return None
