"""This host's side of shared devices: its registry's devices, published for the others.

Each local device's description is retained at ``<site>/<me>/device/<peer>``, each known
value at ``.../value/<peer>/<channel>/<name>`` (retained: a host that subscribes later,
or again, gets the current state from the broker), each event variable's occurrence at
``.../event/...`` (not retained: an old button press is no news). System variables are
device 0 (channel -1). Everything is published again on every (re)connection of the
broker link (a restarted broker may have lost the retained messages). Devices that are
mirrors of other hosts' are never published (no echo between hosts).

Removals: a device removed from the registry has its retained topics cleared (an empty
retained payload). A device that is gone after a restart is cleared once
``settle_delay`` has passed since the start (adapters add their devices in that time),
and from then on the retained index ``<site>/<me>/devices`` lists the peer ids published,
so a host that missed the clearing removes the device too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from twisted.internet.interfaces import IDelayedCall
from twisted.python.failure import Failure

from hadaemon.bus import Bus, DeviceChanged, Event, Subscription, VariableChanged
from hadaemon.federation import codec
from hadaemon.federation.topics import DEVICE, EVENT, INDEX, VALUE, Layout
from hadaemon.mqtt import MqttClient
from hadaemon.registry import (
    SYSTEM_CHANNEL,
    SYSTEM_PEER_ID,
    SYSTEM_SOURCE,
    UNKNOWN,
    Access,
    Registry,
    UnknownDevice,
)

_CHUNK = 1000  # publishes per reactor turn when everything is published again


class Publisher:
    """Reactor thread only."""

    def __init__(self, reactor: Any, bus: Bus, registry: Registry, mqtt: MqttClient,
                 layout: Layout, me: str, *, mirrored: Callable[[int], bool], qos: int,
                 limit: int, warn: Callable[[str, str], None],
                 exclude: frozenset[str] = frozenset()) -> None:
        self._reactor = reactor
        self._bus = bus
        self._registry = registry
        self._mqtt = mqtt
        self._layout = layout
        self._me = me
        self._mirrored = mirrored
        self._exclude = exclude
        self._qos = qos
        self._limit = limit
        self._warn = warn
        self._subs: list[Subscription] = []
        self._published: dict[int, list[tuple[int, str]]] = {}  # peer -> retained values
        self._dirty: set[int] = set()
        self._flush_call: IDelayedCall | None = None
        self._replay: Iterator[tuple[str, bytes, int]] | None = None
        self._replay_call: IDelayedCall | None = None
        self._settled = False
        self._index_dirty = False
        self._own_stale: dict[int, list[tuple[int, str]]] = {}  # retained, not ours now
        self._sysvar_names: set[str] = set()
        self.values_published = 0

    def start(self) -> None:
        self._subs = [
            self._bus.subscribe("device/#", self._on_device, name="federation: devices",
                                event_type=DeviceChanged),
            self._bus.subscribe("variable/#", self._on_variable,
                                name="federation: values", event_type=VariableChanged),
        ]

    def stop(self) -> None:
        for sub in self._subs:
            sub.cancel()
        self._subs = []
        for call in (self._flush_call, self._replay_call):
            if call is not None and call.active():
                call.cancel()
        self._replay = None

    def settle(self) -> None:
        """``settle_delay`` after the start: the device set is what the adapters made it;
        clear what a previous run left and publish the index from now on."""
        self._settled = True
        for peer in sorted(self._own_stale):
            if not self._local(peer):
                self._clear(peer, self._own_stale[peer])
        self._own_stale.clear()
        self._index_dirty = True
        self._schedule()

    # -- what is local -------------------------------------------------------------------

    def _local(self, peer: int) -> bool:
        if peer == SYSTEM_PEER_ID:
            return True
        try:
            device = self._registry.device(peer)
        except UnknownDevice:
            return False
        return not self._mirrored(peer) and device.source not in self._exclude

    def _local_peers(self) -> list[int]:
        return [SYSTEM_PEER_ID] + [d.peer_id for d in self._registry.devices()
                                   if not self._mirrored(d.peer_id)
                                   and d.source not in self._exclude]

    # -- publishing ----------------------------------------------------------------------

    def _publish(self, topic: str, payload: bytes, qos: int) -> None:
        """Retained (everything but events), at ``qos``."""
        d = self._mqtt.publish(topic, payload, qos=qos, retain=True)
        d.addErrback(self._not_published, topic)

    def _not_published(self, failure: Failure, topic: str) -> None:
        self._warn("publish", f"{topic} not published: {failure.getErrorMessage()}")

    def _encode(self, fields: dict[str, Any], what: str) -> bytes | None:
        try:
            return codec.encode(self._me, fields, limit=self._limit, what=what)
        except (TypeError, ValueError) as exc:
            self._warn("publish", f"{what} not published: {exc}")
            return None

    def _description(self, peer: int) -> tuple[bytes | None, list[tuple[int, str]]]:
        """The encoded description of a local device, and its retained values' places."""
        if peer == SYSTEM_PEER_ID:
            names = sorted(self._registry.system_variables())
            self._sysvar_names = set(names)
            fields: dict[str, Any] = {
                "peer": SYSTEM_PEER_ID, "source": SYSTEM_SOURCE, "key": str(SYSTEM_PEER_ID),
                "name": f"{self._me} system variables", "type": "system", "info": {},
                "channels": [{"index": SYSTEM_CHANNEL, "name": "", "type": "", "variables": [
                    {"name": n, "type": "any", "access": int(Access.READ | Access.WRITE)}
                    for n in names]}]}
            places = [(SYSTEM_CHANNEL, n) for n in names]
        else:
            device = self._registry.device(peer)
            fields = codec.describe(device)
            places = [(i, n) for i, c in device.channels.items()
                      for n, v in c.variables.items() if not v.spec.is_event]
        return self._encode(fields, f"the description of device {peer}"), places

    def _values(self, peer: int) -> Iterator[tuple[str, bytes, int]]:
        if peer == SYSTEM_PEER_ID:
            items = [(SYSTEM_CHANNEL, n, v) for n, v in
                     self._registry.system_variables().items()]
        else:
            items = [(i, n, v.value) for i, c in self._registry.device(peer).channels.items()
                     for n, v in c.variables.items() if not v.spec.is_event]
        for channel, name, value in items:
            if value is UNKNOWN:
                continue
            payload = self._encode({"value": value},
                                   f"value {name!r} of device {peer} channel {channel}")
            if payload is not None:
                yield self._layout.topic(self._me, VALUE, peer, channel, name), payload, self._qos

    def _device_messages(self, peer: int) -> Iterator[tuple[str, bytes, int]]:
        if not self._local(peer):
            return
        payload, places = self._description(peer)
        if payload is None:
            return
        old = self._published.get(peer, [])
        self._published[peer] = places
        gone = set(old) - set(places)
        for channel, name in sorted(gone):
            yield self._layout.topic(self._me, VALUE, peer, channel, name), b"", 1
        yield self._layout.topic(self._me, DEVICE, peer), payload, 1
        yield from self._values(peer)

    def publish_all(self) -> None:
        """Everything again, in chunks (the broker link is (re)connected)."""
        if not self._mqtt.connected:
            return
        peers = self._local_peers()

        def messages() -> Iterator[tuple[str, bytes, int]]:
            for peer in peers:
                yield from self._device_messages(peer)
            if self._settled:
                yield self._index()

        self._replay = messages()
        if self._replay_call is None or not self._replay_call.active():
            self._replay_call = self._reactor.callLater(0, self._replay_chunk)

    def _replay_chunk(self) -> None:
        self._replay_call = None
        replay = self._replay
        if replay is None or not self._mqtt.connected:
            return
        for _ in range(_CHUNK):
            try:
                topic, payload, qos = next(replay)
            except StopIteration:
                self._replay = None
                return
            self._publish(topic, payload, qos)
        self._replay_call = self._reactor.callLater(0, self._replay_chunk)

    def _index(self) -> tuple[str, bytes, int]:
        peers = self._local_peers()
        payload = codec.encode(self._me, {"peers": peers}, limit=1 << 30, what="the index")
        return self._layout.topic(self._me, INDEX), payload, 1

    def _clear(self, peer: int, places: list[tuple[int, str]]) -> None:
        if not self._mqtt.connected:
            return
        self._publish(self._layout.topic(self._me, DEVICE, peer), b"", 1)
        for channel, name in places:
            self._publish(self._layout.topic(self._me, VALUE, peer, channel, name), b"", 1)

    # -- changes ---------------------------------------------------------------------------

    def _schedule(self) -> None:
        if self._flush_call is None or not self._flush_call.active():
            self._flush_call = self._reactor.callLater(0, self._flush)

    def _on_device(self, event: Event) -> None:
        assert isinstance(event, DeviceChanged)
        if self._mirrored(event.peer_id) or event.source in self._exclude:
            return
        if event.change == DeviceChanged.REMOVED:
            self._dirty.discard(event.peer_id)
            places = self._published.pop(event.peer_id, None)
            if places is not None:
                self._clear(event.peer_id, places)
        else:
            self._dirty.add(event.peer_id)
        self._index_dirty = True
        self._schedule()

    def _flush(self) -> None:
        self._flush_call = None
        if not self._mqtt.connected:
            self._dirty.clear()
            return
        dirty, self._dirty = sorted(self._dirty), set()
        for peer in dirty:
            for topic, payload, qos in self._device_messages(peer):
                self._publish(topic, payload, qos)
        if self._index_dirty and self._settled:
            self._index_dirty = False
            self._publish(*self._index())

    def _on_variable(self, event: Event) -> None:
        assert isinstance(event, VariableChanged)
        peer = event.peer_id
        if peer == SYSTEM_PEER_ID:
            if event.name not in self._sysvar_names:
                self._sysvar_names.add(event.name)
                self._dirty.add(SYSTEM_PEER_ID)  # a new one: describe the device again
                self._schedule()
                return
        elif self._mirrored(peer) or peer not in self._published:
            return  # another host's, or described in this turn's flush (values with it)
        if not self._mqtt.connected or event.value is UNKNOWN:
            return
        kind = EVENT if event.is_event else VALUE
        payload = self._encode({"value": event.value, "ts": event.timestamp},
                               f"value {event.name!r} of device {peer} channel {event.channel}")
        if payload is not None:
            self.values_published += 1
            topic = self._layout.topic(self._me, kind, peer, event.channel, event.name)
            d = self._mqtt.publish(topic, payload, qos=self._qos, retain=not event.is_event)
            d.addErrback(self._not_published, topic)

    # -- this host's own retained descriptions, as the broker has them ------------------

    def own_description(self, peer: int, places: list[tuple[int, str]] | None) -> None:
        """A retained description under this host's name arrived (``places`` None: it was
        cleared). One for a device this host no longer has is cleared, after the settle
        delay (before it, the adapters may still add it)."""
        if places is None:
            self._own_stale.pop(peer, None)
            return
        if self._local(peer):
            return
        if self._settled:
            self._clear(peer, places)
        else:
            self._own_stale[peer] = places


__all__ = ["Publisher"]
