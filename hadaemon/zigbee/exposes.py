"""zigbee2mqtt's ``exposes``, parsed into plain, typed data (no I/O, no Twisted).

Every generic type (binary, numeric, enum, text, composite, list) and every specific one
(light, switch, lock, cover, fan, climate: their features are flattened into the
device's own list, remembering where they came from) becomes a :class:`Feature`.

Parsing never fails a whole device: an expose it cannot understand is skipped and
reported in ``problems`` (with the device and the expose's position), and the rest is
kept. Two composites writing the same property (``color_xy`` and ``color_hs`` both write
``color``) become one composite holding the features of both, so a set of ``x`` and of
``hue`` in one turn goes out as one ``color`` object instead of one overwriting the other.
"""

from __future__ import annotations

import builtins
import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from hadaemon.values import same

READ = 1  # the property appears in the published state
SET = 2  # it can be set with /set
GET = 4  # it can be asked for with /get

GENERIC = ("binary", "numeric", "enum", "text", "composite", "list")
SPECIFIC = ("light", "switch", "lock", "cover", "fan", "climate")
EVENT_NAMES = frozenset({"action", "click"})


@dataclass(frozen=True)
class Preset:
    """A named numeric value (``"coolest": 153``; values may be strings: ``"previous"``)."""

    name: str
    value: Any
    description: str = ""


@dataclass(frozen=True)
class Feature:
    """One expose: a property of the device's state, or a feature inside a composite."""

    kind: str
    name: str
    property: str
    access: int = READ
    endpoint: str | None = None
    label: str = ""
    description: str = ""
    category: str | None = None
    specific: str | None = None
    value_on: Any = True
    value_off: Any = False
    value_toggle: Any = None
    value_min: float | None = None
    value_max: float | None = None
    value_step: float | None = None
    unit: str | None = None
    presets: tuple[Preset, ...] = ()
    values: tuple[Any, ...] = ()
    features: tuple[Feature, ...] = ()
    groups: tuple[tuple[str, tuple[str, ...]], ...] = ()
    item: Feature | None = None
    length_min: int | None = None
    length_max: int | None = None

    @builtins.property
    def readable(self) -> bool:
        return bool(self.access & READ)

    @builtins.property
    def settable(self) -> bool:
        return bool(self.access & SET)

    @builtins.property
    def queryable(self) -> bool:
        return bool(self.access & GET)

    @functools.cached_property
    def base_name(self) -> str:
        """The property without its endpoint suffix (``state_l1`` -> ``state``)."""
        if self.endpoint and self.property.endswith(f"_{self.endpoint}"):
            stripped = self.property[: -len(self.endpoint) - 1]
            if stripped:
                return stripped
        return self.property

    @functools.cached_property
    def is_event(self) -> bool:
        """An event stream (a button's ``action``): every report counts, repeats included."""
        return self.base_name in EVENT_NAMES or self.name in EVENT_NAMES

    @functools.cached_property
    def boolean(self) -> bool:
        """A binary whose wire values are booleans (then the value IS the wire value)."""
        return isinstance(self.value_on, bool) and isinstance(self.value_off, bool)

    @functools.cached_property
    def integer(self) -> bool:
        """A numeric sent as an int: an integral step, or integral bounds and no step."""
        if self.kind != "numeric":
            return False
        if self.value_step is not None:
            return float(self.value_step).is_integer() and _integral(self.value_min) and \
                _integral(self.value_max)
        return (
            self.value_min is not None
            and self.value_max is not None
            and isinstance(self.value_min, int)
            and isinstance(self.value_max, int)
        )

    @builtins.property
    def has_range(self) -> bool:
        return self.value_min is not None and self.value_max is not None

    @builtins.property
    def string_presets(self) -> bool:
        return any(isinstance(p.value, str) for p in self.presets)

    def feature(self, prop: str) -> Feature | None:
        """The sub-feature of a composite writing key ``prop``."""
        for sub in self.features:
            if sub.property == prop:
                return sub
        return None


def _integral(value: float | None) -> bool:
    return value is None or float(value).is_integer()


@dataclass
class ParsedExposes:
    """The features of one device, and what was skipped and why."""

    features: list[Feature] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def by_property(self) -> dict[str, Feature]:
        return {f.property: f for f in self.features}


def parse_exposes(exposes: Any, where: str = "device") -> ParsedExposes:
    """Parse a device's ``definition.exposes`` list; never raises."""
    out = ParsedExposes()
    if exposes is None:
        return out
    if not isinstance(exposes, list):
        out.problems.append(f"{where}: exposes is not a list ({type(exposes).__name__})")
        return out
    flat: list[Feature] = []
    for index, raw in enumerate(exposes):
        flat.extend(_parse_top(raw, f"{where}: exposes[{index}]", out.problems))
    out.features = _merge(flat, where, out.problems)
    return out


