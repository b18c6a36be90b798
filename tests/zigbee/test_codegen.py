"""Code generation: the fixture network, a nasty hand-written one, and any valid exposes
(property-based), then mypy once over a module generated from a batch of examples."""

from __future__ import annotations

import enum
import json
import keyword
import pathlib
import textwrap
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hadaemon.zigbee.codegen import generate, write_module
from hadaemon.zigbee.composite import CompositeParameter
from hadaemon.zigbee.devices import Device, DevicesClient
from hadaemon.zigbee.exposes import Feature
from hadaemon.zigbee.factory import parameter_class_name
from hadaemon.zigbee.model import parse_devices
from hadaemon.zigbee.params import EnumParameter
from hadaemon.zigbee.typecheck import mypy_available, run_mypy

from .strategies import network
from .util import REAL, sample


@pytest.fixture(scope="session")
def mypy_cache(tmp_path_factory: Any) -> pathlib.Path:
    """One mypy cache for the session: hadaemon's modules are analysed once."""
    path: pathlib.Path = tmp_path_factory.mktemp("mypy-cache")
    return path


# zigbee2mqtt's list item types: a name, never a property
LIST_ITEMS: list[tuple[str, int, dict[str, Any]]] = [
    ("tags", 7, {"type": "text", "name": "tag", "access": 3}),
    ("times", 2, {"type": "numeric", "name": "time", "label": "Time", "access": 3}),
    ("days", 3, {"type": "enum", "name": "day", "values": ["mon", "tue"], "access": 3}),
    ("flags", 3, {"type": "binary", "name": "on", "value_on": "ON", "value_off": "OFF",
                  "access": 3}),
    ("slots", 3, {"type": "composite", "name": "slot", "access": 3, "features": [
        {"type": "numeric", "name": "hour", "property": "hour", "access": 3}]}),
]


def nasty() -> list[Any]:
    def light(name: str, ieee: str, extra: list[Any]) -> dict[str, Any]:
        return {"ieee_address": ieee, "friendly_name": name, "type": "Router",
                "definition": {"model": "M\"1'", "vendor": "V\\e\nndor", "description": "d",
                               "exposes": extra}}

    two_gang = [{"type": "switch", "endpoint": ep, "features": [
        {"type": "binary", "name": "state", "property": f"state_{ep}", "access": 7,
         "value_on": "ON", "value_off": "OFF", "value_toggle": "TOGGLE", "endpoint": ep}]}
        for ep in ("l1", "l2")]
    odd_enum = [{"type": "enum", "name": "mode", "property": "mode", "access": 7,
                 "values": ["5+2", "120 minutes", 10, "recall_*", "recall", "class", ""]}]
    nested = [{"type": "composite", "name": "schedule", "property": "schedule", "access": 7,
               "features": [
                   {"type": "numeric", "name": "day", "property": "day", "access": 3},
                   {"type": "composite", "name": "slot", "property": "slot", "access": 3,
                    "features": [{"type": "text", "name": "from", "property": "from",
                                  "access": 3},
                                 {"type": "text", "name": "def", "property": "def",
                                  "access": 3}]}]}]
    colors = [{"type": "light", "features": [
        {"type": "composite", "name": "color_xy", "property": "color", "access": 7,
         "features": [{"type": "numeric", "name": "x", "property": "x", "access": 7},
                      {"type": "numeric", "name": "y", "property": "y", "access": 7}]},
        {"type": "composite", "name": "color_hs", "property": "color", "access": 7,
         "features": [{"type": "numeric", "name": "hue", "property": "hue", "access": 7},
                      {"type": "numeric", "name": "saturation", "property": "saturation",
                       "access": 7}]}]}]
    reserved = [{"type": "numeric", "name": n, "property": n, "access": 1}
                for n in ("name", "class", "get_parameters", "is_available", "_params",
                          "9lives")]
    broken = [{"type": "teleport"}, "junk", {"type": "enum", "property": "e"}]
    lists = [{"type": "list", "name": name, "property": name, "access": access,
              "item_type": item} for name, access, item in LIST_ITEMS]
    return [
        {"ieee_address": "0x0", "friendly_name": "Coordinator", "type": "Coordinator",
         "definition": None},
        light("class", "0x1", odd_enum),
        light("Lamp 1", "0x2", two_gang),
        light("lamp-1", "0x3", nested),
        light('a/b"c', "0x4", colors),
        light("on_connect", "0x5", reserved + broken),
        light("123", "0x6", []),
        light("Lists", "0x8", lists),
        {"ieee_address": "0x7", "friendly_name": "unsupported", "type": "EndDevice",
         "definition": None},
    ]


def load(text: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "generated_for_test"}
    exec(compile(text, "<generated>", "exec"), namespace)
    return namespace


