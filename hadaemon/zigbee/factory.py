"""Parameter objects from exposes: the class a feature gets, and dynamic construction
(devices without generated code; the generator uses the same choice of class)."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Any

from hadaemon.zigbee.composite import (
    CompositeParameter,
    QueryableCompositeParameter,
    SettableAndQueryableCompositeParameter,
    SettableCompositeParameter,
)
from hadaemon.zigbee.exposes import Feature
from hadaemon.zigbee.params import (
    BinaryParameter,
    EnumParameter,
    ListParameter,
    NumericParameter,
    ParameterBase,
    ParameterHost,
    QueryableBinaryParameter,
    QueryableEnumParameter,
    QueryableListParameter,
    QueryableNumericParameter,
    QueryableTextParameter,
    QueryableToggleParameter,
    SettableAndQueryableBinaryParameter,
    SettableAndQueryableEnumParameter,
    SettableAndQueryableListParameter,
    SettableAndQueryableNumericParameter,
    SettableAndQueryableTextParameter,
    SettableAndQueryableToggleParameter,
    SettableBinaryParameter,
    SettableEnumParameter,
    SettableListParameter,
    SettableNumericParameter,
    SettableTextParameter,
    SettableToggleParameter,
    TextParameter,
    ToggleParameter,
)

_CLASSES: dict[str, tuple[type[ParameterBase], ...]] = {
    # read, settable, queryable, settable and queryable
    "numeric": (NumericParameter, SettableNumericParameter, QueryableNumericParameter,
                SettableAndQueryableNumericParameter),
    "binary": (BinaryParameter, SettableBinaryParameter, QueryableBinaryParameter,
               SettableAndQueryableBinaryParameter),
    "toggle": (ToggleParameter, SettableToggleParameter, QueryableToggleParameter,
               SettableAndQueryableToggleParameter),
    "enum": (EnumParameter, SettableEnumParameter, QueryableEnumParameter,
             SettableAndQueryableEnumParameter),
    "text": (TextParameter, SettableTextParameter, QueryableTextParameter,
             SettableAndQueryableTextParameter),
    "list": (ListParameter, SettableListParameter, QueryableListParameter,
             SettableAndQueryableListParameter),
    "composite": (CompositeParameter, SettableCompositeParameter,
                  QueryableCompositeParameter, SettableAndQueryableCompositeParameter),
}


def parameter_class_name(feature: Feature) -> str:
    """The class a feature gets (by kind and access bits); the generator uses it too."""
    return parameter_class(feature).__name__


def parameter_class(feature: Feature) -> type[ParameterBase]:
    kind = feature.kind
    if kind == "binary" and feature.value_toggle is not None:
        kind = "toggle"
    variants = _CLASSES.get(kind, _CLASSES["text"])
    return variants[(1 if feature.settable else 0) + (2 if feature.queryable else 0)]


def make_enum(name: str, values: Sequence[Any]) -> type[enum.Enum]:
    """An Enum whose members carry the wire values, with safe member names."""
    from hadaemon.zigbee.naming import class_name, enum_member_names

    members = list(zip(enum_member_names(values), values, strict=True))
    made: type[enum.Enum] = enum.Enum(class_name(name, fallback="Values"), members)  # type: ignore[misc]
    return made


def build_parameter(host: ParameterHost, feature: Feature, attribute: str = "") -> ParameterBase:
    """A parameter object for ``feature`` (sub-features of composites included)."""
    cls: Any = parameter_class(feature)
    common: dict[str, Any] = {
        "access": feature.access, "name": feature.name, "label": feature.label,
        "unit": feature.unit, "endpoint": feature.endpoint,
    }
    param: ParameterBase
    if feature.kind == "numeric":
        presets = {p.name: p.value for p in feature.presets}
        param = cls(host, feature.property, feature.value_min, feature.value_max,
                    value_step=feature.value_step, presets=presets, integer=feature.integer,
                    **common)
    elif feature.kind == "binary":
        param = cls(host, feature.property, value_on=feature.value_on,
                    value_off=feature.value_off, value_toggle=feature.value_toggle, **common)
    elif feature.kind == "enum":
        param = cls(host, feature.property, make_enum(attribute or feature.name,
                                                      feature.values), **common)
    elif feature.kind == "list":
        param = cls(host, feature.property, length_min=feature.length_min,
                    length_max=feature.length_max, item=feature.item, **common)
    elif feature.kind == "composite":
        from hadaemon.zigbee.naming import Namer, identifier

        param = cls(host, feature.property, groups=feature.groups, **common)
        assert isinstance(param, CompositeParameter)
        namer = Namer(reserved=[n for n in dir(param) if not n.startswith("__")])
        for sub in feature.features:
            name = namer.take(identifier(sub.name, fallback="feature"))
            setattr(param, name, build_parameter(param, sub, name))
    else:
        param = cls(host, feature.property, **common)
    return param
