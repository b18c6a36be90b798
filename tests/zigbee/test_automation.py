"""Automations as users write them (the seed's examples unchanged), hosted by the daemon."""

from __future__ import annotations

import json
import pathlib
import sys
import textwrap
from typing import Any

from hadaemon.bus import ErrorEvent, Event
from hadaemon.daemon import Daemon
from hadaemon.testing import BlockingClient, Broker, capture_logs, run_in_reactor, wait_until

from .util import sample, zigbee_daemon

# The seed's first example, verbatim (the README's "tokabo" is a light).
SEED_MINIMAL = '''\
from pyziggy.message_loop import message_loop, MessageLoopTimer
from pyziggy_autogenerate.available_devices import AvailableDevices


def exit(timer: MessageLoopTimer):
    message_loop.stop()


exit_timer = MessageLoopTimer(exit)


def on_connect():
    devices.tokabo.brightness.set_normalized(1.0)
    exit_timer.start(0.5)


devices = AvailableDevices()
devices.on_connect.add_listener(on_connect)
'''

# The seed's threading pattern (its HTTP handler replaced by a plain thread).
THREADED = '''\
import threading

from pyziggy.message_loop import message_loop, AsyncUpdater
from pyziggy_autogenerate.available_devices import AvailableDevices

devices = AvailableDevices()
seen = []


def turn_off_all_lights():
    seen.append(threading.current_thread().name)
    devices.tokabo.state.set(0)


class Updater(AsyncUpdater):
    def _handle_async_update(self):
        seen.append("async " + threading.current_thread().name)
        devices.kitchen_bulb.brightness.set(12)


updater = Updater()


def from_another_thread():
    def message_callback():
        turn_off_all_lights()

    message_loop.post_message(message_callback)
    updater._trigger_async_update()


def on_connect():
    threading.Thread(target=from_another_thread, name="http").start()


devices.on_connect.add_listener(on_connect)
'''


def network_with_tokabo(tmp_path: pathlib.Path) -> pathlib.Path:
    devices = sample()
    for device in devices:
        if device["friendly_name"] == "Hallway Hue":
            device["friendly_name"] = "tokabo"
    path = tmp_path / "network.json"
    path.write_text(json.dumps(devices))
    return path


def write(directory: pathlib.Path, name: str, text: str) -> pathlib.Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(textwrap.dedent(text))
    return path


def test_the_seed_examples_run_unchanged(tmp_path: pathlib.Path, broker: Broker) -> None:
    watcher = BlockingClient(broker).connect()
    watcher.subscribe("zigbee2mqtt/+/set")
    minimal = write(tmp_path / "a", "automation.py", SEED_MINIMAL)
    threaded = write(tmp_path / "b", "threaded.py", THREADED)
    config, catalog = zigbee_daemon(
        tmp_path, broker, zigbee={"automations": [str(minimal), str(threaded)],
                                  "initial_query": False},
        simulator={"devices": str(network_with_tokabo(tmp_path))},
    )

    async def scenario(reactor: Any) -> None:
        daemon = Daemon(config, reactor, catalog=catalog)
        errors: list[str] = []
        daemon.bus.subscribe("error/#", lambda e: errors.append(str(e)))
        daemon.startService()
        await daemon.started
        zigbee: Any = daemon.plugin("zigbee2mqtt")
        first, second = zigbee.automations
        # (the first run on a machine generates and loads the device classes: seconds
        # under load, so more than the default 5 s). The two automations' writes to
        # tokabo go in one /set when they fall in the same collation, else in two; and
        # the threaded one's state OFF is not sent at all when tokabo already reported
        # OFF (its echo of the first write may come first: a set equal to what the
        # device reported is not sent, as in pyziggy).
        def done() -> bool:
            sets = merged_sets(watcher)
            return (sets.get("zigbee2mqtt/tokabo/set", {}).get("brightness") == 254
                    and sets.get("zigbee2mqtt/Kitchen Bulb/set") == {"brightness": 12}
                    and len(second.module.seen) == 2)

        await wait_until(reactor, done, timeout=15, what="the sets")
        assert merged_sets(watcher)["zigbee2mqtt/tokabo/set"].get("state", "OFF") == "OFF"
        # message_loop.stop() after 0.5 s stops that automation only
        await wait_until(reactor, lambda: first.stopped, what="message_loop.stop()")
        assert not second.stopped and not daemon.failed and errors == []
        assert second.module.seen == ["MainThread", "async MainThread"]
        assert "pyziggy" not in sys.modules and "pyziggy_autogenerate" not in sys.modules
        await daemon.stopService()

    run_in_reactor(scenario, timeout=40)
    assert len(watcher.pending()) in (2, 3)  # nothing else was sent
    watcher.close()


def merged_sets(watcher: BlockingClient) -> dict[str, dict[str, Any]]:
    """Every /set received so far, by topic, the later ones' keys over the earlier."""
    merged: dict[str, dict[str, Any]] = {}
    for message in watcher.pending():
        merged.setdefault(message.topic, {}).update(json.loads(message.payload))
    return merged


