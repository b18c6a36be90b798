"""Values between zigbee2mqtt's wire format and Python, per :class:`Feature` (no I/O).

``decode`` reads a reported value (lenient: a device may report outside its declared
range, and preset strings like ``"previous"`` are values too); ``encode`` makes the wire
value for a set (strict: it is checked before anything is sent).

Binaries: when ``value_on``/``value_off`` are booleans the value is the wire value itself
(the door sensor's inverted ``contact`` stays ``True`` = closed, as the device says);
otherwise ``True`` means ``value_on`` (``"ON"``, ``"LOCK"``) and ``False`` ``value_off``.
"""

from __future__ import annotations

import math
from typing import Any

from hadaemon.values import same
from hadaemon.zigbee.exposes import Feature


class BadValue(ValueError):
    """A value that does not fit the feature; the message names the property."""


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def decode(feature: Feature, wire: Any) -> tuple[Any, str | None]:
    """A reported wire value as a Python value, and a warning if it looked odd.

    Raises BadValue when the value cannot be used at all (it is then dropped).
    """
    kind = feature.kind
    if kind == "numeric":
        # The common reports first, without a call: an int (bool is a type of its own),
        # a finite float where any number goes. benchmarks/zigbee_path.py ingest (six
        # numbers a message) under callgrind, see docs/mqtt.md "Measured".
        kind_of = type(wire)
        if kind_of is int or (kind_of is float and not feature.integer
                              and wire - wire == 0.0):  # inf - inf and nan are nan
            return wire, None
    prop = feature.property
    if kind == "numeric":
        if _is_number(wire):
            if isinstance(wire, float) and not math.isfinite(wire):
                raise BadValue(f"{prop}: {wire!r} is not a finite number")
            if feature.integer and isinstance(wire, float) and wire.is_integer():
                return int(wire), None
            return wire, None
        if isinstance(wire, str) and any(wire in (p.value, p.name) for p in feature.presets):
            return wire, None
        raise BadValue(f"{prop}: expected a number, got {wire!r}")
    if kind == "binary":
        if feature.boolean:
            if isinstance(wire, bool):
                return wire, None
            raise BadValue(f"{prop}: expected true or false, got {wire!r}")
        if same(wire, feature.value_on):
            return True, None
        if same(wire, feature.value_off):
            return False, None
        raise BadValue(
            f"{prop}: expected {feature.value_on!r} or {feature.value_off!r}, got {wire!r}"
        )
    if kind == "enum":
        if any(same(wire, v) for v in feature.values):
            return wire, None
        if isinstance(wire, str) or _is_number(wire):
            # Kept (an event must not be lost because a firmware added a value).
            return wire, f"{prop}: {wire!r} is not one of the declared values"
        raise BadValue(f"{prop}: expected one of {list(feature.values)!r}, got {wire!r}")
    if kind == "text":
        if isinstance(wire, str):
            return wire, None
        return wire, f"{prop}: expected text, got {type(wire).__name__}"
    if kind == "list":
        if not isinstance(wire, list):
            raise BadValue(f"{prop}: expected a list, got {wire!r}")
        return (wire, None) if feature.item is None else _decode_items(feature.item, prop, wire)
    if kind == "composite":
        if not isinstance(wire, dict):
            raise BadValue(f"{prop}: expected an object, got {wire!r}")
        out: dict[str, Any] = {}
        warnings: list[str] = []
        for key, value in wire.items():
            sub = feature.feature(key)
            if sub is None or value is None:
                out[key] = value
                continue
            try:
                out[key], warning = decode(sub, value)
            except BadValue as exc:
                warnings.append(f"{prop}.{exc}")
                continue
            if warning:
                warnings.append(f"{prop}.{warning}")
        return out, "; ".join(warnings) or None
    return wire, None


def _decode_items(item: Feature, prop: str, wire: list[Any]) -> tuple[list[Any], str | None]:
    items: list[Any] = []
    odd: list[str] = []
    for index, raw in enumerate(wire):
        try:
            value, warning = decode(item, raw)
        except BadValue as exc:
            value, warning = raw, str(exc)  # kept as sent: one odd item drops nothing
        items.append(value)
        if warning:
            odd.append(f"{prop}[{index}]: {warning}")
    return items, "; ".join(odd) or None