def check_module(devices: list[Any], groups: Any = None) -> tuple[str, Any]:
    """Generate, compile, import, instantiate; check names and wire values."""
    result = generate(devices, groups)
    namespace = load(result.text)
    client = namespace["AvailableDevices"]()
    assert isinstance(client, DevicesClient)
    objects = {name: value for name, value in vars(client).items() if isinstance(value, Device)}
    parsed = [d for d in parse_devices(devices).devices if not d.is_coordinator]
    assert len(objects) == len(parsed) + len(groups or [])
    assert set(objects) == set(result.devices)
    by_ieee = {d.ieee_address: d for d in parsed}
    for attribute, obj in objects.items():
        assert attribute.isidentifier() and not keyword.iskeyword(attribute)
        if obj._kind == "group":
            continue
        info = by_ieee[obj._ieee]
        assert obj.name == info.friendly_name
        params = {name: p for name, p in vars(obj).items() if hasattr(p, "get_property_name")}
        for name in params:
            assert name.isidentifier() and not keyword.iskeyword(name), name
        assert len(params) == len(info.features)
        for feature in info.features:
            check_parameter(obj._params[feature.property], feature)
    return result.text, client


def check_parameter(param: Any, feature: Feature) -> None:
    assert type(param).__name__ == parameter_class_name(feature) or \
        isinstance(param, CompositeParameter)
    assert param.get_property_name() == feature.property
    got = param.feature
    assert got.access == feature.access
    if feature.kind == "enum":
        assert isinstance(param, EnumParameter)
        members = list(param.enum_type)
        assert [m.value for m in members] == list(feature.values)
        assert all(isinstance(m, enum.Enum) and m.name.isidentifier() for m in members)
    elif feature.kind == "binary":
        assert (got.value_on, got.value_off, got.value_toggle) == \
            (feature.value_on, feature.value_off, feature.value_toggle)
    elif feature.kind == "numeric":
        assert (got.value_min, got.value_max) == (feature.value_min, feature.value_max)
        assert got.integer == feature.integer
        assert {p.name: p.value for p in got.presets} == \
            {p.name: p.value for p in feature.presets}
    elif feature.kind == "composite":
        assert got.groups == feature.groups
    elif feature.kind == "list":
        assert got.item == feature.item
        for sub in feature.features:
            check_parameter(param._params[sub.property], sub)


def test_the_sample_network_generates_typed_devices_features_and_groups() -> None:
    text, client = check_module(sample(), [{"id": 1, "friendly_name": "Lights", "members": [
        {"ieee_address": "0x00158d0000000001"}, {"ieee_address": "0x00158d0000000003"}]}])
    assert "class Philips9290022169(Device):" in text
    assert type(client.hallway_hue.color_temp).__name__ == \
        "SettableAndQueryableNumericParameter"
    assert client.front_door.contact.feature.value_on is False  # inverted, kept
    assert client.bedroom_blind.position.get_maximum() == 100
    assert client.garden_2ch.state_l1.get_property_name() == "state_l1"
    assert client.color_bulb.color.hue.get_property_name() == "hue"
    assert client.lights._kind == "group"
    check_module(json.loads(REAL.read_text()))


def test_clashing_and_odd_names_become_valid_distinct_identifiers() -> None:
    text, client = check_module(nasty())
    names = set(vars(client))
    assert {"class_", "lamp_1", "lamp_1_2", "a_b_c", "on_connect_", "d_123"} <= names
    assert client.lamp_1.name == "Lamp 1" and client.lamp_1_2.name == "lamp-1"
    assert client.class_.mode.enum_type.__members__.keys() == {
        "v_5_2", "v_120_minutes", "v_10", "recall", "recall_2", "class_", "empty"}
    assert client.class_.mode.enum_type.v_10.value == 10
    assert client.lamp_1.state_l1 is not client.lamp_1.state_l2
    assert client.lamp_1_2.schedule.slot.def_.get_property_name() == "def"
    assert {"name_", "class_", "get_parameters_", "is_available_", "params", "n_9lives"} <= \
        set(vars(client.on_connect_))
    assert 'a/b"c' in text and "'unsupported'" in text
    assert "teleport" not in text


def test_output_is_deterministic_and_rewritten_only_on_change(tmp_path: pathlib.Path) -> None:
    devices = sample()
    assert generate(devices).text == generate(json.loads(json.dumps(devices))).text
    path, written, _ = write_module(tmp_path, devices)
    first = path.read_bytes()
    stamp = path.stat().st_mtime_ns
    path2, written2, _ = write_module(tmp_path, devices)
    assert (written, written2) == (True, False)
    assert path2.stat().st_mtime_ns == stamp and path2.read_bytes() == first
    devices[1]["friendly_name"] = "Renamed"
    _path, written3, _ = write_module(tmp_path, devices)
    assert written3 and b"Renamed" in path.read_bytes()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(network())
def test_any_valid_exposes_generate_importable_code(devices: list[Any]) -> None:
    text, _client = check_module(devices)
    assert text == generate(devices).text


