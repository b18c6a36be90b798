"""The daemon's lifecycle in a fresh reactor: start order, "started", stop budget."""

from __future__ import annotations

import asyncio
import pathlib
import re
import textwrap
from typing import Any

from twisted.internet.task import deferLater

from hadaemon.app import prepare
from hadaemon.bus import ErrorEvent, Event, Lifecycle
from hadaemon.config import Config
from hadaemon.daemon import Daemon
from hadaemon.testing.logs import capture_logs
from hadaemon.testing.reactors import run_in_reactor
from hadaemon.testing.waiting import wait_until

PLUGINS = '''
import asyncio, sys
from twisted.internet.defer import Deferred
from hadaemon.config import Section, Str, Float
from hadaemon.plugin import Plugin

def record(plugin, what):
    with open(plugin.config["record"], "a") as f:
        f.write(f"{what} {plugin.name}\\n")

SCHEMA = Section({"record": Str(), "delay": Float(default=0.0)})

class Quick(Plugin):
    name = "quick"
    schema = SCHEMA
    def start(self): record(self, "start")
    def stop(self): record(self, "stop")

class SlowStart(Plugin):
    name = "slowstart"
    schema = SCHEMA
    async def start(self):
        await asyncio.sleep(self.config["delay"])
        record(self, "start")
    async def stop(self):
        await asyncio.sleep(0.01)
        record(self, "stop")

class FailsStart(Plugin):
    name = "failsstart"
    schema = SCHEMA
    def start(self): raise RuntimeError("cannot start, on purpose")
    def stop(self): record(self, "stop")

class ExitsStart(Plugin):
    name = "exitsstart"
    schema = SCHEMA
    def start(self): sys.exit(5)

class HangsStop(Plugin):
    name = "hangsstop"
    schema = SCHEMA
    stop_timeout = 0.3
    def start(self): record(self, "start")
    def stop(self): return Deferred()  # never fires

class HangsLong(Plugin):
    name = "hangslong"
    schema = SCHEMA
    stop_timeout = 60.0  # more than any budget below leaves it
    def start(self): record(self, "start")
    def stop(self): return Deferred()  # never fires

class FailsStop(Plugin):
    name = "failsstop"
    schema = SCHEMA
    def start(self): record(self, "start")
    async def stop(self): raise ValueError("cannot stop, on purpose")
'''


def load(sections: dict[str, Any], tmp_path: pathlib.Path) -> Config:
    prepared = prepare(sections, base_dir=tmp_path, environ={}, strict=False)
    prepared.raise_for_errors()
    return prepared.config


def make_config(tmp_path: pathlib.Path, plugins: list[str], stop_timeout: float = 10.0) -> Config:
    pdir = tmp_path / "plugins"
    pdir.mkdir(exist_ok=True)
    (pdir / "testplugins.py").write_text(textwrap.dedent(PLUGINS))
    (pdir / "broken.py").write_text("raise ImportError('missing dependency, on purpose')\n")
    record = str(tmp_path / "record.txt")
    sections: dict[str, Any] = {
        "daemon": {
            "state_dir": str(tmp_path / "var"),
            "plugin_dirs": [str(pdir)],
            "plugins": plugins,
            "stop_timeout": stop_timeout,
        },
        "watchdog": {"threshold": 2.0},
    }
    for name in ["quick", "slowstart", "failsstart", "exitsstart", "hangsstop", "hangslong",
                 "failsstop"]:
        if name in plugins:
            sections[name] = {"record": record, "delay": 0.2}
    return load(sections, tmp_path)


def records(tmp_path: pathlib.Path) -> list[str]:
    path = tmp_path / "record.txt"
    return path.read_text().splitlines() if path.exists() else []