def to_wire(feature: Feature, value: Any) -> Any:
    """A decoded value back in zigbee2mqtt's form, as the device would report it (the
    inverse of :func:`decode`, lenient as it is: what decode kept as sent stays so)."""
    kind = feature.kind
    if kind == "binary":
        if value is True and not feature.boolean:
            return feature.value_on
        if value is False and not feature.boolean:
            return feature.value_off
        return value
    if kind == "list" and feature.item is not None and isinstance(value, list):
        item = feature.item
        return [to_wire(item, v) for v in value]
    if kind == "composite" and isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, sub_value in value.items():
            sub = feature.feature(key)
            out[key] = sub_value if sub is None or sub_value is None else to_wire(sub, sub_value)
        return out
    return value


def encode(feature: Feature, value: Any) -> Any:
    """The wire value to set ``feature`` to ``value``; raises BadValue (nothing is sent)."""
    kind = feature.kind
    prop = feature.property
    if kind == "numeric":
        if isinstance(value, str):
            for preset in feature.presets:
                if value in (preset.name, preset.value):
                    return preset.value
            names = [p.name for p in feature.presets]
            raise BadValue(
                f"{prop}: {value!r} is not a number"
                + (f" nor a preset ({', '.join(names)})" if names else "")
            )
        if not _is_number(value) or (isinstance(value, float) and not math.isfinite(value)):
            raise BadValue(f"{prop}: expected a number, got {value!r}")
        if any(same(value, p.value) for p in feature.presets):
            return value  # presets may lie outside the range (color_temp_startup 65535)
        if feature.value_min is not None and value < feature.value_min:
            raise BadValue(f"{prop}: {value!r} is below the minimum {feature.value_min!r}")
        if feature.value_max is not None and value > feature.value_max:
            raise BadValue(f"{prop}: {value!r} is above the maximum {feature.value_max!r}")
        if feature.integer:
            return round(value)
        return value
    if kind == "binary":
        if isinstance(value, bool) or (_is_number(value) and value in (0, 1)):
            on = bool(value)
            return feature.value_on if on else feature.value_off
        for wire in (feature.value_on, feature.value_off, feature.value_toggle):
            if wire is not None and same(value, wire):
                return wire
        raise BadValue(
            f"{prop}: expected true/false, {feature.value_on!r} or {feature.value_off!r}, "
            f"got {value!r}"
        )
    if kind == "enum":
        for wire in feature.values:
            if same(value, wire):
                return wire
        raise BadValue(f"{prop}: expected one of {list(feature.values)!r}, got {value!r}")
    if kind == "text":
        if isinstance(value, str):
            return value
        raise BadValue(f"{prop}: expected text, got {value!r}")
    if kind == "list":
        if not isinstance(value, list | tuple):
            raise BadValue(f"{prop}: expected a list, got {value!r}")
        items = list(value)
        if feature.length_min is not None and len(items) < feature.length_min:
            raise BadValue(f"{prop}: at least {feature.length_min} items, got {len(items)}")
        if feature.length_max is not None and len(items) > feature.length_max:
            raise BadValue(f"{prop}: at most {feature.length_max} items, got {len(items)}")
        if feature.item is not None and feature.item.kind != "composite":
            items = [encode(feature.item, item) for item in items]
        return items
    if kind == "composite":
        if not isinstance(value, dict):
            raise BadValue(f"{prop}: expected an object, got {value!r}")
        out: dict[str, Any] = {}
        for key, sub_value in value.items():
            sub = feature.feature(key)
            if sub is None:
                known = ", ".join(s.property for s in feature.features)
                raise BadValue(f"{prop}: no feature {key!r} (it has {known})")
            if not sub.settable and sub.access:
                raise BadValue(f"{prop}.{key} is read-only")
            out[key] = encode(sub, sub_value)
        return out
    return value


def clamp(feature: Feature, value: float) -> float:
    """``value`` limited to the feature's declared range (pyziggy's ``set`` clamps)."""
    if feature.value_min is not None:
        value = max(feature.value_min, value)
    if feature.value_max is not None:
        value = min(feature.value_max, value)
    return value

