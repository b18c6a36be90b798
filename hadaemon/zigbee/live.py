"""The adapter's live model of the network: devices and groups as registry devices.

Each zigbee device (and group) is one registry device with a stable peer id, keyed by
IEEE address (groups: ``group:<id>``). Channel numbering, stable and documented:

- channel 0 holds the device-wide properties, named by their property (``state``,
  ``brightness``, ``color``), plus ``available`` (zigbee2mqtt's availability);
- channels 1, 2, ... are the device's endpoints (``l1``, ``l2``), numbered the first time
  the device is seen in endpoint-name order and persisted per IEEE address, so adding an
  endpoint later never renumbers the others. Their variables drop the endpoint suffix:
  ``state_l1`` is ``state`` in the ``l1`` channel.

Reports become ``registry.report`` calls (``action`` and other event exposes are declared
``is_event``, so every press is delivered), and registry writes become collated ``/set``
messages. Reactor thread only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred, gatherResults, succeed

from hadaemon.registry import (
    Access,
    ChannelSpec,
    Device,
    InvalidValue,
    ValueType,
    Variable,
    VariableSpec,
)
from hadaemon.sentinels import UNKNOWN, Unknown
from hadaemon.values import same
from hadaemon.zigbee.exposes import Feature
from hadaemon.zigbee.values import BadValue, decode, encode

if TYPE_CHECKING:
    from hadaemon.zigbee.devices import Device as DeviceView
    from hadaemon.zigbee.model import DeviceInfo
    from hadaemon.zigbee.network import Network

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


class LiveTarget:
    """A device or group as the adapter knows it; also its views' DeviceLink and the
    registry's DeviceOwner."""

    kind = "device"

    def __init__(self, network: Network, name: str, key: str, features: Sequence[Feature]) -> None:
        self.network = network
        self.name = name
        self.key = key
        self.ieee_address: str | None = None
        self.available: bool | Unknown = UNKNOWN
        self.features: dict[str, Feature] = {}
        self._reported: dict[str, Any] = {}
        self._expected: dict[str, Any] = {}
        self.views: list[DeviceView] = []
        self.registry_device: Device | None = None
        self.where: dict[str, tuple[int, str]] = {}
        self.prop_of: dict[tuple[int, str], str] = {}
        self.variables: dict[str, Variable] = {}  # prop -> its registry variable
        self.set_features(features)

    def set_features(self, features: Sequence[Feature]) -> None:
        self.features = {f.property: f for f in features}

    def bind_registry(self, device: Device | None) -> None:
        """The registry device standing for this target (None: unregistered)."""
        self.registry_device = device
        self.variables = {} if device is None else {
            prop: device.variable(channel, name) for prop, (channel, name) in self.where.items()
        }

    @property
    def peer_id(self) -> int | None:
        return self.registry_device.peer_id if self.registry_device is not None else None

    def feature_list(self) -> list[Feature]:
        return list(self.features.values())

    def feature(self, prop: str) -> Feature | None:
        return self.features.get(prop)

    def set_topic(self) -> str:
        return f"{self.network.base_topic}/{self.name}/set"

    def get_topic(self) -> str:
        return f"{self.network.base_topic}/{self.name}/get"

    def state_topic(self) -> str:
        return f"{self.network.base_topic}/{self.name}"

    # -- values (DeviceLink) -------------------------------------------------------------

    def current(self, path: tuple[str, ...]) -> Any:
        prop = path[0]
        expected = self._expected.get(prop, UNKNOWN)
        reported = self._reported.get(prop, UNKNOWN)
        if isinstance(expected, dict) or isinstance(reported, dict):
            merged = {**(reported if isinstance(reported, dict) else {}),
                      **(expected if isinstance(expected, dict) else {})}
            value: Any = merged if merged else UNKNOWN
        else:
            value = reported if expected is UNKNOWN else expected
        if len(path) > 1:
            return value.get(path[1], UNKNOWN) if isinstance(value, dict) else UNKNOWN
        return value

    def reported(self, path: tuple[str, ...]) -> Any:
        value = self._reported.get(path[0], UNKNOWN)
        if len(path) > 1:
            return value.get(path[1], UNKNOWN) if isinstance(value, dict) else UNKNOWN
        return value

    def request(self, path: tuple[str, ...], wire: Any, force: bool) -> Deferred[None]:
        """A set from an automation or the registry: collated, views told at turn end."""
        prop = path[0]
        before = _copy(self.current((prop,)))
        # The collator notes what the device had before this turn: ask it first.
        d = self.network.collator.request(self, path, wire, force=force)
        if len(path) == 1:
            if isinstance(wire, dict):
                expected = self._expected.get(prop)
                self._expected[prop] = {**(expected if isinstance(expected, dict) else {}),
                                        **wire}
            else:
                self._expected[prop] = wire
        else:
            expected = self._expected.get(prop)
            if not isinstance(expected, dict):
                expected = self._expected[prop] = {}
            expected[path[1]] = wire
        feature = self.features.get(prop)
        if feature is not None and not feature.readable:
            self._expected.pop(prop, None)  # write-only: nothing will ever confirm it
        after = self.current((prop,))
        if not same(before, after):
            self.network.local_change(self, prop, before, after)
        return d

    def query(self, prop: str) -> None:
        self.network.collator.query(self, prop)

    # -- reports -------------------------------------------------------------------------

    def apply_state(self, payload: Mapping[str, Any]) -> None:
        """A state message from zigbee2mqtt (the device's whole cached state, or a part)."""
        changes: list[tuple[str, Any, Any, bool]] = []
        registry = self.network.registry
        now = self.network.reactor.seconds()
        watched = bool(self.views)  # before/after only matter to automations' views
        variables = self.variables
        features = self.features
        reported = self._reported
        for prop, wire in payload.items():
            feature = features.get(prop)
            if feature is None:
                continue  # extras (last_seen, update, color_mode...)
            if wire is None:
                # "no value" (an effect that ended): what we asked for is not pending now
                self._expected.pop(prop, None)
                reported.pop(prop, None)
                continue
            if feature.is_event and wire == "":
                continue
            try:
                value, warning = decode(feature, wire)
            except BadValue as exc:
                self.network.warn_once(f"{self.name}: {exc} (ignored)", key=(self.key, prop))
                continue
            if warning:
                self.network.warn_once(f"{self.name}: {warning}", key=(self.key, prop, "w"))
            before = self.current((prop,)) if watched else None
            if feature.kind == "composite" and isinstance(wire, dict):
                old = reported.get(prop)
                reported[prop] = {**(old if isinstance(old, dict) else {}), **wire}
                value = decode(feature, reported[prop])[0]
            else:
                reported[prop] = wire
            if self._expected:
                self._expected.pop(prop, None)
            if watched:
                changes.append((prop, before, self.current((prop,)), feature.is_event))
            var = variables.get(prop)
            if var is not None:
                registry.report_to(var, value, timestamp=now)
        for view in list(self.views):
            for prop, before, after, event in changes:
                view._changed(prop, before, after, event)

    def set_available(self, available: bool) -> None:
        if self.available is available:
            return
        self.available = available
        if self.registry_device is not None:
            # (a device exposing its own "available" property keeps it)
            with contextlib.suppress(Exception):
                self.network.registry.report(self.registry_device.peer_id, 0, AVAILABLE,
                                             available)
        for view in list(self.views):
            view.on_availability_change._call_listeners()

    # -- DeviceOwner (registry writes from any world) ---------------------------------

    def write_values(self, device: Device, channel: int,
                     values: Mapping[str, Any]) -> Deferred[Any]:
        sets = []
        for name, value in values.items():
            prop = self.prop_of.get((channel, name))
            feature = self.features.get(prop) if prop else None
            if prop is None or feature is None:
                raise InvalidValue(f"{self.name}: channel {channel} has no settable {name!r}")
            try:
                wire = encode(feature, value)
            except BadValue as exc:
                raise InvalidValue(f"{self.name}: {exc}") from None
            sets.append((prop, wire))
        waits = [self.request((prop,), wire, force=True) for prop, wire in sets]
        return gatherResults(waits, consumeErrors=True).addCallback(lambda _: None)

    def query_values(self, device: Device, channel: int,
                     names: Sequence[str]) -> Deferred[Any]:
        for name in names:
            prop = self.prop_of.get((channel, name))
            if prop is not None:
                self.query(prop)
        return succeed(None)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} {self.key}>"