def test_start_and_stop_order_with_misbehaving_plugins(tmp_path: pathlib.Path) -> None:
    order = ["quick", "slowstart", "failsstart", "broken", "exitsstart", "hangsstop",
             "failsstop", "nosuchplugin"]
    config = make_config(tmp_path, order)
    events: list[Event] = []

    async def scenario(reactor: Any) -> Daemon:
        daemon = Daemon(config, reactor)
        daemon.bus.subscribe("lifecycle/#", events.append)
        daemon.bus.subscribe("error/#", events.append)
        daemon.startService()
        await daemon.started
        # "started" came only after the asynchronous start had settled
        assert records(tmp_path)[-1] == "start slowstart"
        daemon.store.put("flushed", True)
        await daemon.stopService()
        return daemon

    with capture_logs() as logs:
        daemon = run_in_reactor(scenario, timeout=20)
    assert records(tmp_path) == [
        "start quick",
        "start hangsstop",
        "start failsstop",
        "start slowstart",
        "stop failsstart",  # its start failed, but it still gets stopped
        "stop slowstart",
        "stop quick",
    ]
    assert set(daemon.failed) == {"failsstart", "broken", "exitsstart", "nosuchplugin"}
    assert "cannot start, on purpose" in daemon.failed["failsstart"]
    assert "sys.exit(5)" in daemon.failed["exitsstart"]
    assert "missing dependency" in daemon.failed["broken"]
    assert "available:" in daemon.failed["nosuchplugin"]
    lifecycle = [e.state for e in events if isinstance(e, Lifecycle)]
    assert lifecycle == ["started", "stopping", "stopped"]
    started = next(e for e in events if isinstance(e, Lifecycle))
    assert started.details["plugins"] == ["quick", "slowstart", "hangsstop", "failsstop"]
    errors = [e.source for e in events if isinstance(e, ErrorEvent)]
    assert {"plugin:failsstart", "plugin:broken", "plugin:exitsstart"} <= set(errors)
    text = logs.text()
    assert "plugin hangsstop did not stop within 0.3s" in text  # its own timeout only
    assert "cannot stop, on purpose" in text and "failsstop" in text
    assert "Traceback" in text  # the failing start is logged with its traceback


def test_stop_budget_bounds_many_hanging_plugins(tmp_path: pathlib.Path) -> None:
    config = make_config(tmp_path, ["quick", "hangsstop", "hangslong"], stop_timeout=1.5)

    async def scenario(reactor: Any) -> None:
        daemon = Daemon(config, reactor)
        daemon.startService()
        await daemon.started
        await daemon.stopService()

    with capture_logs() as logs:
        run_in_reactor(scenario, timeout=30)
    # each hanging plugin got what was left of the budget (less the reserve for the
    # stores), not its own longer limit: the limits, not a stopwatch, show it
    limits = dict(re.findall(r"plugin (\w+) did not stop within ([\d.]+)s", logs.text()))
    assert set(limits) == {"hangslong", "hangsstop"}, logs.text()
    assert float(limits["hangslong"]) <= 0.5  # budget 1.5 less the 1.0 reserve, not 60
    assert float(limits["hangsstop"]) <= 0.1 + 1e-9  # nothing left: the 0.1 floor
    assert records(tmp_path)[-1] == "stop quick"


