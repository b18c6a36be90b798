"""The record/replay test kit: the text format, expectations, wildcards, fake-clock time."""

from __future__ import annotations

import json
import pathlib
import textwrap
from typing import Any

import pytest

from hadaemon.testing import Broker, run_in_reactor, wait_until
from hadaemon.zigbee.testkit import LogError, TrafficLog, pattern_matches, record, replay
from tests.mqtt.util import settings_for

from .util import SAMPLE

MOTION = '''\
from pyziggy.message_loop import MessageLoopTimer
from pyziggy_autogenerate.available_devices import AvailableDevices

devices = AvailableDevices()


def lights_off(timer: MessageLoopTimer) -> None:
    timer.stop()
    devices.hallway_hue.state.set(False)


off_timer = MessageLoopTimer(lights_off)


def on_motion() -> None:
    if devices.hall_motion.occupancy.get():
        devices.hallway_hue.state.set(True)
        devices.hallway_hue.brightness.set(200)
        devices.kitchen_bulb.state.set(True)
        off_timer.start(30)  # 30 s of fake time: the test takes milliseconds


devices.hall_motion.occupancy.add_listener(on_motion)
'''


def log_text(extra: str) -> str:
    return textwrap.dedent(f'''\
        # motion turns the hallway light on, and off 30 s later
        0      RECV  "zigbee2mqtt/bridge/devices"  @{SAMPLE.name}
        1.0    RECV  "zigbee2mqtt/Hall motion"     {{"occupancy": true, "battery": 90}}
        ''') + textwrap.dedent(extra)


def run(tmp_path: pathlib.Path, extra: str) -> Any:
    path = tmp_path / "motion.log"
    path.write_text(log_text(extra))
    (tmp_path / SAMPLE.name).write_text(SAMPLE.read_text())
    return replay(path, text=MOTION)


def test_expectations_met(tmp_path: pathlib.Path) -> None:
    result = run(tmp_path, '''\
        1.0   EXPECT     "zigbee2mqtt/Hallway Hue/set"   ={"state": "ON", "brightness": 200}
        1.0   UNORDERED  "zigbee2mqtt/+/set"             {"state": "ON"}
        1.0   PROHIBIT   "zigbee2mqtt/Hallway Hue/set"   {"state": "OFF"}
        1.0   PROHIBIT   "zigbee2mqtt/+/get"             *
        20    RECV       "zigbee2mqtt/Hall motion"       {"occupancy": false}
        20    EXPECT     "zigbee2mqtt/Hallway Hue/set"   {"state": "OFF"}
        40    RECV       "zigbee2mqtt/Hall motion"       {"occupancy": false}
        40    PROHIBIT   "zigbee2mqtt/#"                 *
    ''')
    assert result.ok, result.report()
    times = [(round(t), topic) for t, topic, _p in result.sent]
    assert (31, "zigbee2mqtt/Hallway Hue/set") in times  # the 30 s timer, on fake time


def test_failures_are_reported_readably(tmp_path: pathlib.Path) -> None:
    result = run(tmp_path, '''\
        1.0   EXPECT     "zigbee2mqtt/Hallway Hue/set"   ={"state": "ON"}
        1.0   EXPECT     "zigbee2mqtt/Kitchen Bulb/set"  {"state": "ON"}
        1.0   EXPECT     "zigbee2mqtt/Hallway Hue/set"   {"brightness": "*"}
        1.0   UNORDERED  "zigbee2mqtt/TV plug/set"       *
        1.0   PROHIBIT   "zigbee2mqtt/Kitchen Bulb/set"  *
    ''')
    assert not result.ok
    report = result.report()
    # the exact match fails (brightness was sent too); the brightness EXPECT comes after
    # the kitchen one in order, but was sent before it
    assert "line 4: expected" in report and "Hallway Hue/set" in report
    assert "line 5" not in report
    assert "line 6: expected" in report
    assert "line 7: expected (any order)" in report and "TV plug" in report
    assert "line 8: prohibited message sent at 1.000 s" in report
    assert len(result.failures) == 4


