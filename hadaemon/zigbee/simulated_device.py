"""A simulated device: its description, its state from plausible first values, and
the check zigbee2mqtt makes before it takes a value (access bits aside)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from hadaemon.values import same
from hadaemon.zigbee.exposes import Feature
from hadaemon.zigbee.model import DeviceInfo


class SimulatedDevice:
    """One device: its description and its state."""

    def __init__(self, raw: Mapping[str, Any], info: DeviceInfo) -> None:
        self.raw = dict(raw)
        self.info = info
        self.name = info.friendly_name
        self.features = {f.property: f for f in info.features}
        self.available = True
        self.state: dict[str, Any] = {}
        for feature in info.features:
            if feature.readable and not feature.is_event:
                self.state[feature.property] = initial_value(feature)

    @property
    def sleepy(self) -> bool:
        return self.info.battery_powered


def initial_value(feature: Feature) -> Any:
    """A plausible first value for a readable feature."""
    kind = feature.kind
    if kind == "binary":
        return feature.value_off
    if kind == "numeric":
        if feature.value_min is not None and feature.value_max is not None:
            middle = (feature.value_min + feature.value_max) / 2
            return int(middle) if feature.integer else round(middle, 2)
        if feature.unit == "°C":
            return 21.0
        return 0
    if kind == "enum":
        return feature.values[0] if feature.values else None
    if kind == "text":
        return ""
    if kind == "list":
        return []
    if kind == "composite":
        return {s.property: initial_value(s) for s in feature.features if s.readable}
    return None


def check_wire(feature: Feature, value: Any) -> str | None:
    """Why zigbee2mqtt would refuse ``value`` for ``feature`` (None if it is fine)."""
    kind = feature.kind
    if kind == "numeric":
        if isinstance(value, str):
            return None if any(value in (p.name, p.value) for p in feature.presets) else \
                f"{value!r} is not a number"
        if isinstance(value, bool) or not isinstance(value, int | float) or (
            isinstance(value, float) and not math.isfinite(value)
        ):
            return f"{value!r} is not a number"
        if any(same(value, p.value) for p in feature.presets):
            return None
        if feature.value_min is not None and value < feature.value_min:
            return f"{value!r} is below {feature.value_min}"
        if feature.value_max is not None and value > feature.value_max:
            return f"{value!r} is above {feature.value_max}"
        return None
    if kind == "binary":
        allowed = [feature.value_on, feature.value_off]
        if feature.value_toggle is not None:
            allowed.append(feature.value_toggle)
        if any(same(value, a) for a in allowed):
            return None
        return f"{value!r} is not one of {allowed!r}"
    if kind == "enum":
        if any(same(value, v) for v in feature.values):
            return None
        return f"{value!r} is not one of {list(feature.values)!r}"
    if kind == "text":
        return None if isinstance(value, str) else f"{value!r} is not text"
    if kind == "list":
        return None if isinstance(value, list) else f"{value!r} is not a list"
    if kind == "composite":
        if not isinstance(value, dict):
            return f"{value!r} is not an object"
        for key, sub_value in value.items():
            sub = feature.feature(key)
            if sub is None:
                return f"no feature {key!r}"
            problem = check_wire(sub, sub_value)
            if problem:
                return f"{key}: {problem}"
        return None
    return None


__all__ = ["SimulatedDevice", "check_wire", "initial_value"]
