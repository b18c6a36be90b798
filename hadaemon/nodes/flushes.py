"""Node connections with data to send, written together once per read or reactor turn."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hadaemon.soon import call_soon_of

if TYPE_CHECKING:
    from hadaemon.nodes.connection import NodeConnection


class Flushes:
    """What the connections of one socket queued goes out at the end of the read that
    produced it (:meth:`read_done`), else at the next reactor turn: one write per
    connection for all its messages of that read or turn.

    The dispatcher is one (it adds the bus to :meth:`read_done`); so are the
    dispatchers that the protocols' unit tests stand in with.
    """

    def __init__(self) -> None:
        self.unflushed: dict[NodeConnection, None] = {}
        self._flush_scheduled = False

    def flush_soon(self, connection: NodeConnection) -> None:
        """``connection`` has data to send: it goes out at the end of the current read
        (:meth:`read_done`) or at the next reactor turn, one call of the reactor's
        cheapest kind for every connection (``callLater(0)`` per connection, and its
        cancel, cost the daemon ~6 us a message on the asyncio reactor)."""
        self.unflushed[connection] = None
        if not self._flush_scheduled:
            self._flush_scheduled = True
            call_soon_of(connection.reactor)(self._flush_turn)

    def _flush_turn(self) -> None:
        self._flush_scheduled = False
        self.flush_all()

    def read_done(self) -> None:
        """The end of a read from a node: what it gave nodes goes out now."""
        self.flush_all()

    def flush_all(self) -> None:
        """Write what every connection queued (their data of this turn, one write each)."""
        unflushed = self.unflushed
        if unflushed:
            self.unflushed = {}
            for connection in unflushed:
                connection.flush_turn()