class LiveDevice(LiveTarget):
    kind = "device"
    info: DeviceInfo | None = None


class LiveGroup(LiveTarget):
    kind = "group"

    def __init__(self, network: Network, name: str, group_id: int,
                 features: Sequence[Feature], members: Sequence[str]) -> None:
        super().__init__(network, name, f"group:{group_id}", features)
        self.group_id = group_id
        self.members = list(members)


class UnboundTarget:
    """A name the network does not know (yet): sets still go out, by name."""

    def __init__(self, network: Network, kind: str, name: str) -> None:
        self.network = network
        self.kind = kind
        self.name = name

    def set_topic(self) -> str:
        return f"{self.network.base_topic}/{self.name}/set"

    def get_topic(self) -> str:
        return f"{self.network.base_topic}/{self.name}/get"

    def feature(self, prop: str) -> Feature | None:
        return None

    def current(self, path: tuple[str, ...]) -> Any:
        return UNKNOWN


def _copy(value: Any) -> Any:
    return dict(value) if isinstance(value, dict) else value


BRIDGE_CHANNELS = [
    ChannelSpec(0, [
        VariableSpec("online", ValueType.BOOL, Access.READ, label="Bridge online"),
        VariableSpec("permit_join", ValueType.BOOL, Access.READ | Access.WRITE,
                     label="Permit join"),
        VariableSpec("version", ValueType.STRING, Access.READ, label="zigbee2mqtt version"),
        VariableSpec("event", ValueType.STRUCT, Access.READ, is_event=True,
                     label="Bridge event"),
    ], name="bridge", type="bridge"),
]


class BridgeOwner:
    """The registry device standing for zigbee2mqtt itself; writing ``permit_join``
    sends a permit_join request."""

    def __init__(self, network: Network) -> None:
        self.network = network

    def write_values(self, device: Device, channel: int,
                     values: Mapping[str, Any]) -> Deferred[Any]:
        if set(values) - {"permit_join"}:
            raise InvalidValue("only permit_join can be written on the bridge")
        seconds = 254 if values["permit_join"] else 0
        return self.network.requests.request("permit_join", {"time": seconds})

    def query_values(self, device: Device, channel: int, names: Sequence[str]) -> None:
        return None
