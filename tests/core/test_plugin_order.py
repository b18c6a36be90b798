"""Plugins start after what they declare they need (``requires``, ``wants``), whatever the
config's order, and stop in reverse; a missing requirement or a cycle is refused clearly."""

from __future__ import annotations

import pathlib
import textwrap
from typing import Any

import pytest

from hadaemon.app import prepare
from hadaemon.bus import ErrorEvent, Event, Lifecycle
from hadaemon.config import Config
from hadaemon.daemon import Daemon
from hadaemon.plugin import Needs, Plugin, needs_of, start_order
from hadaemon.testing.reactors import run_in_reactor

# "conn" stands for a shared connection (as mqtt): its start takes a while, and "user"
# must find it started; "needy" requires "user" in turn; "loner" needs nothing.
PLUGINS = '''
import asyncio
from hadaemon.config import Section, Str
from hadaemon.plugin import Plugin

SCHEMA = Section({"record": Str(), "uses": Str(default="conn")})

def record(plugin, what):
    with open(plugin.config["record"], "a") as f:
        f.write(f"{what} {plugin.name}\\n")

class Conn(Plugin):
    name = "conn"
    schema = SCHEMA
    up = False
    async def start(self):
        await asyncio.sleep(0.05)
        self.up = True
        record(self, "start")
    def stop(self):
        self.up = False
        record(self, "stop")

class User(Plugin):
    name = "user"
    schema = SCHEMA
    requires = ("conn",)
    def start(self):
        conn = self.context.plugin("conn")
        record(self, f"start(conn up: {conn is not None and conn.up})")
    def stop(self):
        conn = self.context.plugin("conn")
        record(self, f"stop(conn up: {conn is not None and conn.up})")

class Needy(Plugin):
    name = "needy"
    schema = SCHEMA
    requires = ("user",)
    def start(self): record(self, "start")
    def stop(self): record(self, "stop")

class Loner(Plugin):
    name = "loner"
    schema = SCHEMA
    wants = ("conn",)   # uses it when enabled
    def start(self): record(self, "start")
    def stop(self): record(self, "stop")

class Chooser(Plugin):
    """Which connection it requires comes from its config, as zigbee2mqtt's [mqtt]."""
    name = "chooser"
    schema = SCHEMA
    @classmethod
    def requirements(cls, section):
        return (section["uses"],)
    def start(self): record(self, "start")

class Chicken(Plugin):
    name = "chicken"
    schema = SCHEMA
    requires = ("egg",)

class Egg(Plugin):
    name = "egg"
    schema = SCHEMA
    requires = ("chicken",)

class FailsStart(Plugin):
    name = "failsstart"
    schema = SCHEMA
    def start(self): raise RuntimeError("cannot start, on purpose")

class NeedsFailing(Plugin):
    name = "needsfailing"
    schema = SCHEMA
    requires = ("failsstart",)
    def start(self): record(self, "start")
'''

NAMES = ["conn", "user", "needy", "loner", "chooser", "chicken", "egg", "failsstart",
         "needsfailing"]


def config_for(tmp_path: pathlib.Path, plugins: list[str], *, strict: bool = False,
               **sections: dict[str, Any]) -> Any:
    pdir = tmp_path / "plugins"
    pdir.mkdir(exist_ok=True)
    (pdir / "ordered.py").write_text(textwrap.dedent(PLUGINS))
    raw: dict[str, Any] = {"daemon": {"state_dir": str(tmp_path / "var"),
                                      "plugin_dirs": [str(pdir)], "plugins": plugins}}
    for name in NAMES:
        if name in plugins:
            raw[name] = {"record": str(tmp_path / "record.txt"), **sections.get(name, {})}
    return prepare(raw, base_dir=tmp_path, environ={}, strict=strict)


def records(tmp_path: pathlib.Path) -> list[str]:
    path = tmp_path / "record.txt"
    return path.read_text().splitlines() if path.exists() else []


