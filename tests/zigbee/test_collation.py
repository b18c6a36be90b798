"""Parameters, collation, queries and the registry, on a fake clock."""

from __future__ import annotations

from typing import Any

import pytest

from hadaemon.registry import InvalidValue, ReadOnly
from hadaemon.sentinels import UNKNOWN
from hadaemon.zigbee.params import ValueUnknown
from hadaemon.zigbee.values import BadValue

from .util import GROUPS, Harness, sample


def test_values_are_unknown_until_reported() -> None:
    h = Harness()
    hue = h.view("Hallway Hue")
    assert hue.brightness.get() is UNKNOWN and not hue.brightness.is_known()
    with pytest.raises(ValueUnknown):
        hue.brightness.add(10)
    h.deliver("zigbee2mqtt/Hallway Hue", {"brightness": 100, "state": "ON", "last_seen": 1})
    assert hue.brightness.get() == 100 and hue.state.get() is True
    assert hue.brightness.get_maximum() == 254 and hue.brightness.get_minimum() == 0
    assert hue.brightness.get_normalized() == pytest.approx(100 / 254)
    temp = h.view("Living room temp")
    assert temp.temperature.get_maximum() is None
    with pytest.raises(ValueError, match="no declared range"):
        temp.temperature.get_normalized()


def test_many_sets_in_one_turn_are_one_message_with_changed_values_only() -> None:
    h = Harness()
    hue = h.view("Hallway Hue")
    h.deliver("zigbee2mqtt/Hallway Hue", {"brightness": 10, "state": "OFF", "color_temp": 300})
    for value in range(300):
        hue.brightness.set(value % 254)
    hue.brightness.set(200)
    hue.state.set(True)
    hue.color_temp.set(300)  # unchanged: not sent
    assert h.take() == []  # nothing before the end of the turn
    h.turn()
    assert h.take() == [("zigbee2mqtt/Hallway Hue/set", {"brightness": 200, "state": "ON"})]
    assert hue.brightness.get() == 200  # what was asked for, until the device reports
    hue.brightness.set(150)
    hue.brightness.set(200)  # back where it was before the turn: nothing to send
    h.turn()
    assert h.take() == []


def test_sets_over_several_devices_and_a_group() -> None:
    h = Harness(groups=GROUPS)
    views = [h.view(n) for n in ("Hallway Hue", "Color bulb", "Kitchen Bulb")]
    for i in range(100):
        views[i % 3].brightness.set(i)
    group = h.view("Living room lights")
    group.state.set(True)
    group.brightness.set_normalized(0.5)
    h.turn()
    sent = dict(h.take())
    assert len(sent) == 4
    assert sent["zigbee2mqtt/Living room lights/set"] == {"state": "ON", "brightness": 127}
    assert sent["zigbee2mqtt/Hallway Hue/set"] == {"brightness": 99}


def test_composites_merge_and_keep_groups_together() -> None:
    h = Harness()
    bulb = h.view("Color bulb")
    h.deliver("zigbee2mqtt/Color bulb", {"color": {"x": 0.1, "y": 0.2, "hue": 10,
                                                   "saturation": 20}})
    bulb.color.x.set(0.3)
    bulb.color.hue.set(200)
    h.turn()
    # one color object, x sent with its y, hue with its saturation (pyziggy lost one)
    assert h.take() == [("zigbee2mqtt/Color bulb/set",
                         {"color": {"x": 0.3, "hue": 200, "y": 0.2, "saturation": 20}})]
    bulb.color.set({"y": 0.4})
    h.turn()
    assert h.take() == [("zigbee2mqtt/Color bulb/set", {"color": {"y": 0.4, "x": 0.3}})]
    with pytest.raises(BadValue, match="no feature 'z'"):
        bulb.color.set({"z": 1})


