"""Fixtures for the store tests: a fake clock and run_in_thread doubles the test drives."""

from __future__ import annotations

import pathlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock
from twisted.logger import LogEvent, Logger

from hadaemon.store import Store


class SyncRunner:
    """run_in_thread that runs the function at once (a thread that is never late)."""

    def __init__(self) -> None:
        self.calls = 0
        self.running = False

    def __call__(self, f: Callable[[], Any]) -> Deferred[Any]:
        self.calls += 1
        self.running = True
        try:
            return succeed(f())
        except BaseException:
            return fail()
        finally:
            self.running = False


class QueuedRunner:
    """run_in_thread whose jobs wait until the test runs them, so a test can interleave
    reactor-thread work (puts, sync calls) with what a thread would be doing."""

    def __init__(self) -> None:
        self.jobs: list[tuple[Callable[[], Any], Deferred[Any]]] = []
        self.calls = 0

    def __call__(self, f: Callable[[], Any]) -> Deferred[Any]:
        self.calls += 1
        d: Deferred[Any] = Deferred()
        self.jobs.append((f, d))
        return d

    def run_next(self, index: int = 0) -> None:
        """Run one job; ``index`` -1 lets the newest finish first, as threads may."""
        f, d = self.jobs.pop(index)
        try:
            result = f()
        except BaseException:
            d.errback()
        else:
            d.callback(result)

    def run_all(self) -> None:
        while self.jobs:
            self.run_next()


class StoreFactory:
    """Makes stores on a Clock; the test's stores are closed at teardown (file locks)."""

    def __init__(self, tmp_path: pathlib.Path) -> None:
        self.tmp_path = tmp_path
        self.clock = Clock()
        self.runner = SyncRunner()
        self.events: list[LogEvent] = []
        self.stores: list[Store] = []

    def __call__(self, name: str = "state.db", *, open: bool = True, **kw: Any) -> Store:
        kw.setdefault("reactor", self.clock)
        kw.setdefault("run_in_thread", self.runner)
        kw.setdefault("log", Logger(namespace="test.store", observer=self.events.append))
        store = Store(self.tmp_path / name, **kw)
        self.stores.append(store)
        if open:
            store.open()
        return store

    def reopen(self, store: Store, **kw: Any) -> Store:
        """Close ``store`` and open a new one on the same file (as after a restart)."""
        self.close(store)
        kw.setdefault("secret", store.secret)
        return self(store.path.name, **kw)

    @staticmethod
    def close(store: Store) -> None:
        """stopService, which completes at once with a synchronous runner."""
        results: list[object] = []
        store.stopService().addBoth(results.append)
        assert results == [None], results


@pytest.fixture
def stores(tmp_path: pathlib.Path) -> Iterator[StoreFactory]:
    factory = StoreFactory(tmp_path)
    yield factory
    for store in factory.stores:
        if repr(store).endswith("open>"):
            store.stopService().addErrback(lambda _: None)
            if repr(store).endswith("open>"):  # a queued runner never ran its jobs
                store._close_fd()


@pytest.fixture
def queued() -> QueuedRunner:
    return QueuedRunner()
