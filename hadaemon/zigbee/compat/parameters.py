"""``pyziggy.parameters``: the typed parameter classes (hadaemon's, same names)."""

from __future__ import annotations

import enum
from typing import TypeVar

from hadaemon.zigbee.composite import (
    CompositeParameter,
    QueryableCompositeParameter,
    SettableAndQueryableCompositeParameter,
    SettableCompositeParameter,
)
from hadaemon.zigbee.params import (
    BinaryParameter,
    EnumParameter,
    ListParameter,
    NumericParameter,
    ParameterBase,
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

E = TypeVar("E", bound=enum.Enum)


def int_to_enum(enum_type: type[E], index: int) -> E:
    """The ``index``-th member of ``enum_type`` (pyziggy's helper)."""
    return list(enum_type)[index]


_int_to_enum = int_to_enum

__all__ = [
    "BinaryParameter", "CompositeParameter", "EnumParameter", "ListParameter",
    "NumericParameter", "ParameterBase", "QueryableBinaryParameter",
    "QueryableCompositeParameter", "QueryableEnumParameter", "QueryableListParameter",
    "QueryableNumericParameter", "QueryableTextParameter", "QueryableToggleParameter",
    "SettableAndQueryableBinaryParameter", "SettableAndQueryableCompositeParameter",
    "SettableAndQueryableEnumParameter", "SettableAndQueryableListParameter",
    "SettableAndQueryableNumericParameter", "SettableAndQueryableTextParameter",
    "SettableAndQueryableToggleParameter", "SettableBinaryParameter",
    "SettableCompositeParameter", "SettableEnumParameter", "SettableListParameter",
    "SettableNumericParameter", "SettableTextParameter", "SettableToggleParameter",
    "TextParameter", "ToggleParameter", "_int_to_enum", "int_to_enum",
]
