"""Typed parameters with pyziggy's names and API, for automations.

A parameter is one property of a device (``devices.lamp.brightness``). Its class says
what it offers, from zigbee2mqtt's access bits: every parameter reads (``get``) and has
listeners; ``Settable...`` ones add ``set`` (and friends), ``Queryable...`` ones add
``query_device``. mypy therefore rejects a write to a read-only sensor before the
automation runs.

A value is :data:`~hadaemon.sentinels.UNKNOWN` (falsy) until the device first reports
it; after ``set`` it is the value asked for, until the device confirms it (or reports
another value later than a report already in flight could, or the registry's
``confirm_timeout`` passes). Values live in the registry, decoded: a parameter keeps
none, it reads its device's registry variable. Listeners
are called with no arguments when the value changes (and on every report of an event
such as a button's ``action``), always on the reactor thread.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Generic, TypeVar

from hadaemon.sentinels import UNKNOWN, Unknown
from hadaemon.values import same
from hadaemon.zigbee.broadcasters import Broadcaster, Caller, ListenerCancellationToken
from hadaemon.zigbee.exposes import GET, READ, SET, Feature, Preset, parse_feature
from hadaemon.zigbee.values import BadValue, clamp, encode, to_wire

E = TypeVar("E", bound=enum.Enum)
T = TypeVar("T")


class ValueUnknown(ValueError):
    """An operation needs the current value, and the device has not reported it yet."""


class ParameterHost:
    """What parameters hang off: a device, or a composite parameter."""

    def __init__(self) -> None:
        self._params: dict[str, ParameterBase] = {}

    def _host_device(self) -> DeviceBase:
        raise NotImplementedError

    def _host_path(self) -> tuple[str, ...]:
        return ()

    def _register(self, param: ParameterBase) -> None:
        self._params[param.get_property_name()] = param


class DeviceBase(ParameterHost):
    """The hooks a device offers its parameters (implemented by ``Device``)."""

    def _host_device(self) -> DeviceBase:
        return self

    def _value(self, path: tuple[str, ...]) -> Any:
        """The value get() shows, decoded: the one asked for, else the reported one."""
        raise NotImplementedError

    def _confirmed(self, path: tuple[str, ...]) -> Any:
        """The value the device last reported, decoded."""
        raise NotImplementedError

    def _request(self, path: tuple[str, ...], wire: Any, force: bool) -> None:
        raise NotImplementedError

    def _query(self, prop: str) -> None:
        raise NotImplementedError

    def _caller(self) -> Caller:
        raise NotImplementedError


class ParameterBase(Broadcaster):
    """Common to all parameters: the property, the feature, listeners, raw access."""

    _kind = "text"
    _default_access = READ

    def __init__(
        self,
        host: ParameterHost,
        property: str,
        *,
        access: int | None = None,
        name: str | None = None,
        label: str = "",
        unit: str | None = None,
        endpoint: str | None = None,
    ) -> None:
        super().__init__()
        self._host = host
        self._device = host._host_device()
        self._path = (*host._host_path(), property)
        self._property = property
        self._access = self._default_access if access is None else access
        self._name = name or property
        self._label = label
        self._unit = unit
        self._endpoint = endpoint
        self._always_call_listeners = False
        self._stale = False
        self._feature_cache: Feature | None = None
        host._register(self)

    # -- description ---------------------------------------------------------------------

    def get_property_name(self) -> str:
        """The key in the device's state (``brightness``, ``state_l1``)."""
        return self._property

    @property
    def feature(self) -> Feature:
        """The expose this parameter stands for."""
        if self._feature_cache is None:
            self._feature_cache = self._make_feature()
        return self._feature_cache

    def _make_feature(self) -> Feature:
        return Feature(self._kind, self._name, self._property, self._access,
                       endpoint=self._endpoint, label=self._label, unit=self._unit)

    @property
    def unit(self) -> str | None:
        return self._unit

    @property
    def is_event(self) -> bool:
        return self.feature.is_event or self._always_call_listeners

    # -- values ----------------------------------------------------------------------

    def get_raw(self) -> Any:
        """The current value as zigbee2mqtt sends it (UNKNOWN before any report)."""
        return self._wire(self._device._value(self._path))

    def get_reported_raw(self) -> Any:
        """The value the device last reported, as zigbee2mqtt sent it (ignoring a
        pending set)."""
        return self._wire(self._device._confirmed(self._path))

    def is_known(self) -> bool:
        return self._value() is not UNKNOWN

    def _value(self) -> Any:
        """The current value, decoded (UNKNOWN when none is known)."""
        value = self._device._value(self._path)
        return UNKNOWN if value is None else value

    def _wire(self, value: Any) -> Any:
        if value is UNKNOWN or value is None:
            return UNKNOWN
        return to_wire(self.feature, value)

    def _set_wire(self, wire: Any, force: bool = False) -> None:
        force = force or self._stale or not self.feature.readable
        self._stale = False
        self._device._request(self._path, wire, force)

    def mark_as_stale(self) -> None:
        """Send the next ``set`` even if the value seems unchanged (pyziggy's name);
        otherwise a set equal to what the device reported is not sent."""
        self._stale = True

    def set_always_call_listeners_on_report(self, value: bool) -> None:
        """Call listeners on every report, even of an unchanged value (pyziggy's name)."""
        self._always_call_listeners = value

    def _query_device(self) -> None:
        self._device._query(self._path[0])

    # -- listeners ---------------------------------------------------------------------

    def add_listener(
        self, callback: Callable[[], object], order: int = 100
    ) -> ListenerCancellationToken:
        """Call ``callback()`` when the value changes (every report, for events)."""
        self.caller = self._device._caller()
        return super().add_listener(callback, order)

    def _notify(self) -> None:
        if len(self):
            self.caller = self._device._caller()
            self._call_listeners()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {'.'.join(self._path)}={self.get_raw()!r}>"


