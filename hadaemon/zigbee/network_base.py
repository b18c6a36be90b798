"""What the network's halves share: its parts and state (declared here once, set by
:class:`hadaemon.zigbee.network.Network`), the sets the live targets make, and warnings.

The network is one class made of halves, each in a module of its own:
:mod:`~hadaemon.zigbee.readiness` (connection, readiness, the throttled query),
:mod:`~hadaemon.zigbee.roster` (devices, groups, views), :mod:`~hadaemon.zigbee.incoming`
(zigbee2mqtt's messages) and :mod:`~hadaemon.zigbee.network` (lifecycle). ``Network``
inherits them in a line, so a message's path gains no call. Reactor thread only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger

from hadaemon.bus import Bus, Subscription
from hadaemon.mqtt import Message, MqttClient
from hadaemon.registry import KeyValueStore, Registry
from hadaemon.values import same
from hadaemon.zigbee.collation import Collator
from hadaemon.zigbee.devices import Device as DeviceView
from hadaemon.zigbee.live import LiveDevice, LiveGroup, LiveTarget, UnboundTarget
from hadaemon.zigbee.requests import BridgeRequests
from hadaemon.zigbee.settings import ZigbeeSettings
from hadaemon.zigbee.subscriptions import Subscriptions


class Observer(Protocol):
    """An automation runtime: told when the network is ready, lost, changed."""

    def network_ready(self, first: bool) -> None: ...
    def network_disconnected(self) -> None: ...
    def bridge_event(self, payload: dict[str, Any]) -> None: ...
    def devices_changed(self) -> None: ...


class NetworkBase:
    """The network's parts and state; ``Network.__init__`` sets them all."""

    reactor: Any
    mqtt: MqttClient
    registry: Registry
    bus: Bus
    store: KeyValueStore
    settings: ZigbeeSettings
    base_topic: str
    source: str
    mqtt_component: str
    store_prefix: str
    log: Logger
    collator: Collator
    requests: BridgeRequests
    devices: dict[str, LiveDevice]
    groups: dict[int, LiveGroup]
    _by_name: dict[str, LiveTarget]
    _early: dict[str, Message]
    _unbound: dict[tuple[str, str], UnboundTarget]
    _views: list[DeviceView]
    _observers: list[Observer]
    _local: list[tuple[LiveTarget, str, Any, Any]]
    _warned: dict[Any, float]
    _subscriptions: Subscriptions
    _bus_sub: Subscription | None
    _remove_read_hook: Callable[[], None] | None
    _ready_call: IDelayedCall | None
    _query_call: IDelayedCall | None
    _query_queue: list[LiveDevice]
    _awaiting_devices: bool
    _query_wanted: bool  # a query run not done yet (the bridge was offline)
    _connects: int
    ready: bool
    bridge_online: bool | None
    bridge_info: dict[str, Any]
    bridge_device: Any
    devices_payload: Any
    groups_payload: Any
    messages_received: int
    _smallest_limit: int

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

    def _apply_early(self) -> None:
        """Apply what came before the device list (``Incoming`` does)."""

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


__all__ = ["NetworkBase", "Observer"]
