"""Other hosts' devices in the local registry: mirrors that read like local devices.

A remote device appears with source ``<its source>@<host>`` (``zigbee2mqtt@pi-zigbee``;
system variables as ``system@<host>``) and key ``<its peer id there>``, so its local peer
id is persisted per (host, remote peer id) like any device's and never reused. Its
values are reported as they arrive; a write goes to the owner as a ``device.write``
request and fires with the owner's answer.

Availability: channel 0 holds ``available`` (a read-only bool; a device that declares one
itself, as zigbee devices do, keeps its own). It turns false on every mirror of a host
that goes offline (and while this host's own broker link is down); ours turns true again
when the host is back, a device's own when the host publishes it again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from twisted.internet.defer import Deferred

from hadaemon.federation import codec
from hadaemon.federation.errors import Refused
from hadaemon.federation.requests import Requests
from hadaemon.registry import (
    Access,
    ChannelSpec,
    Device,
    Registry,
    RegistryError,
    UnknownDevice,
    ValueType,
    VariableSpec,
)

AVAILABLE = "available"
_EARLY_MAX = 100_000  # values held for devices not described yet, all hosts together


@dataclass
class _Host:
    devices: dict[int, Device] = field(default_factory=dict)  # remote peer -> mirror
    ours: set[int] = field(default_factory=set)  # remote peers whose `available` we added
    early: dict[int, dict[tuple[int, str], Any]] = field(default_factory=dict)
    index: set[int] | None = None
    online: bool = False
    described: dict[int, bytes] = field(default_factory=dict)  # remote peer -> payload
    shadowed: dict[int, tuple[str, str]] = field(default_factory=dict)  # peer -> own twin


class Mirror:
    """The mirrors of every other host's devices; their :class:`DeviceOwner`. Reactor
    thread only."""

    def __init__(self, registry: Registry, requests: Requests, *, limit: int,
                 warn: Callable[[str, str], None],
                 hold_sources: frozenset[str] = frozenset()) -> None:
        self._registry = registry
        self._requests = requests
        self._limit = limit
        self._warn = warn
        self._hosts: dict[str, _Host] = {}
        self._remote: dict[int, tuple[str, int]] = {}  # local peer -> (host, remote peer)
        self._by_key: dict[tuple[str, str], set[tuple[str, int]]] = {}  # (source, key) ->
        self._early_count = 0
        self.values_applied = 0
        # Sources this host reads itself (its exclude_sources: a zigbee2mqtt adapter on
        # another host's zigbee2mqtt): their descriptions wait until release(), so this
        # host's own adapter lists its devices first and no twin is mirrored even briefly.
        self._hold_sources = hold_sources
        self._holding = bool(hold_sources)
        self._held: dict[tuple[str, int], tuple[str, bytes]] = {}  # (host, peer) ->

    def mirrored(self, peer: int) -> bool:
        return peer in self._remote

    def remote_of(self, peer: int) -> tuple[str, int] | None:
        """``(host, peer id there)`` of a mirror's local peer id; None if not a mirror."""
        return self._remote.get(peer)

    def devices_of(self, host: str) -> list[Device]:
        mirror = self._hosts.get(host)
        return [] if mirror is None else list(mirror.devices.values())

    def _host(self, host: str) -> _Host:
        mirror = self._hosts.get(host)
        if mirror is None:
            mirror = self._hosts[host] = _Host()
        return mirror

    # -- descriptions ---------------------------------------------------------------------

    def description(self, topic: str, host: str, peer: int, payload: bytes) -> None:
        mirror = self._host(host)
        self._held.pop((host, peer), None)
        if not payload:
            self._remove(host, mirror, peer)
            return
        if mirror.described.get(peer) == payload and (peer in mirror.devices
                                                      or peer in mirror.shadowed):
            return  # described again as it was (a republish): nothing to do
        message = codec.decode(topic, host, payload, limit=self._limit)
        if codec.field(topic, message, "peer", int) != peer:
            raise Refused(topic, f"describes peer {message['peer']}, the topic says {peer}")
        source = codec.field(topic, message, "source", str)
        if not source or "@" in source:
            raise Refused(topic, f"source {source!r} must be non-empty, without '@'")
        name = codec.field(topic, message, "name", str)
        key = codec.field(topic, message, "key", str)
        if self._twin(host, mirror, peer, payload, source, key):
            return
        type_name = codec.field(topic, message, "type", str, optional=True) or ""
        info = codec.field(topic, message, "info", dict, optional=True) or {}
        channels = codec.read_channels(topic, message.get("channels"))
        if self._holding and source in self._hold_sources:
            self._held[(host, peer)] = (topic, payload)
            return
        ours = not any(c.index == 0 and any(v.name == AVAILABLE for v in c.variables)
                       for c in channels)
        if ours:
            channels = _with_available(channels)
        local_source = f"{source}@{host}"
        old = mirror.devices.get(peer)
        if old is not None and old.source != local_source:
            self._remove(host, mirror, peer)  # another device now (an owner's state lost)
        # a mirror before the registry announces it: the publisher must not take it for
        # a device of this host's
        local_peer = self._registry.peer_id_for(local_source, str(peer))
        self._remote[local_peer] = (host, peer)
        try:
            device = self._registry.add_device(
                local_source, str(peer), name, channels, self, type_name=type_name,
                info={**info, "host": host, "remote_peer_id": peer, "remote_key": key})
        except Exception:
            if peer not in mirror.devices:
                del self._remote[local_peer]
            raise
        mirror.devices[peer] = device
        mirror.described[peer] = payload
        self._by_key.setdefault((source, key), set()).add((host, peer))
        if ours:
            mirror.ours.add(peer)
        else:
            mirror.ours.discard(peer)
        if ours or not mirror.online:
            self._registry.report(device.peer_id, 0, AVAILABLE, mirror.online)
        early = mirror.early.pop(peer, None)
        if early:
            self._early_count -= len(early)
            for (channel, var_name), value in early.items():
                self._apply(topic, host, device, channel, var_name, value)

    def _twin(self, host: str, mirror: _Host, peer: int, payload: bytes, source: str,
              key: str) -> bool:
        """Whether this host has the device itself (two zigbee2mqtt adapters on one
        bridge): then it is not mirrored (it would show twice), only remembered."""
        own = self._registry.find(source, key)
        if own is None or own.peer_id in self._remote:
            mirror.shadowed.pop(peer, None)
            return False
        self._remove(host, mirror, peer)
        mirror.shadowed[peer] = (source, key)
        mirror.described[peer] = payload
        return True

    def _remove(self, host: str, mirror: _Host, peer: int) -> None:
        device = mirror.devices.pop(peer, None)
        mirror.ours.discard(peer)
        mirror.described.pop(peer, None)
        mirror.shadowed.pop(peer, None)
        if device is None:
            return
        self._remote.pop(device.peer_id, None)
        twin_key = (device.source.rpartition("@")[0], _remote_key(device))
        twins = self._by_key.get(twin_key)
        if twins is not None:
            twins.discard((host, peer))
            if not twins:
                del self._by_key[twin_key]
        with contextlib.suppress(UnknownDevice):
            self._registry.remove_device(device.peer_id)

    def index(self, topic: str, host: str, payload: bytes) -> None:
        """The host's index: its devices not in it are gone."""
        mirror = self._host(host)
        if not payload:
            mirror.index = None
            return
        message = codec.decode(topic, host, payload, limit=self._limit)
        peers = codec.peers_of(topic, message.get("peers"))
        mirror.index = peers
        for host_peer in [hp for hp in self._held if hp[0] == host and hp[1] not in peers]:
            del self._held[host_peer]
        for peer in sorted(set(mirror.devices) - peers):
            self._remove(host, mirror, peer)
        for peer in sorted(set(mirror.early) - peers):
            held = mirror.early.pop(peer)
            self._early_count -= len(held)
            self._warn(f"unknown-device:{host}", f"{len(held)} value(s) from host {host!r} "
                       f"for its device {peer}, which it does not have (not in its index): "
                       "dropped")

    # -- values ------------------------------------------------------------------------------

    def value(self, topic: str, host: str, rest: Sequence[str], payload: bytes,
              *, event: bool) -> None:
        if len(rest) != 3:
            raise Refused(topic, "a value topic is .../<peer>/<channel>/<name>")
        try:
            peer, channel = int(rest[0]), int(rest[1])
        except ValueError:
            raise Refused(topic, "peer id and channel must be integers") from None
        name = rest[2]
        if not payload:
            return  # a retained value cleared (its device removed)
        message = codec.decode(topic, host, payload, limit=self._limit)
        if "value" not in message:
            raise Refused(topic, "no 'value' field")
        value = message["value"]
        mirror = self._host(host)
        device = mirror.devices.get(peer)
        if device is None:
            if mirror.index is not None and peer not in mirror.index and mirror.online:
                raise Refused(topic, f"host {host!r} has no device {peer} (not in its index)")
            if not event and self._early_count < _EARLY_MAX:
                held = mirror.early.setdefault(peer, {})
                if (channel, name) not in held:
                    self._early_count += 1
                held[(channel, name)] = value
            return
        self._apply(topic, host, device, channel, name, value)

    def _apply(self, topic: str, host: str, device: Device, channel: int, name: str,
               value: Any) -> None:
        try:
            var = device.variable(channel, name)
        except RegistryError:
            raise Refused(topic, f"device {device.key} of host {host!r} has no variable "
                          f"{name!r} in channel {channel}") from None
        self.values_applied += 1
        self._registry.report_to(var, value)

    def local_added(self, source: str, key: str) -> None:
        """A device of this host's own: a mirror of the same device (same source and key
        on another host) goes (see :meth:`description`)."""
        for host, peer in sorted(self._by_key.get((source, key), ())):
            mirror = self._hosts[host]
            payload = mirror.described.get(peer, b"")
            self._remove(host, mirror, peer)
            mirror.shadowed[peer] = (source, key)
            mirror.described[peer] = payload

    def release(self) -> None:
        """This host's adapters have listed their devices (the settle delay is over):
        mirror the held descriptions that are no twin of one of them."""
        self._holding = False
        held, self._held = self._held, {}
        for (host, peer), (topic, payload) in sorted(held.items()):
            try:
                self.description(topic, host, peer, payload)
            except Exception as exc:
                self._warn(f"held:{host}", f"dropped {topic}: {type(exc).__name__}: {exc}")

    # -- presence ------------------------------------------------------------------------------

    def host_presence(self, host: str, up: bool) -> None:
        mirror = self._host(host)
        mirror.online = up
        for peer, device in list(mirror.devices.items()):
            if not up or peer in mirror.ours:
                self._registry.report(device.peer_id, 0, AVAILABLE, up)

    def stop(self) -> None:
        """Mirrors leave the registry with the plugin (their owner is gone)."""
        for host, mirror in self._hosts.items():
            for peer in list(mirror.devices):
                self._remove(host, mirror, peer)
        self._hosts.clear()
        self._held.clear()

    # -- DeviceOwner: writes go to the owner ------------------------------------------------

    def write_values(self, device: Device, channel: int,
                     values: Mapping[str, Any]) -> Deferred[Any]:
        host, peer = self._remote[device.peer_id]
        return self._requests.request(host, "device.write",
                                      {"peer": peer, "channel": channel, "values": dict(values)})

    def query_values(self, device: Device, channel: int,
                     names: Sequence[str]) -> Deferred[Any]:
        host, peer = self._remote[device.peer_id]
        return self._requests.request(host, "device.query",
                                      {"peer": peer, "channel": channel, "names": list(names)})


def _remote_key(device: Device) -> str:
    return str(device.info.get("remote_key", ""))


def _with_available(channels: list[ChannelSpec]) -> list[ChannelSpec]:
    spec = VariableSpec(AVAILABLE, ValueType.BOOL, Access.READ,
                        label="the host owning the device is online")
    out = [c for c in channels if c.index != 0]
    zero = next((c for c in channels if c.index == 0), None)
    if zero is None:
        out.insert(0, ChannelSpec(0, [spec]))
    else:
        out.insert(0, ChannelSpec(0, [*zero.variables, spec], name=zero.name, type=zero.type))
    return sorted(out, key=lambda c: c.index)


__all__ = ["AVAILABLE", "Mirror"]
