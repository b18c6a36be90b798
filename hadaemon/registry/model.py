"""Devices, channels and variables: plain data shared by every world.

A device is what Homegear calls a peer: an integer peer id (stable across restarts), a
name, channels numbered from 0, and typed variables in each channel. System variables
live on peer 0, channel -1.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntFlag, StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from hadaemon.registry.errors import InvalidValue, UnknownChannel, UnknownVariable
from hadaemon.sentinels import UNKNOWN
from hadaemon.values import same

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred

SYSTEM_PEER_ID = 0
SYSTEM_CHANNEL = -1


class Access(IntFlag):
    """What can be done with a variable; the bits are zigbee2mqtt's ``access`` bits."""

    NONE = 0
    READ = 1  # its value is reported (appears in the device's state)
    WRITE = 2  # it can be set
    QUERY = 4  # the device can be asked for it
    ALL = 7


class ValueType(StrEnum):
    BOOL = "bool"
    INT = "int"
    FLOAT = "float"
    STRING = "string"
    ENUM = "enum"
    BYTES = "bytes"
    ARRAY = "array"
    STRUCT = "struct"
    ANY = "any"


@dataclass(frozen=True)
class VariableSpec:
    """A variable's description, supplied by the adapter that owns the device."""

    name: str
    type: ValueType = ValueType.ANY
    access: Access = Access.READ | Access.WRITE
    unit: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    values: tuple[Any, ...] = ()
    is_event: bool = False
    label: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    # Cached (the spec is frozen): an IntFlag ``&`` costs about 1 us, paid per write on
    # the reaction path (``Registry.hold_pending``, benchmarks/zigbee_path.py).
    @functools.cached_property
    def readable(self) -> bool:
        return bool(self.access & Access.READ)

    @functools.cached_property
    def writable(self) -> bool:
        return bool(self.access & Access.WRITE)

    @functools.cached_property
    def queryable(self) -> bool:
        return bool(self.access & Access.QUERY)

    def check(self, value: Any) -> Any:
        """Validate (and minimally coerce) a value to write; raise InvalidValue."""
        kind = self.type
        if kind is ValueType.BOOL:
            if isinstance(value, bool):
                return value
            if isinstance(value, int) and value in (0, 1):
                return bool(value)
            raise InvalidValue(f"{self.name}: expected a boolean, got {value!r}")
        if kind is ValueType.INT:
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidValue(f"{self.name}: expected an integer, got {value!r}")
            self._check_range(value)
            return value
        if kind is ValueType.FLOAT:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InvalidValue(f"{self.name}: expected a number, got {value!r}")
            if isinstance(value, float) and math.isnan(value):
                raise InvalidValue(f"{self.name}: NaN is not a valid value")
            self._check_range(value)
            return value
        if kind is ValueType.ENUM:
            if not any(same(value, allowed) for allowed in self.values):
                allowed = ", ".join(repr(v) for v in self.values)
                raise InvalidValue(f"{self.name}: expected one of {allowed}; got {value!r}")
            return value
        expected: dict[ValueType, type | tuple[type, ...]] = {
            ValueType.STRING: str,
            ValueType.BYTES: bytes,
            ValueType.ARRAY: list,
            ValueType.STRUCT: dict,
        }
        want = expected.get(kind)
        if want is not None and not isinstance(value, want):
            raise InvalidValue(f"{self.name}: expected {kind.value}, got {value!r}")
        return value

    def _check_range(self, value: float) -> None:
        if self.minimum is not None and value < self.minimum:
            raise InvalidValue(f"{self.name}: {value!r} is below the minimum {self.minimum!r}")
        if self.maximum is not None and value > self.maximum:
            raise InvalidValue(f"{self.name}: {value!r} is above the maximum {self.maximum!r}")


@dataclass(frozen=True)
class ChannelSpec:
    """A channel's description: its index, a name (e.g. a zigbee endpoint) and variables."""

    index: int
    variables: Sequence[VariableSpec]
    name: str = ""
    type: str = ""


