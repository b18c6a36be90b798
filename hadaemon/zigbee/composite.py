"""Composite parameters: an object-valued property whose keys are parameters too."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from hadaemon.sentinels import UNKNOWN, Unknown
from hadaemon.zigbee.exposes import GET, READ, SET, Feature
from hadaemon.zigbee.params import DeviceBase, ParameterBase, ParameterHost
from hadaemon.zigbee.values import BadValue


class CompositeParameter(ParameterBase, ParameterHost):
    """An object-valued property (``color``, ``level_config``) whose keys are parameters
    of their own: ``devices.bulb.color.x.set(0.3)``. Sets of several keys in one turn go
    out as one object; keys that belong together (``x`` with ``y``) are sent together."""

    _kind = "composite"

    def __init__(
        self,
        host: ParameterHost,
        property: str,
        *,
        groups: Sequence[tuple[str, Sequence[str]]] = (),
        **kwargs: Any,
    ) -> None:
        ParameterHost.__init__(self)
        self._groups = tuple((name, tuple(props)) for name, props in groups)
        super().__init__(host, property, **kwargs)

    def _host_device(self) -> DeviceBase:
        return self._host._host_device()

    def _host_path(self) -> tuple[str, ...]:
        return self._path

    def _register(self, param: ParameterBase) -> None:
        super()._register(param)
        self._feature_cache = None

    def _make_feature(self) -> Feature:
        subs = tuple(p.feature for p in self._params.values())
        groups = self._groups or ((self._name, tuple(s.property for s in subs)),)
        return replace(super()._make_feature(), features=subs, groups=groups)

    def get_parameters(self) -> list[ParameterBase]:
        return list(self._params.values())

    def get(self) -> dict[str, Any] | Unknown:
        value = self._value()
        return dict(value) if isinstance(value, dict) else UNKNOWN

    def mark_as_stale(self) -> None:
        super().mark_as_stale()
        for param in self._params.values():
            param.mark_as_stale()


class SettableCompositeParameter(CompositeParameter):
    _default_access = READ | SET

    def set(self, value: Mapping[str, Any]) -> None:
        """Set several keys at once: ``color.set({"x": 0.3, "y": 0.4})``."""
        for key, sub_value in value.items():
            param = self._params.get(key)
            if param is None:
                raise BadValue(f"{self._property}: no feature {key!r} "
                               f"(it has {', '.join(self._params)})")
            setter = getattr(param, "set", None)
            if setter is None:
                raise BadValue(f"{self._property}.{key} is read-only")
            setter(sub_value)


class QueryableCompositeParameter(CompositeParameter):
    _default_access = READ | GET

    def query_device(self) -> None:
        self._query_device()


class SettableAndQueryableCompositeParameter(SettableCompositeParameter,
                                             QueryableCompositeParameter):
    _default_access = READ | SET | GET