def test_state_survives_restart_and_builtin_plugins_run(tmp_path: pathlib.Path) -> None:
    sections = {
        "daemon": {"state_dir": str(tmp_path / "var"), "plugins": ["demo", "heartbeat",
                                                                   "changelog"]},
        "heartbeat": {"interval": 0.1},
        "demo": {"interval": 0.05, "latency": 0.01},
    }
    config = load(sections, tmp_path)

    async def first(reactor: Any) -> tuple[int, list[str]]:
        daemon = Daemon(config, reactor)
        daemon.startService()
        await daemon.started
        # (logs: the capture around run_in_reactor below)
        await wait_until(reactor, lambda: (daemon.registry.get_system_variable("heartbeat")
                                           or 0) >= 3
                         and "Demo thermometer [1/0] temperature =" in logs.text()
                         and "Demo lamp [2/0] state =" in logs.text(),
                         timeout=30, what="three heartbeats and the demo's changes")
        beats = daemon.registry.get_system_variable("heartbeat")
        names = [d.name for d in daemon.registry.devices()]
        daemon.registry.set_system_variable("kept", {"a": [1, 2.5, None]})
        await daemon.stopService()
        return beats, names

    with capture_logs() as logs:
        beats, names = run_in_reactor(first, timeout=20)
    assert beats >= 3
    assert names == ["Demo thermometer", "Demo lamp", "Demo button"]
    text = logs.text()
    assert "Demo thermometer [1/0] temperature =" in text  # changelog shows the changes
    assert "Demo lamp [2/0] state =" in text

    async def second(reactor: Any) -> Any:
        daemon = Daemon(config, reactor)
        daemon.startService()
        await daemon.started
        kept = daemon.registry.get_system_variable("kept")
        ids = [d.peer_id for d in daemon.registry.devices()]
        await daemon.stopService()
        return kept, ids

    kept, ids = run_in_reactor(second, timeout=20)
    assert kept == {"a": [1, 2.5, None]}
    assert ids == [1, 2, 3]


def test_startup_fails_cleanly_when_state_dir_is_unusable(tmp_path: pathlib.Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    config = load({"daemon": {"state_dir": str(blocker / "var")}}, tmp_path)

    async def scenario(reactor: Any) -> str:
        daemon = Daemon(config, reactor)
        daemon.startService()
        try:
            await daemon.started
        except Exception as exc:
            await daemon.stopService()
            return str(exc)
        raise AssertionError("the daemon started without a state store")

    assert "cannot open the state store" in run_in_reactor(scenario, timeout=10)


def test_asyncio_code_runs_in_plugins(tmp_path: pathlib.Path) -> None:
    config = make_config(tmp_path, ["slowstart"])

    async def scenario(reactor: Any) -> None:
        daemon = Daemon(config, reactor)
        daemon.startService()
        await daemon.started
        loop = asyncio.get_running_loop()
        assert loop is reactor._asyncioEventloop
        await daemon.stopService()

    run_in_reactor(scenario, timeout=10)


def test_plugins_find_each_other(tmp_path: pathlib.Path) -> None:
    config = make_config(tmp_path, ["quick", "failsstart", "slowstart"])

    async def scenario(reactor: Any) -> None:
        daemon = Daemon(config, reactor)
        daemon.startService()
        await daemon.started
        quick = daemon.plugin("quick")
        slow = daemon.plugin("slowstart")
        assert quick is not None and slow is not None
        assert slow.context.plugin("quick") is quick  # type: ignore[attr-defined]
        assert slow.context.plugin("failsstart") is None  # type: ignore[attr-defined]
        assert slow.context.plugin("nothing") is None  # type: ignore[attr-defined]
        await daemon.stopService()

    run_in_reactor(scenario, timeout=10)


def test_stop_while_starting_starts_no_plugin(tmp_path: pathlib.Path) -> None:
    config = make_config(tmp_path, ["quick"])

    async def scenario(reactor: Any) -> str:
        daemon = Daemon(config, reactor)
        daemon.startService()
        await deferLater(reactor, 0, lambda: None)  # the stores are opening in a thread
        await daemon.stopService()
        try:
            await daemon.started
        except Exception as exc:
            return str(exc)
        return "started"

    assert run_in_reactor(scenario, timeout=10) == "the daemon was stopped while starting"
    assert records(tmp_path) == []
    # the stores were closed: they open again (a left-open store would be locked)
    config2 = make_config(tmp_path, ["quick"])

    async def again(reactor: Any) -> None:
        daemon = Daemon(config2, reactor)
        daemon.startService()
        await daemon.started
        await daemon.stopService()

    run_in_reactor(again, timeout=10)
    assert records(tmp_path) == ["start quick", "stop quick"]