def test_enums_binaries_toggles_and_write_only() -> None:
    h = Harness()
    hue = h.view("Hallway Hue")
    members = hue.power_on_behavior.get_values()
    hue.power_on_behavior.set_normalized(1.0)  # pyziggy raised IndexError here
    h.turn()
    assert h.take() == [("zigbee2mqtt/Hallway Hue/set", {"power_on_behavior": "previous"})]
    hue.power_on_behavior.set(members[0])
    hue.state.toggle()
    h.turn()
    assert h.take() == [("zigbee2mqtt/Hallway Hue/set",
                         {"power_on_behavior": "off", "state": "TOGGLE"})]
    # write-only triggers go out every time, even with the same value
    hue.identify.set("identify")
    h.turn()
    hue.identify.set("identify")
    h.turn()
    assert h.take() == [("zigbee2mqtt/Hallway Hue/set", {"identify": "identify"})] * 2
    # a readable one is sent again once the device reported null (effect finished)
    hue.effect.set("blink")
    h.turn()
    hue.effect.set("blink")
    h.turn()
    h.deliver("zigbee2mqtt/Hallway Hue", {"effect": None})
    hue.effect.set("blink")
    h.turn()
    assert h.take() == [("zigbee2mqtt/Hallway Hue/set", {"effect": "blink"})] * 2
    with pytest.raises(BadValue):
        hue.effect.set("disco")
    hue.brightness.set(1000)  # clamped, as pyziggy did
    hue.color_temp.set_preset("warmest")
    h.turn()
    assert h.take() == [("zigbee2mqtt/Hallway Hue/set", {"brightness": 254, "color_temp": 454})]


def test_listeners_events_and_unsubscribing_during_dispatch() -> None:
    h = Harness()
    remote = h.view("Tradfri remote")
    seen: list[str] = []

    def first() -> None:
        seen.append("first")
        token.stop_listening()

    token = remote.action.add_listener(first)
    remote.action.add_listener(lambda: seen.append(remote.action.get().value))
    remote.battery.add_listener(lambda: seen.append("battery"))
    for _ in range(3):
        h.deliver("zigbee2mqtt/Tradfri remote", {"action": "toggle", "battery": 90})
    # every press delivered (never collapsed); the battery only when it changed
    assert seen == ["first", "toggle", "battery", "toggle", "toggle"]
    presses = [e for e in h.events if e.name == "action"]
    assert len(presses) == 3 and all(e.is_event for e in presses)
    h.deliver("zigbee2mqtt/Tradfri remote", {"action": ""})
    assert len([e for e in h.events if e.name == "action"]) == 3


def test_local_sets_call_listeners_before_the_flush() -> None:
    h = Harness()
    hue, bulb = h.view("Hallway Hue"), h.view("Color bulb")
    # a mirror: whatever the hue's brightness becomes, the bulb follows in the same turn
    hue.brightness.add_listener(lambda: bulb.brightness.set(hue.brightness.get()))
    hue.brightness.set(42)
    h.turn()
    assert sorted(h.take()) == [("zigbee2mqtt/Color bulb/set", {"brightness": 42}),
                                ("zigbee2mqtt/Hallway Hue/set", {"brightness": 42})]


def test_registry_writes_become_collated_sets() -> None:
    h = Harness()
    peer = h.peer("Hallway Hue")
    done: list[Any] = []
    h.registry.put_values(peer, 0, {"state": True, "brightness": 20}).addBoth(done.append)
    h.registry.set_value(peer, 0, "color_temp", 250).addBoth(done.append)
    h.turn()
    assert h.take() == [("zigbee2mqtt/Hallway Hue/set",
                         {"state": "ON", "brightness": 20, "color_temp": 250})]
    assert done == [None, None]
    failures: list[Any] = []
    h.registry.set_value(peer, 0, "brightness", 300).addErrback(failures.append)
    h.registry.set_value(peer, 0, "linkquality", 3).addErrback(failures.append)
    h.registry.set_value(peer, 0, "brightness", "x").addErrback(failures.append)
    assert [f.type for f in failures] == [InvalidValue, ReadOnly, InvalidValue]
    assert failures[0].value.fault_code == -5 and failures[1].value.fault_code == -6
    h.turn()
    assert h.take() == []


