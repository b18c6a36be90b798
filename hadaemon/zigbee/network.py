"""The zigbee2mqtt network as the adapter sees it, live over the shared MQTT connection.

The subscriptions (:mod:`hadaemon.zigbee.subscriptions`: zigbee2mqtt's topics, not our
own commands) feed everything: ``bridge/devices`` (devices join, leave, are renamed:
followed by IEEE address), ``bridge/groups``, ``bridge/state``, ``bridge/info``,
``bridge/event``, ``bridge/response/*``, each device's state and ``availability``.
Malformed payloads (too big, not JSON, wrong types, unknown devices) are ignored with a
warning (each kind of problem once a minute at most per device), never with an exception.

After a (re)connect, once ``bridge/devices`` has arrived (or ``devices_timeout`` passed),
observers (the automations) are told the network is ready, and the optional throttled
query asks mains-powered devices for their queryable values: while the bridge is offline
nobody would answer, so the query waits for it to come online, and a bridge restart
(offline, then online) asks again. Reactor thread only.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger

from hadaemon.bus import Bus, Event, Lifecycle, StatusUpdate, Subscription
from hadaemon.logs import get_logger
from hadaemon.mqtt import Message, MqttClient
from hadaemon.registry import KeyValueStore, Registry
from hadaemon.values import same
from hadaemon.zigbee.collation import Collator
from hadaemon.zigbee.devices import Device as DeviceView
from hadaemon.zigbee.exposes import Feature, shared_features
from hadaemon.zigbee.live import (
    BRIDGE_CHANNELS,
    BridgeOwner,
    LiveDevice,
    LiveGroup,
    LiveTarget,
    UnboundTarget,
    registry_layout,
)
from hadaemon.zigbee.model import parse_devices, parse_groups
from hadaemon.zigbee.requests import BridgeRequests
from hadaemon.zigbee.settings import ZigbeeSettings
from hadaemon.zigbee.subscriptions import Subscriptions

SOURCE = "zigbee2mqtt"


class Observer(Protocol):
    """An automation runtime: told when the network is ready, lost, changed."""

    def network_ready(self, first: bool) -> None: ...
    def network_disconnected(self) -> None: ...
    def bridge_event(self, payload: dict[str, Any]) -> None: ...
    def devices_changed(self) -> None: ...


NetworkSettings = ZigbeeSettings
"""A network's settings are the ``[zigbee2mqtt]`` settings, declared there once."""


