"""Values as the API shows them: the composed device JSON is valid JSON for every kind
of value of the model, and JSON values come back as the model's."""

from __future__ import annotations

import json
import math

import pytest

from hadaemon.registry import UNKNOWN, Access, ChannelSpec, Device, ValueType, VariableSpec
from hadaemon.web.api import _device, _variable
from hadaemon.web.jsonvalues import BadValue, from_json, to_json

VALUES = [
    (1.5, 1.5), (2**70, 2**70), (-3, -3), (True, True), (None, None),
    (math.nan, "NaN"), (math.inf, "Infinity"), (-math.inf, "-Infinity"), (1e-7, 1e-7),
    ('say "hi"\n\u00e9\u2603', 'say "hi"\n\u00e9\u2603'), (b"\x00\xff", {"$bytes": "AP8="}),
    ([1, {"a": b"x"}], [1, {"a": {"$bytes": "eA=="}}]), ({1: 2}, {"1": 2}),
]


@pytest.mark.parametrize(("value", "shown"), VALUES)
def test_every_value_is_valid_json(value: object, shown: object) -> None:
    spec = VariableSpec('we"ird/name', ValueType.ANY, Access.ALL, unit="°C", minimum=0)
    device = Device(7, "src", "k", 'Dev "1"', "t", [ChannelSpec(0, [spec], name="c\\h")],
                    None, {"note": "\u2603"}, {})
    variable = device.variable(0, 'we"ird/name')
    variable.value = value
    variable.timestamp = 12.5
    shown_variable = json.loads(_variable(variable, now=0.0))
    assert shown_variable["value"] == shown and shown_variable["known"] is True
    assert shown_variable["name"] == 'we"ird/name' and shown_variable["unit"] == "°C"
    shown_device = json.loads(_device(device, now=0.0))
    assert shown_device["name"] == 'Dev "1"' and shown_device["channels"][0]["name"] == "c\\h"
    assert shown_device["channels"][0]["variables"][0]["value"] == shown


def test_unknown_and_pending() -> None:
    spec = VariableSpec("x", ValueType.INT, Access.ALL)
    device = Device(1, "s", "k", "d", "", [ChannelSpec(0, [spec])], None, {}, {})
    variable = device.variable(0, "x")
    shown = json.loads(_variable(variable, now=0.0))
    assert shown["value"] is None and shown["known"] is False and shown["timestamp"] is None
    variable.pending, variable.pending_until = 5, 10.0
    shown = json.loads(_variable(variable, now=1.0))
    assert shown["value"] == 5 and shown["pending"] == 5 and shown["confirmed"] is None
    assert variable.value is UNKNOWN


def test_json_values_come_back_as_the_models() -> None:
    assert from_json({"$bytes": "AP8="}) == b"\x00\xff"
    assert from_json([{"a": {"$bytes": ""}}]) == [{"a": b""}]
    assert from_json({"$bytes": "x", "other": 1}) == {"$bytes": "x", "other": 1}
    with pytest.raises(BadValue, match="base64"):
        from_json({"$bytes": "!!"})
    with pytest.raises(BadValue, match="base64 string"):
        from_json({"$bytes": 5})
    assert to_json(UNKNOWN) is None