# -- numeric ---------------------------------------------------------------------------


class NumericParameter(ParameterBase):
    _kind = "numeric"

    def __init__(
        self,
        host: ParameterHost,
        property: str,
        value_min: float | None = None,
        value_max: float | None = None,
        *,
        value_step: float | None = None,
        presets: Mapping[str, Any] | None = None,
        integer: bool | None = None,
        **kwargs: Any,
    ) -> None:
        self._min = value_min
        self._max = value_max
        self._step = value_step
        self._presets = dict(presets or {})
        self._integer = integer
        super().__init__(host, property, **kwargs)

    def _make_feature(self) -> Feature:
        base = super()._make_feature()
        feature = replace(
            base, value_min=self._min, value_max=self._max, value_step=self._step,
            presets=tuple(Preset(n, v) for n, v in self._presets.items()),
        )
        if self._integer is not None and feature.integer != self._integer:
            # keep the generator's verdict (it saw the original exposes)
            step = 1 if self._integer else (self._step or 0.5)
            feature = replace(feature, value_step=step if self._integer or self._step else None)
        return feature

    def get(self) -> float | Unknown:
        """The value (UNKNOWN until reported; a string preset shows as UNKNOWN, see
        ``get_preset``)."""
        value = self._value()
        return value if isinstance(value, int | float) else UNKNOWN

    def get_minimum(self) -> float | None:
        """The declared minimum (None when zigbee2mqtt declares none)."""
        return self._min

    def get_maximum(self) -> float | None:
        """The declared maximum (pyziggy returned the minimum here; this one does not)."""
        return self._max

    def get_step(self) -> float | None:
        return self._step

    @property
    def presets(self) -> dict[str, Any]:
        """Named values (``{"coolest": 153, "previous": 65535}``)."""
        return dict(self._presets)

    def get_preset(self) -> str | None:
        """The name of the preset the current value equals, if any."""
        current = self._value()
        for name, value in self._presets.items():
            if same(current, value) or same(current, name):
                return name
        return None

    def get_normalized(self) -> float | Unknown:
        """The value mapped to 0..1 over the declared range."""
        lo, hi = self._range()
        value = self.get()
        if isinstance(value, Unknown):
            return UNKNOWN
        return 0.0 if hi == lo else (value - lo) / (hi - lo)

    def _range(self) -> tuple[float, float]:
        if self._min is None or self._max is None:
            raise ValueError(
                f"{self._property} has no declared range (zigbee2mqtt gives none), so it "
                "cannot be normalized; use get()/set() with real values"
            )
        return self._min, self._max