def run_daemon(config: Config) -> tuple[Daemon, list[Event]]:
    events: list[Event] = []

    async def scenario(reactor: Any) -> Daemon:
        daemon = Daemon(config, reactor)
        daemon.bus.subscribe("lifecycle/daemon/+", events.append)
        daemon.bus.subscribe("error/#", events.append)
        daemon.startService()
        await daemon.started
        await daemon.stopService()
        return daemon

    return run_in_reactor(scenario, timeout=20), events


# -- the order, as plain data ---------------------------------------------------------------


def test_order_follows_needs_and_keeps_the_config_order_elsewhere() -> None:
    needs = {"zigbee2mqtt": Needs(requires=("mqtt",)), "services": Needs(wants=("mqtt",))}
    plan = start_order(["zigbee2mqtt", "demo", "services", "mqtt", "nodes"], needs)
    assert plan.order == ["demo", "mqtt", "zigbee2mqtt", "services", "nodes"]
    assert plan.refused == {}
    # already in a good order: nothing moves
    plan = start_order(["mqtt", "demo", "zigbee2mqtt"], needs)
    assert plan.order == ["mqtt", "demo", "zigbee2mqtt"]
    # a wanted plugin that is not enabled is no requirement
    assert start_order(["services", "nodes"], needs).order == ["services", "nodes"]


def test_a_missing_requirement_refuses_the_plugin_and_those_requiring_it() -> None:
    needs = {"zigbee2mqtt": Needs(requires=("mqtt",)), "lights": Needs(requires=("zigbee2mqtt",)),
             "services": Needs(wants=("zigbee2mqtt",))}
    plan = start_order(["lights", "zigbee2mqtt", "services", "demo"], needs)
    assert plan.order == ["services", "demo"]
    assert plan.refused == {
        "lights": "plugin 'lights' requires 'zigbee2mqtt', which cannot start (plugin "
                  "'zigbee2mqtt' requires 'mqtt', which is not enabled in [daemon].plugins)",
        "zigbee2mqtt": "plugin 'zigbee2mqtt' requires 'mqtt', which is not enabled in "
                       "[daemon].plugins",
    }
    two = start_order(["x"], {"x": Needs(requires=("a", "b"))})
    assert two.refused == {"x": "plugin 'x' requires 'a', 'b', which are not enabled in "
                                "[daemon].plugins"}


def test_a_cycle_is_refused_naming_it() -> None:
    needs = {"a": Needs(requires=("b",)), "b": Needs(wants=("c",)), "c": Needs(requires=("a",)),
             "d": Needs(requires=("c",))}
    plan = start_order(["d", "free", "a", "b", "c"], needs)
    assert plan.order == ["free"]
    cycle = "(a -> b -> c -> a)"
    assert plan.refused == {
        "d": f"plugin 'd' requires 'c', which cannot start (plugin 'c' is in a cycle of "
             f"requirements {cycle}: none of them can start first)",
        "a": f"plugin 'a' is in a cycle of requirements {cycle}: none of them can start first",
        "b": f"plugin 'b' is in a cycle of requirements {cycle}: none of them can start first",
        "c": f"plugin 'c' is in a cycle of requirements {cycle}: none of them can start first",
    }
    selfish = start_order(["me"], {"me": Needs(requires=("me",))})
    assert selfish.refused == {"me": "plugin 'me' is in a cycle of requirements (me -> me): "
                                     "none of them can start first"}


def test_declarations_must_be_tuples_of_names() -> None:
    class Slip(Plugin):
        name = "slip"
        requires = ("mqtt")  # type: ignore[assignment]  # a str, not a tuple

    class Fine(Plugin):
        name = "fine"
        requires = ("mqtt",)
        wants = ("services",)

    class Broken(Plugin):
        name = "broken"

        @classmethod
        def requirements(cls, section: Any) -> tuple[str, ...]:
            raise KeyError("mqtt")

    with pytest.raises(ValueError, match=r"plugin 'slip': requires must be a tuple of plugin "
                                         r"names, got 'mqtt'"):
        needs_of("slip", Slip, {})
    assert needs_of("fine", Fine, {}) == Needs(("mqtt",), ("services",))
    assert needs_of("entry", lambda context: None, {}) == Needs()  # any factory may declare
    with pytest.raises(ValueError, match=r"plugin 'broken': requirements\(\) failed: KeyError"):
        needs_of("broken", Broken, {})