class Variable:
    """A variable's live state, owned by the registry: its value is UNKNOWN until first
    reported.

    ``value`` is what the device confirmed (reported); ``pending`` is a write the owning
    adapter accepted that the device has not confirmed yet (UNKNOWN when there is none),
    whichever world made it. Reads return :meth:`current`, so code reads its own writes
    as it does under Homegear; change events carry confirmed values only. Adapters keep
    no copy of either: they read them here.
    """

    __slots__ = ("channel", "device", "last_known", "pending", "pending_since",
                 "pending_until", "spec", "timestamp", "topic", "value")

    def __init__(self, spec: VariableSpec, last_known: Any = UNKNOWN, channel: int = 0) -> None:
        self.spec = spec
        self.channel = channel
        self.device: Device | None = None  # set by the Device that holds it
        self.topic = ""  # its VariableChanged topic, set by the registry that holds it
        self.value: Any = UNKNOWN
        self.timestamp: float | None = None
        self.last_known: Any = last_known  # from the store: the value before the restart
        self.pending: Any = UNKNOWN
        self.pending_since = 0.0  # reactor time the pending write was made
        self.pending_until = 0.0  # reactor time after which an unconfirmed write is dropped

    def current(self, now: float) -> Any:
        """What a read returns: the pending write while it lasts, else the confirmed value."""
        if self.pending is not UNKNOWN:
            if now <= self.pending_until:
                return self.pending
            self.pending = UNKNOWN
        return self.value

    @property
    def name(self) -> str:
        return self.spec.name

    def __repr__(self) -> str:
        return f"<Variable {self.spec.name}={self.value!r}>"


class Channel:
    __slots__ = ("index", "name", "type", "variables")

    def __init__(self, spec: ChannelSpec, last_known: Mapping[str, Any]) -> None:
        self.index = spec.index
        self.name = spec.name
        self.type = spec.type
        self.variables: dict[str, Variable] = {
            v.name: Variable(v, last_known.get(v.name, UNKNOWN), spec.index)
            for v in spec.variables
        }


class DeviceOwner(Protocol):
    """What an adapter supplies for its devices: how to write values, how to ask for them."""

    def write_values(
        self, device: Device, channel: int, values: Mapping[str, Any]
    ) -> Deferred[Any] | None:
        """Send the values to the device; fire (or return None) once accepted."""

    def query_values(
        self, device: Device, channel: int, names: Sequence[str]
    ) -> Deferred[Any] | None:
        """Ask the device to report these values (the answer arrives as reports)."""


class Device:
    """A registered device; read it freely, change it only through the registry."""

    def __init__(
        self,
        peer_id: int,
        source: str,
        key: str,
        name: str,
        type_name: str,
        channels: Sequence[ChannelSpec],
        owner: DeviceOwner | None,
        info: Mapping[str, Any],
        last_known: Mapping[int, Mapping[str, Any]],
    ) -> None:
        self.peer_id = peer_id
        self.source = source
        self.key = key
        self.name = name
        self.type = type_name
        self.owner = owner
        self.info: dict[str, Any] = dict(info)
        self.channels: dict[int, Channel] = {
            c.index: Channel(c, last_known.get(c.index, {})) for c in channels
        }
        for channel in self.channels.values():
            for var in channel.variables.values():
                var.device = self

    def channel(self, index: int) -> Channel:
        try:
            return self.channels[index]
        except (KeyError, TypeError):
            raise UnknownChannel(self.peer_id, index) from None

    def variable(self, channel: int, name: str) -> Variable:
        try:
            return self.channel(channel).variables[name]
        except KeyError:
            raise UnknownVariable(self.peer_id, channel, name) from None

    def find_channel_of(self, name: str) -> int:
        """The one channel holding ``name`` (an error if none or several do)."""
        found = [c.index for c in self.channels.values() if name in c.variables]
        if len(found) != 1:
            if not found:
                raise UnknownVariable(self.peer_id, -1, name)
            raise InvalidValue(
                f"device {self.peer_id}: {name!r} exists in channels {found}; name the channel"
            )
        return found[0]

    def values(self) -> dict[int, dict[str, Any]]:
        """Current values per channel (UNKNOWN where nothing was reported)."""
        return {
            i: {n: v.value for n, v in c.variables.items()} for i, c in self.channels.items()
        }

    def __repr__(self) -> str:
        return f"<Device {self.peer_id} {self.source}:{self.key} {self.name!r}>"