class SettableNumericParameter(NumericParameter):
    _default_access = READ | SET

    def set(self, value: float) -> None:
        """Ask for ``value``, clamped to the declared range (collated with other sets)."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"{self._property}: expected a number, got {value!r}")
        wire = encode(self.feature, clamp(self.feature, value))
        self._set_wire(wire)

    def set_normalized(self, value: float) -> None:
        """``0.0`` is the minimum, ``1.0`` the maximum (clamped)."""
        lo, hi = self._range()
        self.set(lo + min(1.0, max(0.0, value)) * (hi - lo))

    def add(self, value: float) -> None:
        """``set(get() + value)``; raises ValueUnknown if nothing was reported yet."""
        current = self.get()
        if isinstance(current, Unknown):
            raise ValueUnknown(f"{self._property}: no value reported yet to add to")
        self.set(current + value)

    def add_normalized(self, value: float) -> None:
        current = self.get_normalized()
        if isinstance(current, Unknown):
            raise ValueUnknown(f"{self._property}: no value reported yet to add to")
        self.set_normalized(current + value)

    def set_preset(self, name: str) -> None:
        """Set a named preset (``"warmest"``, ``"previous"``)."""
        if name not in self._presets:
            raise BadValue(f"{self._property}: no preset {name!r} ({', '.join(self._presets)})")
        self._set_wire(self._presets[name])


class QueryableNumericParameter(NumericParameter):
    _default_access = READ | GET

    def query_device(self) -> None:
        """Ask the device to report this value (collated into one ``/get``)."""
        self._query_device()


class SettableAndQueryableNumericParameter(SettableNumericParameter, QueryableNumericParameter):
    _default_access = READ | SET | GET


# -- binary and toggle --------------------------------------------------------------------


class BinaryParameter(ParameterBase):
    """On/off. ``get()`` is a bool: the wire value itself for boolean binaries (the door
    sensor's ``contact``: True = closed), else True for ``value_on`` (``"ON"``)."""

    _kind = "binary"

    def __init__(
        self,
        host: ParameterHost,
        property: str,
        *,
        value_on: Any = True,
        value_off: Any = False,
        value_toggle: Any = None,
        **kwargs: Any,
    ) -> None:
        self._on, self._off, self._toggle = value_on, value_off, value_toggle
        super().__init__(host, property, **kwargs)

    def _make_feature(self) -> Feature:
        return replace(super()._make_feature(), value_on=self._on, value_off=self._off,
                       value_toggle=self._toggle)

    def get(self) -> bool | Unknown:
        value = self._value()
        return value if isinstance(value, bool) else UNKNOWN

    def is_on(self) -> bool | Unknown:
        """Whether the wire value is ``value_on`` (for inverted binaries, unlike get())."""
        raw: object = self.get_raw()
        if isinstance(raw, Unknown):
            return UNKNOWN
        return same(raw, self._on)

    def get_normalized(self) -> float | Unknown:
        value = self.get()
        return value if isinstance(value, Unknown) else float(value)


class SettableBinaryParameter(BinaryParameter):
    _default_access = READ | SET

    def set(self, value: bool | float) -> None:
        """True/1 for on (``value_on``), False/0 for off."""
        self._set_wire(encode(self.feature, bool(value)))

    def set_normalized(self, value: float) -> None:
        self.set(value >= 0.5)


class QueryableBinaryParameter(BinaryParameter):
    _default_access = READ | GET

    def query_device(self) -> None:
        self._query_device()


class SettableAndQueryableBinaryParameter(SettableBinaryParameter, QueryableBinaryParameter):
    _default_access = READ | SET | GET


class ToggleParameter(BinaryParameter):
    """A binary with a toggle value (``ON``/``OFF``/``TOGGLE``), as lights and switches."""


class SettableToggleParameter(SettableBinaryParameter, ToggleParameter):
    def toggle(self) -> None:
        """Flip it: zigbee2mqtt's ``TOGGLE`` when the device has one."""
        if self._toggle is not None:
            self._set_wire(self._toggle, force=True)
            return
        current = self.get()
        self.set(True if isinstance(current, Unknown) else not current)


class QueryableToggleParameter(QueryableBinaryParameter, ToggleParameter):
    pass


class SettableAndQueryableToggleParameter(SettableToggleParameter, QueryableToggleParameter):
    _default_access = READ | SET | GET


# -- enum ------------------------------------------------------------------------------


class EnumParameter(ParameterBase, Generic[E]):
    """One of a fixed set of values, as members of a Python ``Enum`` whose ``.value`` is
    the wire value (``PowerOnBehavior.previous.value == "previous"``)."""

    _kind = "enum"

    def __init__(self, host: ParameterHost, property: str, enum_type: type[E],
                 **kwargs: Any) -> None:
        self.enum_type = enum_type
        super().__init__(host, property, **kwargs)

    def _make_feature(self) -> Feature:
        return replace(super()._make_feature(),
                       values=tuple(member.value for member in self.enum_type))

    def get(self) -> E | Unknown:
        value = self._value()
        if isinstance(value, Unknown):
            return UNKNOWN
        for member in self.enum_type:
            if same(member.value, value):
                return member
        return UNKNOWN

    def get_enum_value(self) -> E | Unknown:
        """The value as an enum member (pyziggy's name)."""
        return self.get()

    def get_values(self) -> list[E]:
        return list(self.enum_type)

    def get_normalized(self) -> float | Unknown:
        value = self.get()
        if isinstance(value, Unknown):
            return UNKNOWN
        members = list(self.enum_type)
        return 0.0 if len(members) < 2 else members.index(value) / (len(members) - 1)


class SettableEnumParameter(EnumParameter[E]):
    _default_access = READ | SET

    def set(self, value: E | str | int) -> None:
        """A member, or its wire value (``"previous"``)."""
        wire = value.value if isinstance(value, enum.Enum) else value
        self._set_wire(encode(self.feature, wire))

    def set_enum_value(self, value: E) -> None:
        """pyziggy's name for ``set`` with a member."""
        self.set(value)

    def set_normalized(self, value: float) -> None:
        """0..1 over the members in their declared order (1.0 is the last, no IndexError)."""
        members = list(self.enum_type)
        if not members:
            raise ValueError(f"{self._property} has no values")
        index = round(min(1.0, max(0.0, value)) * (len(members) - 1))
        self.set(members[index])


class QueryableEnumParameter(EnumParameter[E]):
    _default_access = READ | GET

    def query_device(self) -> None:
        self._query_device()


class SettableAndQueryableEnumParameter(SettableEnumParameter[E], QueryableEnumParameter[E]):
    _default_access = READ | SET | GET


# -- text and list ---------------------------------------------------------------------------


class TextParameter(ParameterBase):
    _kind = "text"

    def get(self) -> str | Unknown:
        value = self._value()
        return value if isinstance(value, str) else UNKNOWN


class SettableTextParameter(TextParameter):
    _default_access = READ | SET

    def set(self, value: str) -> None:
        self._set_wire(encode(self.feature, value))


class QueryableTextParameter(TextParameter):
    _default_access = READ | GET

    def query_device(self) -> None:
        self._query_device()


class SettableAndQueryableTextParameter(SettableTextParameter, QueryableTextParameter):
    _default_access = READ | SET | GET


class ListParameter(ParameterBase, Generic[T]):
    """A list of items of one type: ``item`` is the expose of an item (zigbee2mqtt's
    ``item_type``, or its Feature); generated code names the Python type,
    ``SettableListParameter[float]``, so mypy checks what goes in and comes out."""

    _kind = "list"

    def __init__(self, host: ParameterHost, property: str, *,
                 length_min: int | None = None, length_max: int | None = None,
                 item: Feature | Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        self._length_min, self._length_max = length_min, length_max
        if isinstance(item, Mapping):
            problems: list[str] = []
            item = parse_feature(item, f"{property}.item_type", problems, nested=True,
                                 item=True)
            if item is None:
                raise ValueError("; ".join(problems))
        self._item = item
        super().__init__(host, property, **kwargs)

    def _make_feature(self) -> Feature:
        return replace(super()._make_feature(), length_min=self._length_min,
                       length_max=self._length_max, item=self._item)

    def get(self) -> list[T] | Unknown:
        value = self._value()
        return list(value) if isinstance(value, list) else UNKNOWN


class SettableListParameter(ListParameter[T]):
    _default_access = READ | SET

    def set(self, value: Sequence[T]) -> None:
        self._set_wire(encode(self.feature, list(value)))


class QueryableListParameter(ListParameter[T]):
    _default_access = READ | GET

    def query_device(self) -> None:
        self._query_device()


class SettableAndQueryableListParameter(SettableListParameter[T], QueryableListParameter[T]):
    _default_access = READ | SET | GET