def _parse_top(raw: Any, where: str, problems: list[str]) -> list[Feature]:
    if not isinstance(raw, Mapping):
        problems.append(f"{where}: not an object")
        return []
    kind = raw.get("type")
    if kind in SPECIFIC:
        features = raw.get("features")
        if not isinstance(features, list):
            problems.append(f"{where}: {kind} without a features list")
            return []
        endpoint = _opt_str(raw.get("endpoint"))
        found = []
        for index, sub in enumerate(features):
            parsed = parse_feature(
                sub, f"{where}.features[{index}]", problems, specific=str(kind), endpoint=endpoint
            )
            if parsed is not None:
                found.append(parsed)
        return found
    parsed = parse_feature(raw, where, problems)
    return [] if parsed is None else [parsed]


def parse_feature(  # noqa: PLR0915 - one branch per expose type, flat on purpose
    raw: Any,
    where: str,
    problems: list[str],
    *,
    specific: str | None = None,
    endpoint: str | None = None,
    nested: bool = False,
    item: bool = False,
) -> Feature | None:
    """One generic expose (or composite sub-feature, or list item type); None (and a
    problem) if unusable."""
    if not isinstance(raw, Mapping):
        problems.append(f"{where}: not an object")
        return None
    kind = raw.get("type")
    if kind not in GENERIC:
        shown = "nested " + str(kind) if kind in SPECIFIC else repr(kind)
        problems.append(f"{where}: unsupported expose type {shown}")
        return None
    prop = raw.get("property")
    name = raw.get("name")
    if not isinstance(prop, str) or not prop:
        if item or (kind == "list" and nested):
            # zigbee2mqtt's list item types never have a property (an item is no key
            # of the state): the name, if any, stands for it
            prop = name if isinstance(name, str) and name else "item"
        else:
            problems.append(f"{where}: {kind} expose without a property")
            return None
    if not isinstance(name, str) or not name:
        name = prop
    access = raw.get("access", READ)
    if isinstance(access, bool) or not isinstance(access, int) or not 0 <= access <= 7:
        problems.append(f"{where} ({prop}): invalid access {access!r}; assuming read-only")
        access = READ
    ep = _opt_str(raw.get("endpoint")) or endpoint
    common: dict[str, Any] = {
        "kind": kind,
        "name": name,
        "property": prop,
        "access": access,
        "endpoint": ep,
        "label": _str(raw.get("label")),
        "description": _str(raw.get("description")),
        "category": _opt_str(raw.get("category")),
        "specific": specific,
    }
    here = f"{where} ({prop})"
    if kind == "binary":
        if "value_on" not in raw or "value_off" not in raw:
            problems.append(f"{here}: binary without value_on/value_off; assuming true/false")
        on, off = raw.get("value_on", True), raw.get("value_off", False)
        if on == off and type(on) is type(off):
            problems.append(f"{here}: value_on equals value_off ({on!r})")
            return None
        return Feature(**common, value_on=on, value_off=off, value_toggle=raw.get("value_toggle"))
    if kind == "numeric":
        bounds: dict[str, Any] = {}
        for key in ("value_min", "value_max", "value_step"):
            value = raw.get(key)
            if value is not None and not _number(value):
                problems.append(f"{here}: {key} {value!r} is not a number; ignored")
                value = None
            bounds[key] = value
        if bounds["value_step"] is not None and bounds["value_step"] <= 0:
            bounds["value_step"] = None
        lo, hi = bounds["value_min"], bounds["value_max"]
        if lo is not None and hi is not None and lo > hi:
            problems.append(f"{here}: value_min {lo} > value_max {hi}; range ignored")
            bounds["value_min"] = bounds["value_max"] = None
        presets = []
        for preset in raw.get("presets") or ():
            if (isinstance(preset, Mapping) and isinstance(preset.get("name"), str)
                    and (_number(preset.get("value")) or isinstance(preset.get("value"), str))):
                presets.append(Preset(preset["name"], preset["value"],
                                      _str(preset.get("description"))))
            else:
                problems.append(f"{here}: invalid preset {preset!r} ignored")
        return Feature(**common, **bounds, unit=_opt_str(raw.get("unit")), presets=tuple(presets))
    if kind == "enum":
        values = raw.get("values")
        if not isinstance(values, list):
            problems.append(f"{here}: enum without a values list")
            return None
        kept: list[Any] = []
        for value in values:
            if isinstance(value, str) or _number(value):
                if not any(same(value, v) for v in kept):
                    kept.append(value)
            else:
                problems.append(f"{here}: enum value {value!r} ignored")
        return Feature(**common, values=tuple(kept))
    if kind == "text":
        return Feature(**common)
    if kind == "composite":
        raw_features = raw.get("features")
        if not isinstance(raw_features, list):
            problems.append(f"{here}: composite without a features list")
            return None
        subs: list[Feature] = []
        for index, sub in enumerate(raw_features):
            parsed = parse_feature(sub, f"{where}.features[{index}]", problems,
                                   endpoint=None, nested=True)
            if parsed is None:
                continue
            if any(s.property == parsed.property for s in subs):
                problems.append(f"{here}: duplicate feature {parsed.property!r} ignored")
                continue
            subs.append(parsed)
        return Feature(**common, features=tuple(subs),
                       groups=((name, tuple(s.property for s in subs)),))
    # list
    item_raw = raw.get("item_type")
    item_type = None
    if item_raw is not None:
        item_type = parse_feature(item_raw, f"{where}.item_type", problems, nested=True,
                                  item=True)
    lengths: dict[str, Any] = {}
    for key in ("length_min", "length_max"):
        value = raw.get(key)
        lengths[key] = value if isinstance(value, int) and not isinstance(value, bool) else None
    return Feature(**common, item=item_type, **lengths)


