"""The network's devices and groups, followed by IEEE address and group id through
``bridge/devices`` and ``bridge/groups`` (join, leave, rename), registered in the
registry, and the automations' device objects (views) bound to them. Reactor thread only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hadaemon.zigbee.devices import Device as DeviceView
from hadaemon.zigbee.exposes import Feature, shared_features
from hadaemon.zigbee.layout import registry_layout
from hadaemon.zigbee.live import LiveDevice, LiveGroup, LiveTarget, UnboundTarget
from hadaemon.zigbee.model import parse_devices, parse_groups
from hadaemon.zigbee.readiness import Readiness


class Roster(Readiness):
    """Devices, groups and views (a half of ``Network``)."""

    # -- devices and groups -----------------------------------------------------------------

    def _update_devices(self, payload: Any) -> None:
        parsed = parse_devices(payload)
        for problem in parsed.problems:
            self.warn_once(f"{self.source}: {problem}", key=("devices", problem))
        seen: set[str] = set()
        for info in parsed.devices:
            if info.is_coordinator:
                continue
            seen.add(info.ieee_address)
            existing = self.devices.get(info.ieee_address)
            if existing is None:
                device = LiveDevice(self, info.friendly_name, info.ieee_address, info.features)
                device.ieee_address = info.ieee_address
                device.info = info
                self.devices[info.ieee_address] = device
                self._register(device, info.features, info.info, info.model or info.type)
                self.log.info("{source}: device {name} ({model}, {ieee})", source=self.source,
                              name=info.friendly_name, model=info.model or "?",
                              ieee=info.ieee_address)
                continue
            old_name = existing.name
            existing.info = info
            if old_name != info.friendly_name:
                self.log.info("{source}: {old} was renamed {new}", source=self.source,
                              old=old_name, new=info.friendly_name)
                existing.name = info.friendly_name
            if tuple(existing.features.values()) != info.features or old_name != existing.name:
                existing.set_features(info.features)
                self._register(existing, info.features, info.info, info.model or info.type)
        for ieee in [i for i in self.devices if i not in seen]:
            device = self.devices.pop(ieee)
            self.log.info("{source}: device {name} ({ieee}) left", source=self.source,
                          name=device.name, ieee=ieee)
            self._unregister(device)
        if self.groups_payload is not None:
            self._update_groups(self.groups_payload)  # members' capabilities may change
        self._reindex()
        if self._awaiting_devices:
            self._become_ready()
        else:
            for observer in list(self._observers):
                observer.devices_changed()

    def _update_groups(self, payload: Any) -> None:
        parsed = parse_groups(payload)
        for problem in parsed.problems:
            self.warn_once(f"{self.source}: {problem}", key=("groups", problem))
        seen: set[int] = set()
        for info in parsed.groups:
            seen.add(info.id)
            members = [m.ieee_address for m in info.members if m.ieee_address in self.devices]
            features = shared_features([list(self.devices[m].features.values())
                                        for m in members])
            group = self.groups.get(info.id)
            if group is None:
                group = LiveGroup(self, info.friendly_name, info.id, features, members)
                self.groups[info.id] = group
            elif (group.name, group.members, list(group.features.values())) == (
                    info.friendly_name, members, features):
                continue
            group.name = info.friendly_name
            group.members = members
            group.set_features(features)
            self._register(group, features, {"group_id": info.id, "members": members}, "group")
        for group_id in [g for g in self.groups if g not in seen]:
            self._unregister(self.groups.pop(group_id))
        self._reindex()

    def _register(self, target: LiveTarget, features: Sequence[Feature],
                  info: dict[str, Any], type_name: str) -> None:
        endpoints = sorted({f.endpoint for f in features if f.endpoint})
        channels_of = self._endpoint_channels(target.key, endpoints)
        channels, where = registry_layout(features, channels_of,
                                          availability=isinstance(target, LiveDevice))
        target.where = where
        target.prop_of = {loc: prop for prop, loc in where.items()}
        target.bind_registry(self.registry.add_device(
            self.source, target.key, target.name, channels, target, type_name=type_name,
            info=info,
        ))

    def _unregister(self, target: LiveTarget) -> None:
        if target.registry_device is not None:
            try:
                self.registry.remove_device(target.registry_device.peer_id)
            except Exception:
                self.log.failure("removing {name} from the registry failed", name=target.name)
            target.bind_registry(None)
        for view in target.views:
            view._bind(None)
        target.views.clear()

    def _endpoint_channels(self, key: str, endpoints: list[str]) -> dict[str, int]:
        # Persisted, so that a device gaining an endpoint never renumbers the others.
        store_key = f"{self.store_prefix}/endpoints/{key}"
        stored = self.store.get(store_key)
        known: dict[str, int] = dict(stored) if isinstance(stored, dict) else {}
        changed = False
        for endpoint in endpoints:
            if endpoint not in known:
                known[endpoint] = max(known.values(), default=0) + 1
                changed = True
        if changed:
            self.store.put(store_key, known)
        return {e: known[e] for e in endpoints}

    def _reindex(self) -> None:
        self._by_name = {}
        for target in [*self.groups.values(), *self.devices.values()]:
            self._by_name[target.name] = target
        self._subscriptions.follow(self._by_name)
        for view in self._views:
            self._bind(view)
        if self._early:
            self._apply_early()

    # -- views (automations' device objects) --------------------------------------------------

    def attach_view(self, view: DeviceView) -> None:
        self._views.append(view)
        self._bind(view)

    def detach_views(self, views: Sequence[DeviceView]) -> None:
        gone = set(map(id, views))
        self._views = [v for v in self._views if id(v) not in gone]
        for target in [*self.devices.values(), *self.groups.values()]:
            target.views = [v for v in target.views if id(v) not in gone]
        for view in views:
            view._bind(None)

    def _bind(self, view: DeviceView) -> None:
        target: LiveTarget | None = None
        if view._kind == "group":
            group_id = getattr(view, "group_id", None)
            target = self.groups.get(group_id) if group_id is not None else None
        elif view._ieee:
            target = self.devices.get(view._ieee)
        if target is None:
            target = self._by_name.get(view._given_name)
        old = view._link
        if old is target:
            return
        if isinstance(old, LiveTarget) and view in old.views:
            old.views.remove(view)
        view._bind(target)
        if target is not None:
            target.views.append(view)

    def find(self, name: str) -> LiveTarget | None:
        """A device or group by friendly name (or a device by IEEE address)."""
        return self._by_name.get(name) or self.devices.get(name)

    def targets(self) -> list[LiveTarget]:
        return [*self.devices.values(), *self.groups.values()]

    def unbound(self, kind: str, name: str) -> UnboundTarget:
        key = (kind, name)
        target = self._unbound.get(key)
        if target is None:
            target = self._unbound[key] = UnboundTarget(self, kind, name)
        return target


__all__ = ["Roster"]
