"""The bus's thread rule: one thread (the reactor's) uses it, and a wrong one is told so."""

from __future__ import annotations

import threading

from hadaemon.bus.errors import WrongThread


class ReactorThreadOnly:
    """Base of the bus's halves: remembers the thread they may be used from.

    The hot paths compare ``threading.get_ident()`` with ``_thread`` inline and call
    :meth:`_check_thread` only to raise; other methods call it directly.
    """

    def __init__(self) -> None:
        self._thread = threading.get_ident()

    def bind_thread(self) -> None:
        """Make the calling thread the bus's thread (the daemon calls it in the reactor)."""
        self._thread = threading.get_ident()

    def _check_thread(self, what: str) -> None:
        if threading.get_ident() != self._thread:
            raise WrongThread(
                f"Bus.{what} called from thread {threading.current_thread().name!r}: the "
                "bus is used on the reactor thread only; from other threads go through "
                "the embedding bridge (handle.call / reactor.callFromThread)"
            )
