"""Node tests: real node processes on real Unix sockets, in fresh reactors."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.nodes.helpers import kill_leftovers


@pytest.fixture(autouse=True)
def no_leftover_nodes() -> Iterator[None]:
    """A test that fails half-way must not leave node processes behind."""
    yield
    leftovers = kill_leftovers()
    assert not leftovers, f"node process groups left running: {leftovers}"
