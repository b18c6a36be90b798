"""Shared by the core tests."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred


def result_of(d: Deferred[Any]) -> Any:
    """What a Deferred that has already fired holds (its result, or its Failure)."""
    box: list[Any] = []
    d.addBoth(box.append)
    assert box, "Deferred has not fired"
    return box[0]
