"""A real daemon with the history plugin, and a device the test reports values to."""

from __future__ import annotations

import pathlib
from collections.abc import Awaitable, Callable
from typing import Any

from hadaemon.app import prepare
from hadaemon.bus import ErrorEvent, Event
from hadaemon.config import Config
from hadaemon.daemon import Daemon
from hadaemon.history import HistoryPlugin
from hadaemon.registry import Access, ChannelSpec, Device, ValueType, VariableSpec
from hadaemon.testing import run_in_reactor

METER = [
    ChannelSpec(0, [
        VariableSpec("power", ValueType.FLOAT, Access.READ, unit="W"),
        VariableSpec("count", ValueType.INT, Access.READ),
        VariableSpec("state", ValueType.BOOL, Access.READ),
        VariableSpec("mode", ValueType.ENUM, Access.READ, values=("eco", "boost")),
        VariableSpec("label", ValueType.STRING, Access.READ),
        VariableSpec("blob", ValueType.ANY, Access.READ),
        VariableSpec("linkquality", ValueType.INT, Access.READ),
    ]),
]


def config(tmp_path: pathlib.Path, history: dict[str, Any] | None = None,
           plugins: tuple[str, ...] = ("history",), **sections: Any) -> Config:
    data: dict[str, Any] = {
        "daemon": {"state_dir": str(tmp_path / "var"), "plugins": list(plugins),
                   "plugin_dirs": []},
        # Tests report at fixed past times: nothing is purged unless a test asks.
        "history": {"keep_days": 36500.0, **(history or {})},
        **sections,
    }
    prepared = prepare(data, base_dir=tmp_path, environ={}, strict=False)
    prepared.raise_for_errors()
    return prepared.config


Scenario = Callable[[Daemon, HistoryPlugin, Any], Awaitable[Any]]


def run(cfg: Config, scenario: Scenario, *, events: list[Event] | None = None,
        timeout: float = 60.0) -> Any:
    """Start a daemon, run ``scenario(daemon, history, reactor)``, stop the daemon."""

    async def main(reactor: Any) -> Any:
        daemon = Daemon(cfg, reactor)
        if events is not None:
            daemon.bus.subscribe("error/#", events.append)
        daemon.startService()
        try:
            await daemon.started
            plugin: Any = daemon.plugin("history")
            assert isinstance(plugin, HistoryPlugin)
            return await scenario(daemon, plugin, reactor)
        finally:
            await daemon.stopService()

    return run_in_reactor(main, timeout=timeout)


def add_meter(daemon: Daemon, source: str = "test", key: str = "meter") -> Device:
    return daemon.registry.add_device(source, key, f"{source} {key}", METER, None)


def errors_of(events: list[Event]) -> list[str]:
    return [e.message for e in events if isinstance(e, ErrorEvent)]


def count_up(daemon: Daemon, meter: Device, first: int, stop: int, t0: float) -> None:
    """Report ``count`` = first .. stop - 1, one a second from ``t0 + first``."""
    for i in range(first, stop):
        daemon.registry.report(meter.peer_id, 0, "count", i, timestamp=t0 + i)
