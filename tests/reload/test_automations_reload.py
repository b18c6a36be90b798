"""zigbee2mqtt automations reloaded on a running daemon, through a real broker: a saved
automation gets a new runtime (nothing of the old one fires after), broken code keeps the
old one, automations added and removed in the config start and stop alone."""

from __future__ import annotations

import json
import pathlib
import textwrap
from typing import Any

from hadaemon.app import prepare
from hadaemon.bus import ErrorEvent, Event
from hadaemon.daemon import Daemon
from hadaemon.testing import BlockingClient, Broker, run_in_reactor, wait_until, write_config

AUTOMATION = '''\
from pyziggy.message_loop import MessageLoopTimer
from pyziggy_autogenerate.available_devices import AvailableDevices

VERSION = {version}
devices = AvailableDevices()
ticks = []
timer = MessageLoopTimer(lambda t: ticks.append(VERSION))


def on_connect():
    devices.kitchen_bulb.brightness.set({brightness})
    timer.start(0.05)


devices.on_connect.add_listener(on_connect)
'''


def _automation(path: pathlib.Path, version: int, brightness: int, extra: str = "") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(extra) + AUTOMATION.format(version=version,
                                                                brightness=brightness))


def _config(tmp_path: pathlib.Path, broker: Broker, automations: list[pathlib.Path],
            **zigbee: Any) -> pathlib.Path:
    return write_config(tmp_path / "hadaemon.toml", {
        "daemon": {"state_dir": "state", "stop_timeout": 10.0,
                   "plugins": ["mqtt", "zigbee2mqtt_simulator", "zigbee2mqtt"]},
        "mqtt": {"host": broker.host, "port": broker.port, "client_id": "reload-test",
                 "reconnect_delay": 0.05, "reconnect_delay_max": 0.3,
                 "username": broker.username or "", "password": broker.password or "",
                 "tls": broker.tls, **({"ca_file": str(broker.ca_path)} if broker.tls else {})},
        "zigbee2mqtt": {"query_interval": 0.0, "devices_timeout": 1.0,
                        "initial_query": False, "typecheck": False,
                        "automations": [str(p) for p in automations], **zigbee},
        "zigbee2mqtt_simulator": {"report_interval": 0.0, "latency": 0.0},
    })


def _daemon(reactor: Any, config: pathlib.Path) -> Daemon:
    prepared = prepare(str(config), strict=False)
    prepared.raise_for_errors()
    return Daemon(prepared.config, reactor, catalog=prepared.catalog)


def _errors(daemon: Daemon) -> list[ErrorEvent]:
    found: list[ErrorEvent] = []

    def on_error(event: Event) -> None:
        if isinstance(event, ErrorEvent):
            found.append(event)

    daemon.bus.subscribe("error/#", on_error)
    return found


def _brightness(watcher: BlockingClient) -> list[int]:
    return [json.loads(m.payload).get("brightness") for m in watcher.pending()
            if m.topic == "zigbee2mqtt/Kitchen Bulb/set"]


def test_a_saved_automation_gets_a_new_runtime(tmp_path: pathlib.Path, broker: Broker) -> None:
    watcher = BlockingClient(broker).connect()
    watcher.subscribe("zigbee2mqtt/+/set")
    path = tmp_path / "lights" / "lights.py"
    _automation(path, 1, 10)
    config = _config(tmp_path, broker, [path])

    async def scenario(reactor: Any) -> None:
        daemon = _daemon(reactor, config)
        daemon.startService()
        await daemon.started
        zigbee: Any = daemon.plugin("zigbee2mqtt")
        network = zigbee.network
        old = zigbee.automations[0]
        await wait_until(reactor, lambda: 10 in _brightness(watcher), timeout=20,
                         what="the first version's set")
        await wait_until(reactor, lambda: len(old.module.ticks) >= 2, what="its timer")
        _automation(path, 2, 20)
        await wait_until(reactor, lambda: zigbee.automations[0] is not old, timeout=20,
                         what="the new runtime")
        new = zigbee.automations[0]
        ticks_at_reload = len(old.module.ticks)
        await wait_until(reactor, lambda: 20 in _brightness(watcher), timeout=20,
                         what="the new version's set")
        await wait_until(reactor, lambda: len(new.module.ticks) >= 5, timeout=20,
                         what="the new timer")
        # the old one is gone: stopped, its timer off, nothing of it fired after
        assert old.stopped and not old.module.timer.is_running()
        assert len(old.module.ticks) == ticks_at_reload and set(new.module.ticks) == {2}
        assert old not in network._observers and new in network._observers  # its listeners
        # the same network, the same generated device classes
        assert zigbee.network is network and daemon.plugin("zigbee2mqtt") is zigbee
        assert new.generated is old.generated
        assert not daemon.failed
        await daemon.stopService()

    run_in_reactor(scenario, timeout=90)
    watcher.close()