def test_the_format_round_trips_and_errors_name_the_line(tmp_path: pathlib.Path) -> None:
    log = TrafficLog.parse(textwrap.dedent('''\
        # comment
        0.5 RECV "zigbee2mqtt/a b" {"x": [1,
              2, 3]}
        1 SEND "zigbee2mqtt/a b/set" ={"y": true}
        2 PROHIBIT "zigbee2mqtt/+/set" *
        3 RECV "zigbee2mqtt/c"
    '''))
    assert [e.kind for e in log.entries] == ["RECV", "SEND", "PROHIBIT", "RECV"]
    assert log.entries[0].payload == {"x": [1, 2, 3]} and log.entries[1].exact
    again = TrafficLog.parse(log.dump())
    assert [(e.time, e.kind, e.topic, e.payload, e.exact) for e in again.entries] == \
        [(e.time, e.kind, e.topic, e.payload, e.exact) for e in log.entries]
    with pytest.raises(LogError, match=r"<log>:2: unknown kind 'RECIEVE'"):
        TrafficLog.parse('0 RECV "a" 1\n1 RECIEVE "b" {}\n')
    with pytest.raises(LogError, match=r"<log>:1: payload is not JSON"):
        TrafficLog.parse('0 RECV "a" {broken\n')
    with pytest.raises(LogError, match=r"<log>:1: invalid filter 'a/#/b'"):
        TrafficLog.parse('0 EXPECT "a/#/b" *\n')
    with pytest.raises(LogError, match=r"<log>:1: expected"):
        TrafficLog.parse("what is this\n")
    assert pattern_matches({"a": "*"}, {"a": [1], "b": 2})
    assert not pattern_matches({"a": "*"}, {"a": 1, "b": 2}, exact=True)
    assert not pattern_matches(True, 1) and pattern_matches([1, "*"], [1, {"z": 0}])


def test_record_then_replay(tmp_path: pathlib.Path, broker: Broker) -> None:
    from hadaemon.mqtt import MqttConnection
    from hadaemon.testing import BlockingClient
    from hadaemon.zigbee.simulator import Zigbee2MqttSimulator, sample_devices

    def complete(log: TrafficLog) -> bool:
        kinds = {(e.kind, e.topic) for e in log.entries}
        return {("RECV", "zigbee2mqtt/Hall motion"),
                ("SEND", "zigbee2mqtt/Hallway Hue/set")} <= kinds

    async def scenario(reactor: Any) -> TrafficLog:
        from twisted.internet.defer import ensureDeferred
        from twisted.internet.threads import deferToThreadPool

        connection = MqttConnection(reactor, settings_for(broker, "sim"), status=False)
        simulator = Zigbee2MqttSimulator(reactor, connection, sample_devices())
        simulator.start()
        connection.start()
        await connection.when_connected(5)
        log = TrafficLog()
        recording = ensureDeferred(record(reactor, settings_for(broker, "recorder"),
                                          "zigbee2mqtt", 60.0, log=log, until=complete))
        # the recorder is subscribed once it got the retained device list
        await wait_until(reactor, lambda: any(e.topic == "zigbee2mqtt/bridge/devices"
                                              for e in log.entries),
                         timeout=30, what="the recording to begin")

        def drive() -> None:
            simulator.report("Hall motion", {"occupancy": True})
            with BlockingClient(broker) as client:
                client.publish("zigbee2mqtt/Hallway Hue/set", b'{"state": "ON"}')

        await deferToThreadPool(reactor, reactor.getThreadPool(), drive)
        assert await recording is log
        await simulator.stop()
        await connection.stop()
        return log

    log = run_in_reactor(scenario, timeout=20)
    kinds = {(e.kind, e.topic) for e in log.entries}
    assert ("RECV", "zigbee2mqtt/bridge/devices") in kinds
    assert ("RECV", "zigbee2mqtt/Hall motion") in kinds
    assert ("SEND", "zigbee2mqtt/Hallway Hue/set") in kinds
    path = tmp_path / "recorded.log"
    path.write_text(log.dump())
    # the recorded log replays: a motion automation sends what a person did by hand
    result = replay(path, text=MOTION)
    assert result.ok, result.report()
    sent = [(topic, payload) for _t, topic, payload in result.sent]
    assert ("zigbee2mqtt/Hallway Hue/set", {"state": "ON", "brightness": 200}) in sent
    assert json.dumps(sent)
