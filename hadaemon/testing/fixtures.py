"""pytest plugin: child processes and real MQTT brokers that are always cleaned up.

Enable with ``pytest_plugins = ["hadaemon.testing.fixtures"]`` in the top conftest.
When a test fails, the logs of the brokers it used are added to its report.
"""

from __future__ import annotations

import itertools
import signal
from collections.abc import Generator, Iterator, Sequence
from pathlib import Path
from typing import TypedDict, Unpack

import pytest

from hadaemon.testing.broker import Broker, BrokerUnsupported
from hadaemon.testing.processes import ChildProcesses

__all__ = [
    "BrokerFactory",
    "BrokerOptions",
    "broker",
    "broker_factory",
    "processes",
    "shared_broker",
]


def pytest_configure(config: pytest.Config) -> None:
    """Let children get Ctrl+C: a shell starts a background job (``pytest ... &``,
    ``nohup``) with SIGINT ignored, and children inherit an ignored signal, so a test
    that stops its program with SIGINT would wait for nothing. A handled signal is reset
    to its default in a child, which then handles it as usual."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


class BrokerOptions(TypedDict, total=False):
    """Keyword arguments of :class:`Broker`, for ``broker_factory``."""

    port: int | None
    username: str | None
    password: str | None
    tls: bool
    require_client_cert: bool
    impl: str | None
    workdir: Path | None
    extra_config: Sequence[str]


def _make_broker(options: BrokerOptions) -> Broker:
    """A Broker, or a skip when the implementation cannot do what the test asks."""
    try:
        return Broker(**options)
    except BrokerUnsupported as exc:
        pytest.skip(str(exc))


class BrokerFactory:
    """Makes brokers for one test and stops them all at its teardown."""

    def __init__(self, base: Path) -> None:
        self._base = base
        self._counter = itertools.count(1)
        self.brokers: list[Broker] = []

    def __call__(self, *, start: bool = True, **options: Unpack[BrokerOptions]) -> Broker:
        """A new broker (started unless ``start=False``); skips if the impl can't do it."""
        if options.get("workdir") is None:
            options["workdir"] = self._base / f"broker-{next(self._counter)}"
        made = _make_broker(options)
        self.brokers.append(made)
        if start:
            made.start()
        return made

    def close(self) -> None:
        """Stop every broker made, even if one of them fails to stop."""
        errors: list[BaseException] = []
        for made in self.brokers:
            try:
                made.close()
            except Exception as exc:  # keep stopping the others
                errors.append(exc)
        if errors:
            raise errors[0]


@pytest.fixture
def processes() -> Iterator[ChildProcesses]:
    """A ChildProcesses whose children are all ended at teardown, pass or fail."""
    children = ChildProcesses()
    try:
        yield children
    finally:
        children.cleanup()


@pytest.fixture
def broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Broker]:
    """A fresh, started broker of the default impl, for tests that kill or reconfigure it.

    Parametrize it indirectly to pick the implementation:
    ``@pytest.mark.parametrize("broker", ["amqtt"], indirect=True)``.
    """
    impl: str | None = getattr(request, "param", None)
    made = _make_broker({"impl": impl, "workdir": tmp_path / "broker"})
    try:
        made.start()
        yield made
    finally:
        made.close()


@pytest.fixture(scope="session")
def shared_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """One broker for the whole session: only publish/subscribe, under a unique topic prefix."""
    made = _make_broker({"workdir": tmp_path_factory.mktemp("shared-broker")})
    try:
        made.start()
        yield made
    finally:
        made.close()


@pytest.fixture
def broker_factory(tmp_path: Path) -> Iterator[BrokerFactory]:
    """``broker_factory(username=..., tls=..., impl=...) -> Broker``; all stopped at teardown."""
    factory = BrokerFactory(tmp_path)
    try:
        yield factory
    finally:
        factory.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach the logs of the brokers a failed test used: the first thing one looks at."""
    report: pytest.TestReport = yield
    if report.when == "call" and report.failed:
        brokers: list[Broker] = []
        for value in getattr(item, "funcargs", {}).values():
            if isinstance(value, Broker):
                brokers.append(value)
            elif isinstance(value, BrokerFactory):
                brokers.extend(value.brokers)
        for made in dict.fromkeys(brokers):
            report.sections.append((f"{made.impl} log ({made.url})", made.log_tail(200)))
    return report
