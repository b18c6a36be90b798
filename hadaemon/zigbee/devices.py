"""Device objects for automations: pyziggy's ``Device`` and ``DevicesClient``, live.

A generated ``AvailableDevices`` (or the dynamic one) is a :class:`DevicesClient` whose
attributes are :class:`Device` objects holding typed parameters. When hadaemon runs the
automation it attaches the client to the zigbee2mqtt network: each device is bound by
IEEE address (so a rename is followed; the friendly name is only the fallback), reports
reach its parameters and their listeners, and sets go out collated.

Everything here runs on the reactor thread (the "message thread" of pyziggy).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from hadaemon.sentinels import UNKNOWN, Unknown
from hadaemon.values import same
from hadaemon.zigbee.broadcasters import Broadcaster, Caller, EventBroadcaster
from hadaemon.zigbee.composite import SettableAndQueryableCompositeParameter
from hadaemon.zigbee.exposes import Feature
from hadaemon.zigbee.factory import build_parameter
from hadaemon.zigbee.naming import Namer, identifier
from hadaemon.zigbee.params import DeviceBase, ParameterBase

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred


class NotAttached(RuntimeError):
    """A device object used before hadaemon attached it to the zigbee2mqtt network."""


class DeviceLink(Protocol):
    """The live side of a device (what the adapter knows about it)."""

    name: str
    ieee_address: str | None
    available: bool | Unknown

    def value(self, path: tuple[str, ...]) -> Any: ...
    def confirmed(self, path: tuple[str, ...]) -> Any: ...
    def request(self, path: tuple[str, ...], wire: Any, force: bool) -> Any: ...
    def query(self, prop: str) -> None: ...
    def feature_list(self) -> list[Feature]: ...


class ClientRuntime(Protocol):
    """What an attached client talks to: one running automation in the adapter."""

    def caller(self, callback: Callable[..., Any], *args: Any) -> None: ...

    @property
    def connected(self) -> bool: ...
    def attach_view(self, view: Device) -> None: ...
    def find(self, name: str) -> DeviceLink | None: ...
    def names(self) -> list[tuple[str, str, bool]]: ...
    def request_unbound(self, kind: str, name: str, path: tuple[str, ...], wire: Any) -> None: ...
    def query_unbound(self, kind: str, name: str, prop: str) -> None: ...
    def bridge_request(self, path: str, payload: Mapping[str, Any],
                       timeout: float | None) -> Deferred[Any]: ...


class Device(DeviceBase):
    """A zigbee device with its parameters as attributes (``lamp.brightness``)."""

    _kind = "device"

    def __init__(self, name: str, ieee_address: str | None = None) -> None:
        super().__init__()
        self._given_name = name
        self._ieee = ieee_address
        self._link: DeviceLink | None = None
        self._client: DevicesClient | None = None
        self.on_availability_change = Broadcaster()

    # -- what automations use --------------------------------------------------------

    @property
    def name(self) -> str:
        """The current friendly name (follows renames once attached)."""
        return self._link.name if self._link is not None else self._given_name

    @property
    def ieee_address(self) -> str | None:
        if self._link is not None and self._link.ieee_address:
            return self._link.ieee_address
        return self._ieee

    def is_available(self) -> bool | Unknown:
        """zigbee2mqtt's availability (UNKNOWN when it does not track it)."""
        return self._link.available if self._link is not None else UNKNOWN

    def is_bound(self) -> bool:
        """Whether the device exists in the network right now."""
        return self._link is not None

    def get_parameters(self) -> list[ParameterBase]:
        return list(self._params.values())

    def parameter(self, prop: str) -> ParameterBase | None:
        """The parameter for a state key (``"state_l1"``), if the device has it."""
        return self._params.get(prop)

    def query_parameters(self) -> None:
        """Ask the device for every queryable value (one collated ``/get``)."""
        for param in self._params.values():
            if param.feature.queryable:
                self._query(param.get_property_name())

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} {self.ieee_address or ''}>".replace(" >", ">")

    # -- DeviceBase hooks ------------------------------------------------------------

    def _value(self, path: tuple[str, ...]) -> Any:
        return self._link.value(path) if self._link is not None else UNKNOWN

    def _confirmed(self, path: tuple[str, ...]) -> Any:
        return self._link.confirmed(path) if self._link is not None else UNKNOWN

    def _request(self, path: tuple[str, ...], wire: Any, force: bool) -> None:
        if self._link is not None:
            self._link.request(path, wire, force)
            return
        runtime = self._runtime()
        runtime.request_unbound(self._kind, self._given_name, path, wire)

    def _query(self, prop: str) -> None:
        if self._link is not None:
            self._link.query(prop)
            return
        self._runtime().query_unbound(self._kind, self._given_name, prop)

    def _caller(self) -> Caller:
        if self._client is not None and self._client._runtime is not None:
            return self._client._runtime.caller
        return _direct

    def _runtime(self) -> ClientRuntime:
        if self._client is None or self._client._runtime is None:
            raise NotAttached(
                f"device {self._given_name!r} is not attached to a zigbee2mqtt network: "
                "automations are attached when hadaemon runs them"
            )
        return self._client._runtime

    # -- binding (the adapter calls these) ----------------------------------------------

    def _bind(self, link: DeviceLink | None) -> None:
        self._link = link

    def _changed(self, prop: str, old: Any, new: Any, event: bool) -> None:
        """The adapter tells a view that ``prop`` went from ``old`` to ``new`` (decoded,
        as the registry holds them)."""
        param = self._params.get(prop)
        if param is None:
            return
        if event or param.is_event or not same(old, new):
            param._notify()
        if isinstance(old, dict) or isinstance(new, dict):
            subs = getattr(param, "_params", {})
            old_map = old if isinstance(old, dict) else {}
            new_map = new if isinstance(new, dict) else {}
            for key, sub in subs.items():
                if event or not same(old_map.get(key, UNKNOWN), new_map.get(key, UNKNOWN)):
                    sub._notify()


