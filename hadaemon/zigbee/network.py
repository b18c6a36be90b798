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

``Network`` keeps the lifecycle; it inherits its halves in a line (no call between):
:mod:`~hadaemon.zigbee.incoming` (the messages), :mod:`~hadaemon.zigbee.roster` (devices,
groups, views), :mod:`~hadaemon.zigbee.readiness` (readiness, the query) and
:mod:`~hadaemon.zigbee.network_base` (shared state, sets, warnings).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, DeferredList
from twisted.logger import Logger

from hadaemon.bus import Bus, Lifecycle
from hadaemon.logs import get_logger
from hadaemon.mqtt import MqttClient
from hadaemon.registry import KeyValueStore, Registry
from hadaemon.zigbee.collation import Collator
from hadaemon.zigbee.incoming import Incoming
from hadaemon.zigbee.live import BRIDGE_CHANNELS, BridgeOwner
from hadaemon.zigbee.network_base import Observer
from hadaemon.zigbee.requests import BridgeRequests
from hadaemon.zigbee.settings import ZigbeeSettings
from hadaemon.zigbee.subscriptions import Subscriptions

SOURCE = "zigbee2mqtt"


NetworkSettings = ZigbeeSettings
"""A network's settings are the ``[zigbee2mqtt]`` settings, declared there once."""


class Network(Incoming):
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
        self.devices = {}
        self.groups = {}
        self._by_name = {}
        self._early = {}
        self._unbound = {}
        self._views = []
        self._observers = []
        self._local = []
        self._warned = {}
        self._subscriptions = Subscriptions(mqtt, self.base_topic, self._on_message,
                                            f"{source} network")
        self._bus_sub = None
        self._remove_read_hook = None
        self._ready_call = None
        self._query_call = None
        self._query_queue = []
        self._awaiting_devices = False
        self._query_wanted = False
        self._connects = 0
        self.ready = False
        self.bridge_online = None
        self.bridge_info = {}
        self.bridge_device = None
        self.devices_payload = None
        self.groups_payload = None
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
            self._early.clear()

        return waited.addBoth(forget)

    def add_observer(self, observer: Observer) -> Callable[[], None]:
        self._observers.append(observer)
        return lambda: self._observers.remove(observer) if observer in self._observers else None

__all__ = ["SOURCE", "Network", "NetworkSettings", "Observer"]