GOOD = '''\
from __future__ import annotations

from gen_fixture import AvailableDevices, PowerOnBehavior
from gen_nasty import AvailableDevices as Nasty

devices = AvailableDevices()


def on_connect() -> None:
    devices.hallway_hue.brightness.set_normalized(0.5)
    devices.hallway_hue.power_on_behavior.set(PowerOnBehavior.previous)
    devices.color_bulb.color.x.set(0.3)
    devices.garden_2ch.state_l2.set(True)
    temperature = devices.living_room_temp.temperature.get()
    if isinstance(temperature, float):
        devices.bedroom_trv.occupied_heating_setpoint.set(temperature + 1)


devices.on_connect.add_listener(on_connect)


def lists(nasty: Nasty) -> None:
    nasty.lists.tags.set(["kitchen"])
    nasty.lists.times.set([10, 60.5])
    nasty.lists.flags.set([True, False])
    slots, tags = nasty.lists.slots.get(), nasty.lists.tags.get()
    if isinstance(slots, list) and isinstance(tags, list):
        hour: int = slots[0]["hour"]
        tag: str = tags[0]
        print(hour, tag)
'''

BAD = '''\
from gen_fixture import AvailableDevices

devices = AvailableDevices()
devices.living_room_temp.temperature.set(3)
devices.hallway_hue.brightnes.set(1)
devices.hallway_hue.power_on_behavior.set(1.5)
from gen_nasty import AvailableDevices as Nasty
Nasty().lists.tags.set([1])
Nasty().lists.times.set(["10"])
'''


@pytest.mark.skipif(not mypy_available(), reason="mypy is not installed")
@settings(max_examples=1, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(network(min_size=3, max_size=5), min_size=4, max_size=4))
def test_mypy_strict_once_over_a_batch(tmp_path_factory: Any, mypy_cache: pathlib.Path,
                                      batch: list[list[Any]]) -> None:
    directory = tmp_path_factory.mktemp("mypy")
    everything = []
    for index, devices in enumerate(batch):
        for d in devices:  # one network of all examples: unique addresses and names
            d["ieee_address"] = f"{d['ieee_address']}{index}"
            d["friendly_name"] = f"{d['friendly_name']} #{index}"
            everything.append(d)
    files = {
        "gen_random.py": generate(everything).text,
        "gen_fixture.py": generate(sample()).text,
        "gen_nasty.py": generate(nasty()).text,
        "good.py": GOOD,
        "bad.py": BAD,
    }
    for name, text in files.items():
        (directory / name).write_text(text)
    status, output = run_mypy([directory / n for n in files], strict=True,
                              extra_path=[directory], cache_dir=mypy_cache)
    errors = [line for line in output.splitlines() if ": error:" in line]
    assert all(line.startswith(str(directory / "bad.py")) for line in errors), output
    lines = sorted({int(line.split(":")[1]) for line in errors})
    assert lines == [4, 5, 6, 8, 9], output
    assert 'has no attribute "set"' in output  # a read-only sensor
    assert 'has no attribute "brightnes"' in output  # a typo
    assert status == 1


@pytest.mark.skipif(not mypy_available(), reason="mypy is not installed")
def test_hadaemon_check_typechecks_an_automation(tmp_path: pathlib.Path,
                                                 mypy_cache: pathlib.Path) -> None:
    from hadaemon.zigbee.typecheck import check_automations

    good = tmp_path / "good" / "automation.py"
    good.parent.mkdir()
    good.write_text(textwrap.dedent('''
        from pyziggy.message_loop import message_loop, MessageLoopTimer
        from pyziggy_autogenerate.available_devices import AvailableDevices

        def stop(timer: MessageLoopTimer) -> None:
            message_loop.stop()

        devices = AvailableDevices()
        devices.on_connect.add_listener(lambda: devices.tv_plug.state.set(True))
    '''))
    write_module(good.parent, sample())
    bad = tmp_path / "bad" / "automation.py"
    bad.parent.mkdir()
    bad.write_text("from pyziggy_autogenerate.available_devices import AvailableDevices\n"
                   "devices = AvailableDevices()\n"
                   "devices.front_door.contact.set(True)\n")
    write_module(bad.parent, sample())
    dynamic = tmp_path / "dynamic" / "automation.py"
    dynamic.parent.mkdir()
    dynamic.write_text("from pyziggy_autogenerate.available_devices import AvailableDevices\n"
                       "devices = AvailableDevices()\n"
                       "devices.anything.goes.set(1)\n")
    syntax = tmp_path / "syntax.py"
    syntax.write_text("def (:\n")
    cache = mypy_cache
    assert check_automations([good, dynamic], cache_dir=cache) == []
    problems = check_automations([bad, syntax], cache_dir=cache)
    assert problems[0].startswith(f"automation {syntax}:1:")
    assert "automation.py:3: error:" in problems[1] and 'has no attribute "set"' in problems[1]