def _direct(callback: Any, *args: Any) -> None:
    callback(*args)


class Group(Device):
    """A zigbee2mqtt group: one ``/set`` reaches every member; its parameters are what
    all members share."""

    _kind = "group"

    def __init__(self, name: str, group_id: int | None = None) -> None:
        super().__init__(name, None)
        self.group_id = group_id


class DynamicDevice(Device):
    """A device whose parameters come from the live exposes (no generated class)."""

    def __init__(self, link: DeviceLink, attribute_names: Mapping[str, str]) -> None:
        super().__init__(link.name, link.ieee_address)
        self._attributes: dict[str, ParameterBase] = {}
        for feature in link.feature_list():
            attr = attribute_names.get(feature.property, feature.property)
            self._attributes[attr] = build_parameter(self, feature, attr)

    def __getattr__(self, name: str) -> Any:
        attributes = self.__dict__.get("_attributes", {})
        if name in attributes:
            return attributes[name]
        raise AttributeError(
            f"{self.__dict__.get('_given_name', '?')!r} has no parameter {name!r}"
            + (f" (it has {', '.join(sorted(attributes))})" if attributes else "")
        )

    def __dir__(self) -> list[str]:
        return [*super().__dir__(), *self._attributes]


class Bridge:
    """zigbee2mqtt's ``bridge/request`` calls, as Deferreds matched by transaction id."""

    def __init__(self, client: DevicesClient) -> None:
        self._client = client

    def request(self, path: str, payload: Mapping[str, Any] | None = None,
                timeout: float | None = None) -> Deferred[Any]:
        """Any request (``"device/configure"``, ...); fires with the response's ``data``,
        fails with BridgeError (``status: error``) or BridgeTimeout."""
        return self._client._attached().bridge_request(path, payload or {}, timeout)

    def permit_join(self, seconds: int = 254, device: str | None = None) -> Deferred[Any]:
        """Let devices join for ``seconds`` (0 closes), optionally only via ``device``."""
        payload: dict[str, Any] = {"time": seconds}
        if device is not None:
            payload["device"] = device
        return self.request("permit_join", payload)

    def rename_device(self, old: str, new: str, homeassistant_rename: bool = False
                      ) -> Deferred[Any]:
        return self.request("device/rename", {"from": old, "to": new,
                                              "homeassistant_rename": homeassistant_rename})

    def set_device_options(self, device: str, options: Mapping[str, Any]) -> Deferred[Any]:
        return self.request("device/options", {"id": device, "options": dict(options)})

    def health_check(self) -> Deferred[Any]:
        return self.request("health_check", {})