def test_broken_automation_code_keeps_the_old_runtime(tmp_path: pathlib.Path,
                                                      broker: Broker) -> None:
    path = tmp_path / "lights" / "lights.py"
    helper = path.parent / "helper.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    helper.write_text("LEVEL = 10\n")
    _automation(path, 1, 10, extra="import helper\n")
    config = _config(tmp_path, broker, [path])

    async def scenario(reactor: Any) -> None:
        daemon = _daemon(reactor, config)
        errors = _errors(daemon)
        daemon.startService()
        await daemon.started
        zigbee: Any = daemon.plugin("zigbee2mqtt")
        old = zigbee.automations[0]
        await wait_until(reactor, lambda: len(old.module.ticks) >= 2, timeout=20,
                         what="its timer")
        # a syntax error in the automation
        path.write_text(path.read_text() + "\ndef (:\n")
        broken_line = len(path.read_text().splitlines())
        await wait_until(reactor, lambda: errors, timeout=20, what="the syntax error")
        error = errors.pop()
        assert error.source == "automation:lights"
        assert (error.details["file"], error.details["line"]) == (str(path), broken_line)
        assert error.message.startswith(f"automation {path} not reloaded, the previous "
                                        f"version keeps running: {path}:{broken_line}: "
                                        "SyntaxError")
        # a module it imports fails to import: that module's file and line
        _automation(path, 2, 20, extra="import helper\n")
        helper.write_text("LEVEL = 10\nraise ImportError('helper is broken')\n")
        await wait_until(reactor, lambda: errors, timeout=20, what="the import error")
        error = errors.pop()
        assert (error.details["file"], error.details["line"]) == (str(helper.resolve()), 2)
        assert "ImportError: helper is broken" in error.message
        # the old runtime runs on all along
        assert zigbee.automations[0] is old and not old.stopped
        ticks = len(old.module.ticks)
        await wait_until(reactor, lambda: len(old.module.ticks) >= ticks + 3,
                         what="the old timer still ticking")
        # the helper fixed: the automation is rebuilt with it
        helper.write_text("LEVEL = 30\n")
        await wait_until(reactor, lambda: zigbee.automations[0] is not old, timeout=20,
                         what="the rebuilt runtime")
        assert zigbee.automations[0].module.helper.LEVEL == 30 and old.stopped
        await daemon.stopService()

    run_in_reactor(scenario, timeout=90)


def test_an_automation_that_did_not_load_starts_once_fixed(tmp_path: pathlib.Path,
                                                          broker: Broker) -> None:
    path = tmp_path / "lights" / "lights.py"
    path.parent.mkdir(parents=True)
    path.write_text("import no_such_module_for_automations\n")
    config = _config(tmp_path, broker, [path])

    async def scenario(reactor: Any) -> None:
        daemon = _daemon(reactor, config)
        errors = _errors(daemon)
        daemon.startService()
        await daemon.started
        zigbee: Any = daemon.plugin("zigbee2mqtt")
        broken = zigbee.automations[0]
        assert not broken.loaded and errors[-1].source == "automation:lights"
        path.write_text("import still_no_such_module\n")  # still broken: said so
        await wait_until(reactor, lambda: "still does not load" in errors[-1].message,
                         timeout=20, what="the second error")
        assert errors[-1].details["line"] == 1
        _automation(path, 1, 10)
        await wait_until(reactor, lambda: zigbee.automations[0] is not broken, timeout=20,
                         what="the fixed automation")
        fixed = zigbee.automations[0]
        await wait_until(reactor, lambda: fixed.module.ticks, timeout=20, what="it running")
        await daemon.stopService()

    run_in_reactor(scenario, timeout=90)


def test_automations_added_and_removed_in_the_config(tmp_path: pathlib.Path,
                                                     broker: Broker) -> None:
    first, second, third = (tmp_path / name / f"{name}.py" for name in ("a", "b", "c"))
    for number, path in enumerate((first, second, third), 1):
        _automation(path, number, number)
    config = _config(tmp_path, broker, [first, second])

    async def scenario(reactor: Any) -> None:
        daemon = _daemon(reactor, config)
        daemon.startService()
        await daemon.started
        zigbee: Any = daemon.plugin("zigbee2mqtt")
        network = zigbee.network
        a, b = zigbee.automations
        await wait_until(reactor, lambda: b.module.ticks, timeout=20, what="b running")
        _config(tmp_path, broker, [second, third])
        result = await daemon.reloader.reload_config()
        assert result.applied and result.reconfigured == ["zigbee2mqtt"], result
        assert result.restarted == []
        assert a.stopped and not a.module.timer.is_running()
        assert zigbee.automations[0] is b and not b.stopped
        c = zigbee.automations[1]
        assert c.path == third and c.loaded
        await wait_until(reactor, lambda: c.module.ticks, timeout=20, what="c running")
        assert daemon.plugin("zigbee2mqtt") is zigbee and zigbee.network is network
        # the new automation's file is watched from now on
        assert third.resolve() in daemon.reloader.watcher.files  # type: ignore[union-attr]
        # an automation that does not compile: refused as hadaemon check refuses it
        broken = tmp_path / "d" / "d.py"
        broken.parent.mkdir()
        broken.write_text("def (:\n")
        _config(tmp_path, broker, [second, third, broken])
        result = await daemon.reloader.reload_config()
        assert not result.applied and str(broken) in "\n".join(result.errors)
        assert zigbee.automations == [b, c]
        # generate turned on in place: the typed module is written beside each
        # automation, and (not watched) reloads nothing
        _config(tmp_path, broker, [second, third], generate=True)
        result = await daemon.reloader.reload_config()
        assert result.reconfigured == ["zigbee2mqtt"] and result.restarted == []
        generated = second.parent / "pyziggy_autogenerate" / "available_devices.py"
        await wait_until(reactor, generated.exists, timeout=60, what="the generated module")
        _automation(third, 4, 4)  # a real change after it: once it is applied, ...
        await wait_until(reactor, lambda: zigbee.automations[1] is not c, timeout=20,
                         what="c reloaded")
        assert zigbee.automations[0] is b  # ... the generated file has reloaded nothing
        c = zigbee.automations[1]
        # any other key: the plugin restarts with its new section
        _config(tmp_path, broker, [second, third], query_interval=0.01, generate=True)
        result = await daemon.reloader.reload_config()
        assert result.applied and result.restarted == ["zigbee2mqtt"]
        assert b.stopped and c.stopped
        restarted: Any = daemon.plugin("zigbee2mqtt")
        assert restarted is not zigbee and len(restarted.automations) == 2
        await daemon.stopService()

    run_in_reactor(scenario, timeout=120)
