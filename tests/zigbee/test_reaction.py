"""A report read from the broker is answered in the same wake-up: the automation's sets
leave, collated, before the reactor turns (not a ``callLater(0)`` later)."""

from __future__ import annotations

import json
import pathlib
from typing import Any

from hadaemon.bus import Bus
from hadaemon.logs import get_logger
from hadaemon.mqtt import Message
from hadaemon.registry import Registry
from hadaemon.testing import BlockingClient, Broker, run_in_reactor, wait_until
from hadaemon.zigbee.automation import AutomationRuntime
from hadaemon.zigbee.codegen import write_module
from hadaemon.zigbee.network import Network, NetworkSettings
from hadaemon.zigbee.simulator import sample_devices
from hadaemon.zigbee.testkit import _MemoryStore
from tests.mqtt.util import connection

SENSOR = "zigbee2mqtt/Living room temp"
LAMP_SET = "zigbee2mqtt/Hallway Hue/set"

MIRROR = '''\
from pyziggy_autogenerate.available_devices import AvailableDevices

devices = AvailableDevices()


def mirror() -> None:
    humidity = devices.living_room_temp.humidity.get()
    if isinstance(humidity, float | int):
        devices.hallway_hue.brightness.set(int(humidity))
        devices.hallway_hue.brightness.set(int(humidity) + 1)  # collated: one /set


devices.living_room_temp.humidity.add_listener(mirror)
'''


def test_sets_caused_by_a_report_leave_before_the_reactor_turns(
        tmp_path: pathlib.Path, broker: Broker) -> None:
    watcher = BlockingClient(broker).connect()
    watcher.publish("zigbee2mqtt/bridge/devices", json.dumps(sample_devices()), retain=True)
    watcher.subscribe(LAMP_SET)
    automation = tmp_path / "mirror.py"
    automation.write_text(MIRROR)
    write_module(tmp_path, sample_devices())
    # After the network's own after-read callback: (sets still pending, the reactor has
    # turned since the report arrived, /set publishes made so far)
    seen: list[tuple[int, bool, int]] = []

    async def scenario(reactor: Any) -> None:
        bus = Bus(reactor)
        conn = connection(reactor, broker, bus)
        network = Network(reactor, conn, Registry(reactor, bus, _MemoryStore()), bus,
                          _MemoryStore(), NetworkSettings(initial_query=False))
        runtime = AutomationRuntime(automation, network, reactor=reactor, bus=bus,
                                    log=get_logger("test"))
        assert runtime.load()
        network.start()
        turned = [True]

        def on_report(_message: Message) -> None:
            turned[0] = False
            reactor.callLater(0, turned.__setitem__, 0, True)

        conn.subscribe(SENSOR, on_report, qos=0)
        remove = conn.after_read(lambda: seen.append(
            (network.collator.pending(), turned[0], network.collator.messages_sent)))
        conn.start()
        await conn.when_connected(5)
        await wait_until(reactor, lambda: network.ready, what="the devices")
        before = network.collator.messages_sent
        watcher.publish(SENSOR, b'{"humidity": 42}', qos=0)
        await wait_until(reactor, lambda: any(not t for _p, t, _s in seen), what="the report")
        remove()
        runtime.stop()
        await network.stop()
        await conn.stop()
        # The first callback after the report: flushed, as one /set, in its wake-up (a
        # PUBACK read before the reactor's timers run may call it again: nothing more).
        after_report = [(p, s) for p, t, s in seen if not t]
        assert after_report[0] == (0, before + 1)
        assert set(after_report) == {(0, before + 1)}

    run_in_reactor(scenario, timeout=20)
    assert json.loads(watcher.expect(LAMP_SET).payload) == {"brightness": 43}
    watcher.close()