# -- the daemon ------------------------------------------------------------------------------


def test_config_order_reversed_still_starts_the_connection_first_and_stops_it_last(
        tmp_path: pathlib.Path) -> None:
    prepared = config_for(tmp_path, ["needy", "loner", "user", "conn"])
    assert prepared.errors == [] and prepared.warnings == []
    daemon, events = run_daemon(prepared.config)
    assert daemon.failed == {}
    # conn's start is asynchronous: user and loner wait for it, needy for user
    assert records(tmp_path) == [
        "start conn",
        "start loner",
        "start(conn up: True) user",
        "start needy",
        "stop needy",
        "stop(conn up: True) user",
        "stop loner",
        "stop conn",
    ]
    started = next(e for e in events if isinstance(e, Lifecycle) and e.state == "started")
    assert started.details["plugins"] == ["conn", "loner", "user", "needy"]


def test_needs_from_the_config_section(tmp_path: pathlib.Path) -> None:
    prepared = config_for(tmp_path, ["chooser", "loner", "conn"])
    daemon, _events = run_daemon(prepared.config)
    assert daemon.failed == {}
    assert records(tmp_path)[:3] == ["start conn", "start chooser", "start loner"]
    prepared = config_for(tmp_path, ["chooser"], strict=True, chooser={"uses": "other"})
    assert prepared.errors == [
        "<config>: [daemon].plugins: plugin 'chooser' requires 'other', which is not enabled "
        "in [daemon].plugins"
    ]


def test_missing_requirement_and_cycle_are_refused_and_the_rest_runs(
        tmp_path: pathlib.Path) -> None:
    prepared = config_for(tmp_path, ["needy", "chicken", "egg", "loner"])
    # hadaemon check says so (hadaemon run warns, and the daemon refuses them)
    checked = config_for(tmp_path, ["needy", "chicken", "egg", "loner"], strict=True)
    assert checked.errors == [
        "<config>: [daemon].plugins: plugin 'needy' requires 'user', which is not enabled in "
        "[daemon].plugins",
        "<config>: [daemon].plugins: plugin 'chicken' is in a cycle of requirements "
        "(chicken -> egg -> chicken): none of them can start first",
        "<config>: [daemon].plugins: plugin 'egg' is in a cycle of requirements "
        "(chicken -> egg -> chicken): none of them can start first",
    ]
    assert len(prepared.warnings) == 3
    daemon, events = run_daemon(prepared.config)
    assert daemon.failed == {
        "needy": "not started: plugin 'needy' requires 'user', which is not enabled in "
                 "[daemon].plugins",
        "chicken": "not started: plugin 'chicken' is in a cycle of requirements "
                   "(chicken -> egg -> chicken): none of them can start first",
        "egg": "not started: plugin 'egg' is in a cycle of requirements "
               "(chicken -> egg -> chicken): none of them can start first",
    }
    assert records(tmp_path) == ["start loner", "stop loner"]
    errors = {e.source for e in events if isinstance(e, ErrorEvent)}
    assert errors == {"plugin:needy", "plugin:chicken", "plugin:egg"}


def test_a_requirement_that_fails_to_start_stops_its_dependents(tmp_path: pathlib.Path) -> None:
    prepared = config_for(tmp_path, ["needsfailing", "failsstart", "loner"])
    daemon, _events = run_daemon(prepared.config)
    assert daemon.failed["needsfailing"] == (
        "not started: it requires 'failsstart', which failed (failed to start: cannot "
        "start, on purpose)")
    assert records(tmp_path) == ["start loner", "stop loner"]