class Network:
    """Devices, groups and the bridge of one zigbee2mqtt instance."""

    def __init__(
        self,
        reactor: Any,
        mqtt: MqttClient,
        registry: Registry,
        bus: Bus,
        store: KeyValueStore,
        settings: NetworkSettings,
        *,
        mqtt_component: str = "mqtt",
        source: str = SOURCE,
        store_prefix: str = "plugin/zigbee2mqtt",
        log: Logger | None = None,
    ) -> None:
        self.reactor = reactor
        self.mqtt = mqtt
        self.registry = registry
        self.bus = bus
        self.store = store
        self.settings = settings
        self.base_topic = settings.base_topic.rstrip("/")
        self.source = source
        self.mqtt_component = mqtt_component
        self.store_prefix = store_prefix
        self.log = log or get_logger("hadaemon.zigbee")
        self.collator = Collator(reactor, self._publish_set, before_flush=self._notify_local,
                                 on_refused=self._refused, log=self.log)
        self.requests = BridgeRequests(reactor, self._publish_set, self.base_topic,
                                       settings.request_timeout)
        self.devices: dict[str, LiveDevice] = {}
        self.groups: dict[int, LiveGroup] = {}
        self._by_name: dict[str, LiveTarget] = {}
        self._unbound: dict[tuple[str, str], UnboundTarget] = {}
        self._views: list[DeviceView] = []
        self._observers: list[Observer] = []
        self._local: list[tuple[LiveTarget, str, Any, Any]] = []
        self._warned: dict[Any, float] = {}
        self._subscriptions = Subscriptions(mqtt, self.base_topic, self._on_message,
                                            f"{source} network")
        self._bus_sub: Subscription | None = None
        self._remove_read_hook: Callable[[], None] | None = None
        self._ready_call: IDelayedCall | None = None
        self._query_call: IDelayedCall | None = None
        self._query_queue: list[LiveDevice] = []
        self._awaiting_devices = False
        self._query_wanted = False  # a query run not done yet (the bridge was offline)
        self._connects = 0
        self.ready = False
        self.bridge_online: bool | None = None
        self.bridge_info: dict[str, Any] = {}
        self.bridge_device: Any = None
        self.devices_payload: Any = None
        self.groups_payload: Any = None
        self.messages_received = 0
        self._smallest_limit = min(settings.max_payload, settings.max_devices_payload)

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        self.bridge_device = self.registry.add_device(
            self.source, "bridge", f"zigbee2mqtt bridge ({self.base_topic})", BRIDGE_CHANNELS,
            BridgeOwner(self), type_name="bridge", info={"base_topic": self.base_topic},
        )
        self._bus_sub = self.bus.subscribe(
            f"lifecycle/{self.mqtt_component}/+", self._on_lifecycle,
            name=f"{self.source}: broker connection", event_type=Lifecycle,
        )
        self._subscriptions.start()
        self._remove_read_hook = self.mqtt.after_read(self._flush_after_read)
        if self.mqtt.connected:
            self._connected()

    def stop(self, timeout: float = 3.0) -> Deferred[Any]:
        """Flush pending sets (and wait for their acknowledgement, within ``timeout``),
        then forget the devices."""
        sent = self.collator.flush()
        for call in (self._ready_call, self._query_call):
            if call is not None and call.active():
                call.cancel()
        self._query_queue.clear()
        if self._bus_sub is not None:
            self._bus_sub.cancel()
        if self._remove_read_hook is not None:
            self._remove_read_hook()
            self._remove_read_hook = None
        self._subscriptions.stop()
        self.requests.fail_all("the zigbee2mqtt adapter stopped")
        waited: Deferred[Any] = DeferredList(sent, consumeErrors=True)
        waited.addTimeout(timeout, self.reactor)

        def forget(_: object) -> None:
            for view in self._views:
                view._bind(None)
            for target in [*self.devices.values(), *self.groups.values()]:
                self._unregister(target)
            if self.bridge_device is not None:
                self.registry.remove_device(self.bridge_device.peer_id)
                self.bridge_device = None
            self.devices.clear()
            self.groups.clear()
            self._by_name.clear()

        return waited.addBoth(forget)

    def add_observer(self, observer: Observer) -> Callable[[], None]:
        self._observers.append(observer)
        return lambda: self._observers.remove(observer) if observer in self._observers else None

    # -- connection events ------------------------------------------------------------------

    def _on_lifecycle(self, event: Event) -> None:
        assert isinstance(event, Lifecycle)
        if event.state in (Lifecycle.CONNECTED, Lifecycle.RECONNECTED):
            self._connected()
        elif event.state == Lifecycle.DISCONNECTED:
            self.collator.release()  # a read the link dropped in never ran its hook
            self.ready = False
            self._awaiting_devices = False
            for call in (self._ready_call, self._query_call):
                if call is not None and call.active():
                    call.cancel()
            self._query_queue.clear()
            for observer in list(self._observers):
                observer.network_disconnected()

    def _connected(self) -> None:
        # The retained bridge/devices follows our (re)subscription: wait for it, a bit.
        self._awaiting_devices = True
        if self._ready_call is not None and self._ready_call.active():
            self._ready_call.cancel()
        self._ready_call = self.reactor.callLater(self.settings.devices_timeout,
                                                  self._devices_timed_out)

    def _devices_timed_out(self) -> None:
        self._ready_call = None
        if self._awaiting_devices:
            self.log.warn(
                "{source}: no {base}/bridge/devices within {t:g} s after connecting; is "
                "zigbee2mqtt running with this base topic? Going on with what is known",
                source=self.source, base=self.base_topic, t=self.settings.devices_timeout,
            )
            self._become_ready()

    def _become_ready(self) -> None:
        self._awaiting_devices = False
        if self._ready_call is not None and self._ready_call.active():
            self._ready_call.cancel()
        self._ready_call = None
        self._connects += 1
        first = self._connects == 1
        self.ready = True
        for observer in list(self._observers):
            observer.network_ready(first)
        if (first and self.settings.initial_query) or (
            not first and self.settings.requery_on_reconnect
        ):
            self._query_wanted = True
        if self._query_wanted:
            self._start_queries()

    # -- the initial (throttled) query ---------------------------------------------------

    def _start_queries(self) -> None:
        """Ask every device that can answer, once (a run in progress starts over)."""
        if self.bridge_online is False:
            return  # nobody would answer: asked when the bridge comes online
        self._query_wanted = False
        self._query_queue = [
            d for d in sorted(self.devices.values(), key=lambda d: d.name)
            if self.can_answer(d) and self.queryable(d)
        ]
        if self._query_queue and (self._query_call is None or not self._query_call.active()):
            self._query_call = self.reactor.callLater(0, self._query_next)

    def can_answer(self, device: LiveDevice) -> bool:
        """Whether asking makes sense: not asleep (battery), not disabled, not offline."""
        info = device.info
        if info is not None and (
            info.disabled or (info.battery_powered and not self.settings.query_battery_devices)
        ):
            return False
        return device.available is not False

    @staticmethod
    def queryable(device: LiveTarget) -> list[str]:
        """Properties worth a ``/get``: queryable, readable, not events."""
        return [p for p, f in device.features.items()
                if f.queryable and f.readable and not f.is_event]

    def _query_next(self) -> None:
        self._query_call = None
        while self._query_queue:
            device = self._query_queue.pop(0)
            if device.key in self.devices and self.can_answer(device):
                for prop in self.queryable(device):
                    self.collator.query(device, prop)
                break
        if self._query_queue:
            self._query_call = self.reactor.callLater(self.settings.query_interval,
                                                      self._query_next)

    # -- incoming messages -------------------------------------------------------------------

    def _on_message(self, message: Message) -> None:
        self.messages_received += 1
        if self._remove_read_hook is not None:
            self.collator.hold()  # _flush_after_read flushes what the message causes
        rest = message.topic[len(self.base_topic) + 1:]
        size = len(message.payload)
        if size > self._smallest_limit:
            key, limit = (("max_devices_payload", self.settings.max_devices_payload)
                          if rest in ("bridge/devices", "bridge/groups")
                          else ("max_payload", self.settings.max_payload))
            if size > limit:
                self.warn_once(f"{message.topic}: {size} bytes, more than the {limit} "
                               f"allowed ([zigbee2mqtt].{key}); ignored", key=("size", rest))
                return
        target = self._by_name.get(rest)
        if target is not None:
            payload = self._json(message)
            if isinstance(payload, dict):
                target.apply_state(payload)
            elif payload is not None:
                self.warn_once(f"{message.topic}: expected a JSON object, got "
                               f"{_short(message.payload)}", key=("shape", rest))
            return
        if rest.startswith("bridge/"):
            self._on_bridge(rest[7:], message)
            return
        if rest.endswith("/availability"):
            name = rest[: -len("/availability")]
            found = self._by_name.get(name)
            if found is not None:
                self._on_availability(found, message)
                return
        if not message.payload:
            return  # a retained message being cleared
        self.warn_once(f"{message.topic}: message for an unknown device ignored",
                       key=("unknown", rest))

    def _json(self, message: Message) -> Any:
        try:
            try:
                # zigbee2mqtt writes UTF-8: decoding it ourselves skips json.loads' encoding
                # detection and call layers, ~0.6 of its 1.3 us per message (timeit, a
                # one-value report); anything else gets json.loads' own reading.
                return _DECODE(message.payload.decode())
            except ValueError:
                return json.loads(message.payload)
        except ValueError:
            self.warn_once(f"{message.topic}: not JSON ({_short(message.payload)}); ignored",
                           key=("json", message.topic))
            return None

    def _on_availability(self, target: LiveTarget, message: Message) -> None:
        state = _state_word(message.payload)
        if state in ("online", "offline"):
            target.set_available(state == "online")
        elif message.payload:
            self.warn_once(f"{message.topic}: unexpected availability "
                           f"{_short(message.payload)}", key=("avail", message.topic))

    def _on_bridge(self, what: str, message: Message) -> None:
        if what == "state":
            state = _state_word(message.payload)
            if state in ("online", "offline"):
                self._set_bridge_online(state == "online")
            return
        if what.startswith("response/"):
            payload = self._json(message)
            self.requests.response(what[9:], payload)
            return
        if what not in ("devices", "groups", "info", "event") or not message.payload:
            return
        payload = self._json(message)
        if payload is None:
            return
        if what == "devices":
            self.devices_payload = payload
            self._update_devices(payload)
        elif what == "groups":
            self.groups_payload = payload
            self._update_groups(payload)
        elif what == "info":
            self._update_info(payload)
        else:
            self._bridge_event(payload)

    def _set_bridge_online(self, online: bool) -> None:
        was = self.bridge_online
        if was is online:
            return
        self.bridge_online = online
        self._bridge_queries(online, restarted=was is False)
        log = self.log.info if online else self.log.warn
        log("{source}: bridge {state}", source=self.source,
            state="online" if online else "offline")
        if self.bridge_device is not None:
            self.registry.report(self.bridge_device.peer_id, 0, "online", online)
        self.bus.publish(StatusUpdate(self.source, "bridge",
                                      {"state": "online" if online else "offline"}))

    def _bridge_queries(self, online: bool, restarted: bool) -> None:
        """Queries follow the bridge: held while it is offline, asked again after a
        restart (its devices may have changed while it was down)."""
        if not online:
            if self._query_queue or (self._query_call is not None and self._query_call.active()):
                self._query_wanted = True  # the rest would be asked into the void
            if self._query_call is not None and self._query_call.active():
                self._query_call.cancel()
            self._query_call = None
            self._query_queue.clear()
        elif self.ready and (self._query_wanted
                             or (restarted and self.settings.requery_on_reconnect)):
            self._start_queries()

    def _update_info(self, payload: Any) -> None:
        if not isinstance(payload, dict):
            self.warn_once("bridge/info is not an object", key="info")
            return
        self.bridge_info = payload
        if self.bridge_device is None:
            return
        peer = self.bridge_device.peer_id
        if isinstance(payload.get("permit_join"), bool):
            self.registry.report(peer, 0, "permit_join", payload["permit_join"])
        if isinstance(payload.get("version"), str):
            self.registry.report(peer, 0, "version", payload["version"])

    def _bridge_event(self, payload: Any) -> None:
        if not isinstance(payload, dict):
            self.warn_once("bridge/event is not an object", key="event")
            return
        data: dict[str, Any] = payload["data"] if isinstance(payload.get("data"), dict) else {}
        self.log.info("{source}: bridge event {type} {name}", source=self.source,
                      type=payload.get("type"), name=data.get("friendly_name", ""))
        if self.bridge_device is not None:
            self.registry.report(self.bridge_device.peer_id, 0, "event", payload)
        for observer in list(self._observers):
            observer.bridge_event(payload)

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

    # -- sets ------------------------------------------------------------------------------

    def local_change(self, target: LiveTarget, prop: str, before: Any, after: Any) -> None:
        """A set changed what ``get()`` shows: views' listeners run before the flush."""
        self._local.append((target, prop, before, after))

    def _notify_local(self) -> bool:
        if not self._local:
            return False
        changes, self._local = self._local, []
        for target, prop, before, after in changes:
            for view in list(target.views):
                view._changed(prop, before, after, False)
        return True

    def _refused(self, held: list[Any]) -> None:
        """A ``/set`` was lost: the pending writes the automations' sets held for it end
        (the registry's own writes end through their refused Deferred), and views whose
        value goes back are told."""
        for var, value in held:
            before = self.registry.current(var)
            self.registry.drop_pending(var, value)
            after = self.registry.current(var)
            owner = var.device.owner if var.device is not None else None
            if isinstance(owner, LiveTarget) and not same(before, after):
                prop = owner.prop_of.get((var.channel, var.name))
                for view in list(owner.views):
                    if prop is not None:
                        view._changed(prop, before, after, False)

    def _flush_after_read(self) -> None:
        """The sets that the messages read in one wake-up caused leave now, collated,
        rather than one reactor turn (an epoll round, a preemption point on a busy
        machine) later. ``benchmarks/zigbee.py``, stock broker, closed-loop reaction
        p50, runs taking turns with main on a shared machine: median 1.38 ms (1.28-1.65)
        against 1.52 ms (1.21-2.56); open loop unchanged (docs/mqtt.md, "Measured")."""
        self.collator.release()

    def _publish_set(self, topic: str, payload: bytes) -> Deferred[None]:
        return self.mqtt.publish(topic, payload, qos=self.settings.qos)

    # -- warnings ---------------------------------------------------------------------------

    def warn_once(self, message: str, *, key: Any = None) -> None:
        """Warn, but not about the same thing more than once per ``warn_interval``."""
        key = message if key is None else key
        now = self.reactor.seconds()
        last = self._warned.get(key)
        if last is not None and now - last < self.settings.warn_interval:
            return
        if len(self._warned) > 10000:
            self._warned.clear()
        self._warned[key] = now
        self.log.warn("{message}", message=message)


_DECODE = json.JSONDecoder().decode


def _state_word(payload: bytes) -> str | None:
    """``{"state": "online"}`` (zigbee2mqtt 2.x) or plain ``online`` (1.x)."""
    text = payload.decode("utf-8", errors="replace").strip()
    if text in ("online", "offline"):
        return text
    try:
        data = json.loads(text)
    except ValueError:
        return None
    state = data.get("state") if isinstance(data, dict) else None
    return state if isinstance(state, str) else None


def _short(payload: bytes, limit: int = 60) -> str:
    text = payload.decode("utf-8", errors="replace")
    return repr(text if len(text) <= limit else text[:limit] + "...")


__all__ = ["SOURCE", "Network", "NetworkSettings", "Observer"]
