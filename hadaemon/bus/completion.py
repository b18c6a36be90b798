"""A handler's outcome still to come, for hot paths that cannot afford a Deferred."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Completion:
    """A handler's outcome still to come, cheaper than a Deferred: one listener, told once.

    For hot paths (a service's action, one per message): the bus learns the result or the
    Failure in the very step that produced it, without a Deferred's callback machinery or
    a future's done-callback scheduled for a later loop iteration. A plain class, not an
    ABC, so that the bus's ``isinstance`` check stays cheap.
    """

    __slots__ = ()

    def when_done(self, callback: Callable[..., object], *args: Any) -> None:
        """Call ``callback(result or Failure, *args)`` once, when the outcome is known.

        Called by the bus as soon as the handler returned, before the outcome can exist.
        """
        raise NotImplementedError