def test_registry_write_confirmed_by_the_report() -> None:
    h = Harness()
    peer = h.peer("Coffee plug")
    done: list[Any] = []
    h.registry.set_value(peer, 0, "state", True, confirm=True, timeout=5).addBoth(done.append)
    h.turn()
    assert h.take() == [("zigbee2mqtt/Coffee plug/set", {"state": "ON"})]
    assert done == []
    h.deliver("zigbee2mqtt/Coffee plug", {"state": "ON"})
    assert done == [None]


def test_endpoint_channels_are_numbered_and_persisted() -> None:
    h = Harness()
    garden = h.registry.device(h.peer("Garden 2ch"))
    assert {i: c.name for i, c in garden.channels.items()} == {0: "", 1: "l1", 2: "l2"}
    assert set(garden.channels[1].variables) == {"state"}
    assert "available" in garden.channels[0].variables
    h.registry.set_value(garden.peer_id, 2, "state", True)
    h.turn()
    assert h.take() == [("zigbee2mqtt/Garden 2ch/set", {"state_l2": "ON"})]
    h.deliver("zigbee2mqtt/Garden 2ch", {"state_l1": "ON", "state_l2": "OFF"})
    assert h.registry.get_value(garden.peer_id, 1, "state") is True
    event = next(e for e in h.events if e.channel == 1)
    assert (event.source, event.name) == ("zigbee2mqtt", "state")
    # a firmware update adds an endpoint "l0": the others keep their numbers
    devices = sample()
    g = next(d for d in devices if d["friendly_name"] == "Garden 2ch")
    extra = {**g["definition"]["exposes"][0], "endpoint": "l0"}
    extra["features"] = [{**extra["features"][0], "endpoint": "l0", "property": "state_l0"}]
    g["definition"] = {**g["definition"], "exposes": [extra, *g["definition"]["exposes"]]}
    h.deliver("zigbee2mqtt/bridge/devices", devices)
    garden = h.registry.device(garden.peer_id)
    assert {c.name: i for i, c in garden.channels.items() if c.name} == \
        {"l0": 3, "l1": 1, "l2": 2}


def test_queries_are_collated_and_skip_what_cannot_answer() -> None:
    h = Harness()
    hue = h.view("Hallway Hue")
    hue.query_parameters()
    hue.brightness.query_device()
    h.turn()
    ((topic, payload),) = h.take()
    assert topic == "zigbee2mqtt/Hallway Hue/get"
    assert set(payload) == {"state", "brightness", "color_temp", "color_temp_startup",
                            "power_on_behavior"}
    assert set(payload.values()) == {""}


def test_held_sets_wait_for_release_not_for_a_reactor_turn() -> None:
    """While the network handles a message with an after-read hook coming, sets are not
    scheduled on the reactor: the hook (or a lost link) flushes them."""
    h = Harness()
    hue = h.view("Hallway Hue")
    h.deliver("zigbee2mqtt/Hallway Hue", {"brightness": 10})
    scheduled = len(h.clock.getDelayedCalls())
    h.network.collator.hold()
    hue.brightness.set(20)
    assert len(h.clock.getDelayedCalls()) == scheduled  # no callLater(0) of its own
    h.network.collator.release()
    assert h.take() == [("zigbee2mqtt/Hallway Hue/set", {"brightness": 20})]
    h.network.collator.hold()
    hue.brightness.set(30)
    h.connection.disconnect()  # the read's hook will never run: the loss flushes
    assert [payload for _topic, payload in h.take()] == [{"brightness": 30}]
    hue.brightness.set(40)  # released: back to one flush per reactor turn
    assert h.take() == []
    h.turn()
    assert [payload for _topic, payload in h.take()] == [{"brightness": 40}]
