"""Python names for zigbee2mqtt's free-form names: valid, keyword-safe, unique, stable.

Used by the code generator and by the dynamic device objects alike, so a generated
attribute and a dynamic one have the same name. ``"Lamp 1"`` and ``"lamp-1"`` both want
``lamp_1``: the first in sorted order keeps it, the other gets ``lamp_1_2``.
"""

from __future__ import annotations

import keyword
import re
import unicodedata
from collections.abc import Iterable

_NOT_WORD = re.compile(r"[^A-Za-z0-9_]+")
_UNDERSCORES = re.compile(r"_+")


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return _UNDERSCORES.sub("_", _NOT_WORD.sub("_", folded)).strip("_")


def identifier(text: str, *, lower: bool = True, prefix: str = "n", fallback: str = "x") -> str:
    """A valid, non-keyword Python identifier for ``text`` (not guaranteed unique)."""
    name = _ascii(str(text))
    if lower:
        name = name.lower()
    if not name:
        name = fallback
    if name[0].isdigit():
        name = f"{prefix}{name}" if prefix.endswith("_") else f"{prefix}_{name}"
    if keyword.iskeyword(name) or keyword.issoftkeyword(name) or name in ("None", "True",
                                                                           "False"):
        name += "_"
    return name


def class_name(text: str, *, fallback: str = "Device") -> str:
    """A CamelCase class name for ``text`` (``"TS011F_plug_1"`` -> ``Ts011fPlug1``)."""
    words = [w for w in _ascii(str(text)).split("_") if w]
    name = "".join(w[:1].upper() + w[1:] for w in words)
    if not name:
        name = fallback
    if name[0].isdigit():
        name = f"{fallback}{name}"
    if keyword.iskeyword(name):
        name += "_"
    return name


class Namer:
    """Hands out unique names: the first taker keeps a name, later ones get ``_2``, ``_3``;
    a reserved name (an attribute of the base class) gets a trailing ``_`` first."""

    def __init__(self, reserved: Iterable[str] = ()) -> None:
        self._reserved = frozenset(reserved)
        self._taken: set[str] = set(self._reserved)

    def take(self, wanted: str) -> str:
        if wanted in self._reserved:
            wanted += "_"
        name = wanted
        counter = 2
        while name in self._taken:
            name = f"{wanted}_{counter}"
            counter += 1
        self._taken.add(name)
        return name

    def __contains__(self, name: str) -> bool:
        return name in self._taken


_ENUM_RESERVED = frozenset({"name", "value", "mro"})


def enum_member_names(values: Iterable[object]) -> list[str]:
    """Enum member names for wire values, in order: ``"5+2"`` -> ``v_5_2``, ``10`` -> ``v_10``,
    ``"recall_*"`` -> ``recall``, keywords and clashes made safe and unique."""
    namer = Namer()
    names = []
    for value in values:
        name = identifier(str(value), lower=False, prefix="v", fallback="empty")
        if name in _ENUM_RESERVED:
            name += "_"  # legal or not, an enum member called "name" is a trap
        names.append(namer.take(name))
    return names
