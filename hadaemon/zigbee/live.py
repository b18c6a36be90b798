"""The adapter's live model of the network: devices and groups as registry devices.

Each zigbee device (and group) is one registry device with a stable peer id, keyed by
IEEE address (groups: ``group:<id>``); its channels and variables are laid out by
:mod:`hadaemon.zigbee.layout` (channel 0 device-wide, then one per endpoint; its names
re-exported here).

Reports become ``registry.report_to`` calls (``action`` and other event exposes are
declared ``is_event``, so every press is delivered), and registry writes become collated
``/set`` messages. The registry owns the state: what was reported and what was asked
(an automation's set is a pending write there too); nothing here keeps a value.
Reactor thread only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred, succeed

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
from hadaemon.zigbee.layout import AVAILABLE, registry_layout, variable_spec
from hadaemon.zigbee.values import BadValue, decode, encode, to_wire

if TYPE_CHECKING:
    from hadaemon.zigbee.devices import Device as DeviceView
    from hadaemon.zigbee.model import DeviceInfo
    from hadaemon.zigbee.network_base import NetworkBase


class LiveTarget:
    """A device or group as the adapter knows it; also its views' DeviceLink and the
    registry's DeviceOwner.

    It keeps no values: what the device reported and what was asked of it are its
    registry variables' (``value``, ``pending``), decoded; views read them there, and the
    collator reads them in wire form (:meth:`current`) to judge what changed."""

    kind = "device"

    def __init__(self, network: NetworkBase, name: str, key: str,
                 features: Sequence[Feature]) -> None:
        self.network = network
        self.name = name
        self.key = key
        self.ieee_address: str | None = None
        self.available: bool | Unknown = UNKNOWN
        self.features: dict[str, Feature] = {}
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

    # -- values (DeviceLink), read from the registry -------------------------------------

    def value(self, path: tuple[str, ...]) -> Any:
        """What reads see (a pending write, else the confirmed value), decoded."""
        var = self.variables.get(path[0])
        if var is None:
            return UNKNOWN
        return _at(self.network.registry.current(var), path)

    def confirmed(self, path: tuple[str, ...]) -> Any:
        """What the device last reported, decoded (ignoring a pending write)."""
        var = self.variables.get(path[0])
        return UNKNOWN if var is None else _at(var.value, path)

    def current(self, path: tuple[str, ...]) -> Any:
        """:meth:`value` in wire form, as the collator compares sets with it."""
        prop = path[0]
        value = self.value((prop,))
        feature = self.features.get(prop)
        if value is UNKNOWN or feature is None:
            return value
        return _at(to_wire(feature, value), path)

    def request(self, path: tuple[str, ...], wire: Any, force: bool) -> None:
        """A set from an automation: collated, held in the registry as a pending write
        (so every world reads it), views told before the flush."""
        prop = path[0]
        var = self.variables.get(prop)
        feature = self.features.get(prop)
        if var is None or feature is None:
            self.network.collator.request(self, path, wire, force=force)
            return
        registry = self.network.registry
        collator = self.network.collator
        before = registry.current(var)
        # The collator notes what reads saw before this turn's first set: ask it first.
        collator.request(self, path, wire, force=force)
        value = _expected(feature, path, wire, before)
        if value is not UNKNOWN and registry.hold_pending(var, value):
            collator.held(self, (var, value))
        after = registry.current(var)
        if not same(before, after):
            self.network.local_change(self, prop, before, after)

    def query(self, prop: str) -> None:
        self.network.collator.query(self, prop)

    # -- reports -------------------------------------------------------------------------

    def apply_state(self, payload: Mapping[str, Any]) -> None:
        """A state message from zigbee2mqtt (the device's whole cached state, or a part):
        each value decoded once and reported to its registry variable."""
        changes: list[tuple[str, Any, Any, bool]] = []
        registry = self.network.registry
        now = self.network.reactor.seconds()
        watched = bool(self.views)  # before/after only matter to automations' views
        variables = self.variables
        features = self.features
        for prop, wire in payload.items():
            feature = features.get(prop)
            if feature is None:
                continue  # extras (last_seen, update, color_mode...)
            var = variables.get(prop)
            if var is None:
                continue  # not registered (any more)
            if wire is None:
                # "no value" (an effect that ended): nothing is known, nor pending
                registry.forget(var)
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
            if feature.kind == "composite":
                old = var.value  # a report may carry some keys only
                if isinstance(old, dict):
                    value = {**old, **value}
            if watched:
                before = registry.current(var)
                registry.report_to(var, value, timestamp=now)
                changes.append((prop, before, registry.current(var), feature.is_event))
            else:
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
        """Collated like an automation's sets; the registry holds the pending write
        itself once this returns, and fails its Deferred if the ``/set`` is lost."""
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
            sets.append((prop, wire, value))
        registry = self.network.registry
        for prop, wire, value in sets:
            self.network.collator.request(self, (prop,), wire, force=True)
            var = self.variables.get(prop)
            if var is not None:
                before = registry.current(var)
                if not same(before, value):
                    self.network.local_change(self, prop, before, value)
        return self.network.collator.outcome(self)

    def query_values(self, device: Device, channel: int,
                     names: Sequence[str]) -> Deferred[Any]:
        for name in names:
            prop = self.prop_of.get((channel, name))
            if prop is not None:
                self.query(prop)
        return succeed(None)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} {self.key}>"


def _at(value: Any, path: tuple[str, ...]) -> Any:
    """``value``, or its key ``path[1]`` for a composite's key."""
    if len(path) > 1:
        return value.get(path[1], UNKNOWN) if isinstance(value, dict) else UNKNOWN
    return value


def _expected(feature: Feature, path: tuple[str, ...], wire: Any, before: Any) -> Any:
    """What a set of ``wire`` at ``path`` makes the value (decoded; UNKNOWN when it
    cannot be told): a composite's keys merge into what is known, a toggle flips."""
    if feature.kind == "binary" and feature.value_toggle is not None \
            and same(wire, feature.value_toggle):
        return (not before) if isinstance(before, bool) else UNKNOWN
    if len(path) > 1:
        sub = feature.feature(path[1])
        wire = {path[1]: wire}
        if sub is None:
            return UNKNOWN
    try:
        value, _warning = decode(feature, wire)
    except BadValue:
        return UNKNOWN
    if feature.kind == "composite" and isinstance(value, dict) and isinstance(before, dict):
        value = {**before, **value}
    return value


class LiveDevice(LiveTarget):
    kind = "device"
    info: DeviceInfo | None = None


class LiveGroup(LiveTarget):
    kind = "group"

    def __init__(self, network: NetworkBase, name: str, group_id: int,
                 features: Sequence[Feature], members: Sequence[str]) -> None:
        super().__init__(network, name, f"group:{group_id}", features)
        self.group_id = group_id
        self.members = list(members)


class UnboundTarget:
    """A name the network does not know (yet): sets still go out, by name."""

    def __init__(self, network: NetworkBase, kind: str, name: str) -> None:
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

    def __init__(self, network: NetworkBase) -> None:
        self.network = network

    def write_values(self, device: Device, channel: int,
                     values: Mapping[str, Any]) -> Deferred[Any]:
        if set(values) - {"permit_join"}:
            raise InvalidValue("only permit_join can be written on the bridge")
        seconds = 254 if values["permit_join"] else 0
        return self.network.requests.request("permit_join", {"time": seconds})

    def query_values(self, device: Device, channel: int, names: Sequence[str]) -> None:
        return None


__all__ = [  # AVAILABLE, registry_layout, variable_spec: re-exported from layout.py
    "AVAILABLE", "BRIDGE_CHANNELS", "BridgeOwner", "LiveDevice", "LiveGroup", "LiveTarget",
    "UnboundTarget", "registry_layout", "variable_spec",
]
