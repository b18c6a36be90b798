"""Where a zigbee device's features go in the registry: channels and variables.

Channel numbering, stable and documented:

- channel 0 holds the device-wide properties, named by their property (``state``,
  ``brightness``, ``color``), plus ``available`` (zigbee2mqtt's availability);
- channels 1, 2, ... are the device's endpoints (``l1``, ``l2``), numbered the first time
  the device is seen in endpoint-name order and persisted per IEEE address (by the
  network's roster), so adding an endpoint later never renumbers the others. Their
  variables drop the endpoint suffix: ``state_l1`` is ``state`` in the ``l1`` channel.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hadaemon.registry import Access, ChannelSpec, ValueType, VariableSpec
from hadaemon.zigbee.exposes import Feature

AVAILABLE = "available"


def variable_spec(feature: Feature, name: str) -> VariableSpec:
    """The registry's description of a feature."""
    kind = feature.kind
    extra: dict[str, Any] = {"property": feature.property, "kind": kind}
    vtype = ValueType.ANY
    values: tuple[Any, ...] = ()
    if kind == "numeric":
        if feature.string_presets:
            vtype = ValueType.ANY  # a number or a preset name ("previous")
        else:
            vtype = ValueType.INT if feature.integer else ValueType.FLOAT
        if feature.presets:
            extra["presets"] = {p.name: p.value for p in feature.presets}
    elif kind == "binary":
        vtype = ValueType.BOOL
        extra.update(value_on=feature.value_on, value_off=feature.value_off)
        if feature.value_toggle is not None:
            extra["value_toggle"] = feature.value_toggle
    elif kind == "enum":
        vtype, values = ValueType.ENUM, feature.values
    elif kind == "text":
        vtype = ValueType.STRING
    elif kind == "list":
        vtype = ValueType.ARRAY
    elif kind == "composite":
        vtype = ValueType.STRUCT
        extra["features"] = [f.property for f in feature.features]
    if feature.endpoint:
        extra["endpoint"] = feature.endpoint
    return VariableSpec(
        name,
        vtype,
        Access(feature.access & 7),
        unit=feature.unit,
        minimum=feature.value_min,
        maximum=feature.value_max,
        step=feature.value_step,
        values=values,
        is_event=feature.is_event,
        label=feature.label,
        extra=extra,
    )


def registry_layout(
    features: Sequence[Feature], endpoint_channels: Mapping[str, int], *, availability: bool
) -> tuple[list[ChannelSpec], dict[str, tuple[int, str]]]:
    """Channels for a device's features, and where each property went."""
    by_channel: dict[int, list[VariableSpec]] = {0: []}
    names: dict[int, set[str]] = {0: set()}
    where: dict[str, tuple[int, str]] = {}
    for feature in features:
        channel = endpoint_channels.get(feature.endpoint, 0) if feature.endpoint else 0
        name = feature.property if channel == 0 else feature.base_name
        taken = names.setdefault(channel, set())
        if name in taken:
            name = feature.property
        if name in taken:
            continue
        taken.add(name)
        by_channel.setdefault(channel, []).append(variable_spec(feature, name))
        where[feature.property] = (channel, name)
    if availability and AVAILABLE not in names[0]:
        by_channel[0].append(VariableSpec(AVAILABLE, ValueType.BOOL, Access.READ,
                                          label="Available"))
    endpoint_names = {number: name for name, number in endpoint_channels.items()}
    channels = [
        ChannelSpec(index, specs, name=endpoint_names.get(index, ""),
                    type=_channel_type(features, endpoint_names.get(index)))
        for index, specs in sorted(by_channel.items())
    ]
    return channels, where


def _channel_type(features: Sequence[Feature], endpoint: str | None) -> str:
    kinds = sorted({f.specific for f in features if f.specific and f.endpoint == endpoint})
    return ",".join(kinds)


__all__ = ["AVAILABLE", "registry_layout", "variable_spec"]
