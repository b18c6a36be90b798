"""Shared by the core tests."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from typing import Any

from twisted.internet.defer import Deferred


def result_of(d: Deferred[Any]) -> Any:
    """What a Deferred that has already fired holds (its result, or its Failure)."""
    box: list[Any] = []
    d.addBoth(box.append)
    assert box, "Deferred has not fired"
    return box[0]


@contextlib.contextmanager
def sigint_handled() -> Iterator[None]:
    """SIGINT handled as the running daemon handles it (its handler never raises).

    Under pytest the main thread has Python's own handler, so a KeyboardInterrupt there
    may be a real Ctrl+C and hadaemon lets it through; in a running daemon it never is.
    """
    previous = signal.signal(signal.SIGINT, lambda signum, frame: None)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
