"""Exposes parsing and wire values: every type, the odd ones, and garbage."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hadaemon.zigbee.exposes import parse_exposes, shared_features
from hadaemon.zigbee.model import parse_devices, parse_groups
from hadaemon.zigbee.values import BadValue, decode, encode

from .util import REAL, sample


def features(name: str) -> dict[str, Any]:
    device = next(d for d in sample() if d["friendly_name"] == name)
    parsed = parse_exposes(device["definition"]["exposes"], name)
    assert parsed.problems == []
    return parsed.by_property()


def test_the_whole_sample_parses_without_problems() -> None:
    parsed = parse_devices(sample())
    assert parsed.problems == []
    assert len(parsed.devices) == 18
    kinds = {f.kind for d in parsed.devices for f in d.features}
    assert kinds == {"binary", "numeric", "enum", "text", "composite"}
    specifics = {f.specific for d in parsed.devices for f in d.features} - {None}
    assert specifics == {"light", "switch", "lock", "cover", "fan", "climate"}
    real = parse_devices(json.loads(REAL.read_text()))
    assert real.problems == [] and len(real.devices) == 3


def test_color_xy_and_color_hs_merge_into_one_color() -> None:
    color = features("Color bulb")["color"]
    assert color.kind == "composite" and color.name == "color"
    assert [f.property for f in color.features] == ["x", "y", "hue", "saturation"]
    assert color.groups == (("color_xy", ("x", "y")), ("color_hs", ("hue", "saturation")))


def test_inverted_contact_and_string_binaries() -> None:
    contact = features("Front door")["contact"]
    assert contact.boolean and contact.value_on is False
    # the value is the wire value: True means closed, as the device says
    assert decode(contact, True) == (True, None)
    lock = features("TV plug")["child_lock"]
    assert decode(lock, "LOCK") == (True, None) and encode(lock, False) == "UNLOCK"
    orientation = features("Office TRV")["thermostat_orientation"]
    assert encode(orientation, True) == "vertical"
    with pytest.raises(BadValue, match="thermostat_orientation"):
        decode(orientation, "diagonal")


def test_multi_endpoint_and_same_named_features() -> None:
    garden = features("Garden 2ch")
    assert garden["state_l1"].endpoint == "l1" and garden["state_l1"].base_name == "state"
    assert garden["state_l2"].name == "state"
    bath = features("Bath TRV")  # four switches whose features are all named "state"
    assert {"window_detection", "valve_detection", "auto_lock", "away_mode"} <= set(bath)
    fan = features("Ceiling fan")
    assert fan["fan_state"].specific == "fan" and fan["state"].specific == "light"


def test_numeric_ints_presets_and_ranges() -> None:
    hue = features("Hallway Hue")
    assert hue["brightness"].integer and encode(hue["brightness"], 127.6) == 128
    startup = hue["color_temp_startup"]
    assert encode(startup, "previous") == 65535  # a preset outside the range
    assert encode(startup, 65535) == 65535
    with pytest.raises(BadValue, match="above the maximum 454"):
        encode(startup, 500)
    level = features("Kitchen Bulb")["level_config"]
    current = level.feature("current_level_startup")
    assert current is not None and current.string_presets
    assert decode(current, "minimum") == ("minimum", None)
    temperature = features("Living room temp")["temperature"]
    assert not temperature.integer and not temperature.has_range
    assert decode(temperature, 21.5) == (21.5, None)
    setpoint = features("Bedroom TRV")["occupied_heating_setpoint"]
    assert not setpoint.integer and encode(setpoint, 21.5) == 21.5


def test_enums_events_and_access() -> None:
    remote = features("Tradfri remote")
    assert remote["action"].is_event and not remote["battery"].is_event
    assert remote["identify"].settable and not remote["identify"].readable
    assert decode(remote["action"], "toggle") == ("toggle", None)
    value, warning = decode(remote["action"], "new_firmware_button")
    assert value == "new_firmware_button" and warning is not None
    week = features("Bath TRV")["week"]
    assert week.values == ("5+2", "6+1", "7")
    assert encode(week, "5+2") == "5+2"
    with pytest.raises(BadValue):
        encode(week, 7)  # the number 7 is not the string "7"


def test_garbage_exposes_skip_only_themselves() -> None:
    exposes: list[Any] = [
        "not an object",
        {"type": "magic", "property": "x"},
        {"type": "numeric"},
        {"type": "binary", "property": "same", "value_on": 1, "value_off": 1},
        {"type": "enum", "property": "mode", "values": "not a list"},
        {"type": "numeric", "property": "ok", "access": 99, "value_min": "zero"},
        {"type": "light", "features": [{"type": "light", "features": []}]},
        {"type": "text", "property": "fine", "access": 7},
        {"type": "text", "property": "fine", "access": 1},
    ]
    parsed = parse_exposes(exposes, "weird")
    assert [f.property for f in parsed.features] == ["ok", "fine"]
    assert parsed.features[0].access == 1 and parsed.features[0].value_min is None
    text = "\n".join(parsed.problems)
    for fragment in ("exposes[0]: not an object", "unsupported expose type 'magic'",
                     "numeric expose without a property", "value_on equals value_off",
                     "enum without a values list", "invalid access 99",
                     "nested light", "exposed twice"):
        assert fragment in text
    assert parse_exposes("nope").problems and parse_exposes(None).features == []


def test_bridge_payloads_are_tolerant() -> None:
    parsed = parse_devices([1, {"ieee_address": "0x1"}, {"friendly_name": "x"},
                            {"ieee_address": "0x2", "friendly_name": "a", "definition": 5},
                            {"ieee_address": "0x2", "friendly_name": "b"}])
    assert [d.friendly_name for d in parsed.devices] == ["a"]
    assert len(parsed.problems) == 5
    assert parse_devices({"not": "a list"}).problems
    groups = parse_groups([{"id": 1, "friendly_name": "g", "members": [
        {"ieee_address": "0x1", "endpoint": 1}, "junk"]}, {"id": 1, "friendly_name": "dup"}])
    assert len(groups.groups) == 1 and len(groups.groups[0].members) == 1


def test_group_capabilities_are_what_all_members_share() -> None:
    hue = list(features("Hallway Hue").values())
    bulb = list(features("Color bulb").values())
    plug = list(features("Coffee plug").values())
    lights = {f.property: f for f in shared_features([hue, bulb])}
    assert "color" not in lights  # only the colour bulb has it
    assert lights["color_temp"].value_min == 153 and lights["color_temp"].value_max == 454
    assert set(lights["power_on_behavior"].values) == {"off", "on", "toggle", "previous"}
    mixed = {f.property for f in shared_features([hue, plug])}
    assert "state" in mixed and "brightness" not in mixed
    garden = features("Garden 2ch")
    with_gang = {f.property for f in shared_features([hue, list(garden.values())])}
    assert with_gang == {"state", "linkquality"}  # state_l1 counts as "state"
    assert shared_features([]) == []


def test_list_items_keep_their_type_without_a_property() -> None:
    from .test_codegen import LIST_ITEMS

    exposes = [{"type": "list", "name": name, "property": name, "access": access,
                "item_type": item} for name, access, item in LIST_ITEMS]
    parsed = parse_exposes(exposes, "lists")
    assert parsed.problems == []  # was "text expose without a property", and the others
    items = {f.property: f.item for f in parsed.features}
    assert {p: (i.kind, i.name) for p, i in items.items() if i is not None} == {
        "tags": ("text", "tag"), "times": ("numeric", "time"), "days": ("enum", "day"),
        "flags": ("binary", "on"), "slots": ("composite", "slot")}
    flags, times = parsed.by_property()["flags"], parsed.by_property()["times"]
    # items go through their own type both ways
    assert decode(flags, ["ON", "OFF"]) == ([True, False], None)
    assert encode(flags, [True, False]) == ["ON", "OFF"]
    with pytest.raises(BadValue, match="time: 'soon' is not a number"):
        encode(times, [10, "soon"])
    value, warning = decode(flags, ["ON", "maybe"])
    assert value == [True, "maybe"] and warning is not None and "flags[1]" in warning


def test_a_list_expose_round_trips_through_as_expose() -> None:
    from hadaemon.zigbee.exposes import as_expose, parse_feature

    from .test_codegen import LIST_ITEMS

    for name, access, item in LIST_ITEMS:
        raw = {"type": "list", "name": name, "property": name, "access": access,
               "item_type": item, "length_max": 4, "label": name.title()}
        feature = parse_feature(raw, name, [])
        assert feature is not None
        assert parse_feature(as_expose(feature), name, []) == feature


def test_typed_list_items_through_the_adapter() -> None:
    from .test_codegen import nasty
    from .util import Harness

    h = Harness(devices=nasty())
    peer = h.peer("Lists")
    h.deliver("zigbee2mqtt/Lists", {"flags": ["ON", "OFF"], "tags": ["a"]})
    assert h.registry.get_value(peer, 0, "flags") == [True, False]
    view = h.view("Lists")
    assert view.flags.get() == [True, False] and view.tags.get() == ["a"]
    h.registry.set_value(peer, 0, "flags", [False, True])
    view.tags.set(["b", "c"])
    h.turn()
    assert h.take() == [("zigbee2mqtt/Lists/set", {"flags": ["OFF", "ON"], "tags": ["b", "c"]})]
    with pytest.raises(BadValue):
        view.tags.set([1])