def as_expose(feature: Feature) -> dict[str, Any]:
    """The expose a feature was parsed from (what matters of it): ``parse_feature`` of
    the result gives the feature back. Generated code carries list item types this way."""
    out: dict[str, Any] = {"type": feature.kind, "name": feature.name,
                           "property": feature.property, "access": feature.access}
    for key in ("endpoint", "label", "description", "category"):
        if getattr(feature, key):
            out[key] = getattr(feature, key)
    if feature.kind == "binary":
        out.update(value_on=feature.value_on, value_off=feature.value_off)
        if feature.value_toggle is not None:
            out["value_toggle"] = feature.value_toggle
    elif feature.kind == "numeric":
        for key in ("value_min", "value_max", "value_step", "unit"):
            if getattr(feature, key) is not None:
                out[key] = getattr(feature, key)
        if feature.presets:
            out["presets"] = [{"name": p.name, "value": p.value, "description": p.description}
                              for p in feature.presets]
    elif feature.kind == "enum":
        out["values"] = list(feature.values)
    elif feature.kind == "composite":
        out["features"] = [as_expose(sub) for sub in feature.features]
    elif feature.kind == "list":
        if feature.item is not None:
            out["item_type"] = as_expose(feature.item)
        for key in ("length_min", "length_max"):
            if getattr(feature, key) is not None:
                out[key] = getattr(feature, key)
    return out


def _merge(features: Iterable[Feature], where: str, problems: list[str]) -> list[Feature]:
    """One feature per property: same-property composites merge, other duplicates drop."""
    out: list[Feature] = []
    index: dict[str, int] = {}
    for feature in features:
        at = index.get(feature.property)
        if at is None:
            index[feature.property] = len(out)
            out.append(feature)
            continue
        existing = out[at]
        if existing.kind == "composite" and feature.kind == "composite":
            subs = list(existing.features)
            for sub in feature.features:
                if all(s.property != sub.property for s in subs):
                    subs.append(sub)
            out[at] = replace(
                existing,
                name=existing.property,
                access=existing.access | feature.access,
                features=tuple(subs),
                groups=existing.groups + feature.groups,
                label=existing.label if existing.name == existing.property else
                existing.property.replace("_", " ").capitalize(),
            )
        else:
            problems.append(
                f"{where}: property {feature.property!r} exposed twice ({existing.kind} "
                f"{existing.name!r} and {feature.kind} {feature.name!r}); keeping the first"
            )
    return out


def _number(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and not (isinstance(value, float) and not math.isfinite(value))
    )


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _opt_str(value: Any) -> str | None:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def shared_features(members: Sequence[Sequence[Feature]]) -> list[Feature]:
    """What every member of a group can do: features present (by base name and kind)
    in all members, with the narrowest range, common enum values and common access.

    Endpoint suffixes are dropped: a group command ``state`` reaches each member's
    grouped endpoint (zigbee2mqtt's own rule)."""
    if not members:
        return []
    first, *rest = members
    out: list[Feature] = []
    for feature in first:
        candidates = [feature]
        for other in rest:
            match = next(
                (f for f in other if f.base_name == feature.base_name and f.kind == feature.kind),
                None,
            )
            if match is None:
                break
            candidates.append(match)
        else:
            out.append(_intersect(feature, candidates))
    return out


def _intersect(feature: Feature, candidates: list[Feature]) -> Feature:
    access = READ | SET | GET
    for c in candidates:
        access &= c.access
    merged = replace(feature, property=feature.base_name, endpoint=None, access=access)
    if feature.kind == "numeric":
        mins = [c.value_min for c in candidates if c.value_min is not None]
        maxs = [c.value_max for c in candidates if c.value_max is not None]
        lo = max(mins) if len(mins) == len(candidates) else None
        hi = min(maxs) if len(maxs) == len(candidates) else None
        if lo is not None and hi is not None and lo > hi:
            lo = hi = None
        merged = replace(merged, value_min=lo, value_max=hi)
    elif feature.kind == "enum":
        common = [v for v in feature.values if all(v in c.values for c in candidates)]
        merged = replace(merged, values=tuple(common))
    elif feature.kind == "composite":
        subs = [s for s in feature.features
                if all(c.feature(s.property) is not None for c in candidates)]
        merged = replace(merged, features=tuple(subs))
    return merged