def test_errors_stay_inside_their_automation(tmp_path: pathlib.Path, broker: Broker) -> None:
    bad = write(tmp_path / "bad", "bad.py", '''
        import sys
        from pyziggy_autogenerate.available_devices import AvailableDevices

        devices = AvailableDevices()

        def on_connect():
            raise RuntimeError("boom on connect")

        def exits():
            sys.exit(3)

        devices.on_connect.add_listener(on_connect)
        devices.on_connect.add_listener(exits)
    ''')
    broken = write(tmp_path / "broken", "broken.py", "import no_such_module_here\n")
    syntax = write(tmp_path / "syntax", "syntax.py", "def (:\n")
    wrong = write(tmp_path / "wrong", "wrong.py", "import pyziggy.cli\n")
    good = write(tmp_path / "good", "good.py", '''
        from pyziggy.message_loop import MessageLoopTimer
        from pyziggy_autogenerate.available_devices import AvailableDevices

        devices = AvailableDevices()
        ticks = []
        timer = MessageLoopTimer(lambda t: ticks.append(1))

        def on_connect():
            timer.start(0.05)

        devices.on_connect.add_listener(on_connect)
    ''')
    config, catalog = zigbee_daemon(tmp_path, broker, zigbee={
        "automations": [str(p) for p in (bad, broken, syntax, wrong, good)],
        "initial_query": False})

    async def scenario(reactor: Any) -> None:
        daemon = Daemon(config, reactor, catalog=catalog)
        events: list[ErrorEvent] = []

        def on_error(event: Event) -> None:
            if isinstance(event, ErrorEvent):
                events.append(event)

        daemon.bus.subscribe("error/#", on_error)
        with capture_logs() as logs:
            daemon.startService()
            await daemon.started
            zigbee: Any = daemon.plugin("zigbee2mqtt")
            runtimes = {r.name: r for r in zigbee.automations}
            await wait_until(reactor, lambda: len(runtimes["good"].module.ticks) >= 3,
                             what="the good automation's timer")
        assert not daemon.failed
        assert [r.loaded for r in zigbee.automations] == [True, False, False, False, True]
        sources = [e.source for e in events]
        assert sources.count("automation:bad") == 2
        for name in ("broken", "syntax", "wrong"):
            assert f"automation:{name}" in sources
        text = logs.text()
        assert "boom on connect" in text and "sys.exit(3)" in text
        assert "No module named 'pyziggy.cli' inside hadaemon" in text
        await daemon.stopService()
        # stopped with its automation: not running, nothing left on the reactor to fire
        timer = runtimes["good"].module.timer
        assert not timer.is_running() and timer._call is None

    run_in_reactor(scenario, timeout=20)


def test_sibling_modules_and_the_generated_module(tmp_path: pathlib.Path,
                                                  broker: Broker) -> None:
    from hadaemon.zigbee.codegen import write_module

    directory = tmp_path / "project"
    write(directory, "helpers.py", '''
        from pyziggy.parameters import SettableAndQueryableNumericParameter

        def brighten(parameter: SettableAndQueryableNumericParameter) -> None:
            parameter.set(99)
    ''')
    write(directory, "automation.py", '''
        from pyziggy_autogenerate.available_devices import AvailableDevices
        from helpers import brighten
        from . import helpers as same_helpers

        devices = AvailableDevices()
        assert same_helpers.brighten is brighten
        typed = type(devices.hallway_hue).__name__

        def on_connect() -> None:
            brighten(devices.hallway_hue.brightness)

        devices.on_connect.add_listener(on_connect)
    ''')
    write(directory, "other.py", '''
        from automation import devices
        from pyziggy_autogenerate.available_devices import AvailableDevices as A
    ''')
    write_module(directory, sample())
    config, catalog = zigbee_daemon(tmp_path, broker, zigbee={
        "automations": [str(directory / "automation.py")], "initial_query": False})

    async def scenario(reactor: Any) -> None:
        daemon = Daemon(config, reactor, catalog=catalog)
        daemon.startService()
        await daemon.started
        zigbee: Any = daemon.plugin("zigbee2mqtt")
        runtime = zigbee.automations[0]
        assert runtime.loaded
        assert runtime.module.typed == "Philips9290022169"  # the generated class
        importer = runtime.importer
        other = importer._sibling("other")
        assert other.devices is runtime.module.devices
        await wait_until(reactor, lambda: zigbee.network.ready)
        hue = zigbee.network.find("Hallway Hue")
        await wait_until(reactor, lambda: daemon.registry.get_value(
            hue.peer_id, 0, "brightness") == 99)
        await daemon.stopService()
        assert not any(name.startswith(importer.package) for name in sys.modules)

    run_in_reactor(scenario, timeout=20)