class DevicesClient:
    """The collection of devices an automation works with (pyziggy's ``DevicesClient``).

    ``on_connect`` fires once, when hadaemon first connects and knows the devices;
    ``on_reconnect`` after every later reconnect (pyziggy could not tell them apart);
    ``on_disconnect`` when the broker connection drops.
    """

    def __init__(self) -> None:
        self.on_connect = Broadcaster()
        self.on_reconnect = Broadcaster()
        self.on_disconnect = Broadcaster()
        self.on_bridge_event: EventBroadcaster[dict[str, Any]] = EventBroadcaster()
        self.on_devices_changed = Broadcaster()
        self.bridge = Bridge(self)
        self._runtime: ClientRuntime | None = None

    def get_devices(self) -> list[Device]:
        """Every device (and group) object of this client."""
        return [v for v in vars(self).values() if isinstance(v, Device)]

    def get_groups(self) -> list[Group]:
        return [d for d in self.get_devices() if isinstance(d, Group)]

    def is_connected(self) -> bool:
        return self._runtime is not None and self._runtime.connected

    def _attached(self) -> ClientRuntime:
        if self._runtime is None:
            raise NotAttached("this client is not attached: hadaemon attaches the "
                              "automation's devices object when it runs it")
        return self._runtime

    def _attach(self, runtime: ClientRuntime) -> None:
        """Called once by hadaemon when it runs the automation."""
        self._runtime = runtime
        for listeners in (self.on_connect, self.on_reconnect, self.on_disconnect,
                          self.on_bridge_event, self.on_devices_changed):
            listeners.caller = runtime.caller
        for device in self.get_devices():
            device._client = self
            device.on_availability_change.caller = runtime.caller
            runtime.attach_view(device)

    def _detach(self) -> None:
        for device in self.get_devices():
            device._bind(None)
        self._runtime = None


class DynamicDevices(DevicesClient):
    """``AvailableDevices`` without generated code: devices appear as attributes named
    like the generated ones (``devices.hallway_hue``), typed ``Any``."""

    def __init__(self) -> None:
        super().__init__()
        self._dynamic: dict[str, Device] = {}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or "_dynamic" not in self.__dict__:
            raise AttributeError(name)
        runtime = self.__dict__.get("_runtime")
        if name in self._dynamic:
            return self._dynamic[name]
        if runtime is None or not runtime.names():
            raise AttributeError(
                f"no device {name!r} yet: without a generated module, devices are known once "
                "the network is (use them in on_connect and later), or generate the typed "
                "module (hadaemon zigbee generate) to use them at import time"
            )
        for attribute, friendly, is_group in runtime.names():
            if attribute == name:
                link = runtime.find(friendly)
                if link is not None:
                    return self._make(name, link, is_group)
        known = ", ".join(sorted(a for a, _f, _g in runtime.names()))
        raise AttributeError(f"no device {name!r} in the network (known: {known})")

    def _make(self, name: str, link: DeviceLink, is_group: bool) -> Device:
        names = attribute_names(link.feature_list(), Namer(reserved=DEVICE_RESERVED))
        device = DynamicDevice(link, names)
        if is_group:
            device._kind = "group"
        device._client = self
        runtime = self._attached()
        device.on_availability_change.caller = runtime.caller
        self._dynamic[name] = device
        runtime.attach_view(device)
        return device

    def get_devices(self) -> list[Device]:
        runtime = self._runtime
        if runtime is not None:
            for attribute, _friendly, _group in runtime.names():
                try:
                    getattr(self, attribute)
                except AttributeError:
                    continue
        return list(self._dynamic.values())


def device_attribute_names(targets: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """Attribute names of a client's devices and groups, from ``(friendly name, key)``
    pairs: sorted by name (then key), so the same network always names the same."""
    namer = Namer(reserved=CLIENT_RESERVED)
    return {
        target: namer.take(identifier(target[0], fallback="device", prefix="d"))
        for target in sorted(targets)
    }


def attribute_names(features: list[Feature], namer: Namer) -> dict[str, str]:
    """Attribute names for a device's features: the expose name when it is unique in the
    device, else the property (``state_l1``/``state_l2``), made identifiers and unique."""
    counts: dict[str, int] = {}
    for feature in features:
        counts[feature.name] = counts.get(feature.name, 0) + 1
    out: dict[str, str] = {}
    for feature in features:
        wanted = feature.name if counts[feature.name] == 1 else feature.property
        out[feature.property] = namer.take(identifier(wanted, fallback="parameter"))
    return out


DEVICE_RESERVED = frozenset(
    name for name in dir(Device) if not name.startswith("__")
) | {"on_availability_change", "group_id"}
CLIENT_RESERVED = frozenset(
    name for name in dir(DevicesClient) if not name.startswith("__")
) | {"on_connect", "on_reconnect", "on_disconnect", "on_bridge_event", "on_devices_changed",
     "bridge"}
COMPOSITE_RESERVED = frozenset(
    name for name in dir(SettableAndQueryableCompositeParameter) if not name.startswith("__")
) | {"enum_type", "caller"}
