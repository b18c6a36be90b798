"""The ``federation`` plugin: this daemon as one host of a site of daemons sharing a broker.

It uses the shared ``[mqtt]`` connection (whose retained status and last will are this
host's presence), publishes the local registry's devices (:mod:`.publisher`), mirrors the
other hosts' devices into the local registry (:mod:`.mirror`), and carries requests
between hosts (:mod:`.requests`): remote writes, and what other plugins send through
:meth:`Federation.request` (the bus's ``node:<id>@<host>`` addresses). Every message
received is checked (:mod:`.codec`); what cannot be trusted is dropped with a warning
naming the topic and the reason. Topics and payloads: docs/federation.md.
"""

from __future__ import annotations

import contextlib
import functools
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from twisted.internet.defer import Deferred, fail
from twisted.internet.interfaces import IDelayedCall
from twisted.python.failure import Failure

from hadaemon.bus import DeviceChanged, ErrorEvent, Event, Level, Lifecycle, Subscription
from hadaemon.config import Config, Section
from hadaemon.federation import codec
from hadaemon.federation.commands import attach
from hadaemon.federation.errors import Refused
from hadaemon.federation.mirror import Mirror
from hadaemon.federation.presence import Presence, PresenceCallback
from hadaemon.federation.publisher import Publisher
from hadaemon.federation.requests import Handler, Requests
from hadaemon.federation.settings import SCHEMA, FederationSettings
from hadaemon.federation.topics import (
    DEVICE,
    EVENT,
    INDEX,
    INFO,
    REQUEST,
    RESPONSE,
    STATUS,
    VALUE,
    Layout,
    Parsed,
    check_site,
)
from hadaemon.mqtt import Message, MqttClient, MqttSubscription
from hadaemon.plugin import Plugin, PluginContext
from hadaemon.registry import InvalidValue, UnknownDevice

InfoCallback = Callable[[str, Any], object]

_WARN_EVERY = 10.0  # seconds between two warnings of one kind (the rest are counted)


class Federation(Plugin):
    """One host of a federated site. Its public methods are the transport other plugins
    use (reactor thread only)."""

    name = "federation"
    description = "daemons on several hosts as one system, over the shared MQTT broker"
    schema: ClassVar[Section] = SCHEMA
    requires: ClassVar[tuple[str, ...]] = ("mqtt",)

    def __init__(self, context: PluginContext) -> None:
        super().__init__(context)
        self.settings = FederationSettings.from_section(context.config)
        self.host = context.daemon_config.core.name
        self.layout = Layout(self.settings.site)
        self.presence = Presence(self.host)
        self._mqtt_subs: list[MqttSubscription] = []
        self._bus_subs: list[Subscription] = []
        self._host_subs: dict[str, list[MqttSubscription]] = {}
        self._info_subs: dict[str, tuple[MqttSubscription, list[InfoCallback]]] = {}
        self._settle_call: IDelayedCall | None = None
        self._detach_commands: Callable[[], None] = lambda: None
        self._started = False
        self._warned: dict[str, tuple[float, int]] = {}
        self.dropped = 0
        """Messages received and dropped (malformed, refused): for tests and metrics."""

    # -- the public face (see docs/federation.md and the team contract) -----------------

    @property
    def site(self) -> str:
        return self.settings.site

    def online(self, host: str) -> bool:
        """Whether ``host`` is online now (this host always is)."""
        return self.presence.online(host)

    def hosts(self) -> frozenset[str]:
        """The other hosts online now."""
        return self.presence.hosts()

    def known_hosts(self) -> frozenset[str]:
        """The other hosts seen since the start, online or not."""
        return self.presence.known()

    def on_presence(self, callback: PresenceCallback) -> Callable[[], None]:
        """``callback(host, online)`` on every change of another host's presence."""
        return self.presence.on_change(callback)

    def request(self, host: str, kind: str, body: Any, *,
                timeout: float | None = None) -> Deferred[Any]:
        """Ask ``host`` to serve a request; fires with its handler's result. Fails at once
        with HostOffline when the host is not online, with RemoteTimeout, RemoteError,
        PayloadTooLarge: see :mod:`.requests`."""
        return self.requests.request(host, kind, body, timeout=timeout)

    send_command = request

    def serve(self, kind: str, handler: Handler) -> Callable[[], None]:
        """``handler(sender_host, body)`` serves requests of ``kind``; returns the remover."""
        return self.requests.serve(kind, handler)

    serve_commands = serve

    def announce(self, name: str, body: Any) -> Deferred[None]:
        """Publish (retained) this host's record ``name``; None clears it."""
        topic = self.layout.topic(self.host, INFO, name)
        if body is None:
            return self.mqtt.publish(topic, b"", qos=1, retain=True)
        try:
            payload = codec.encode(self.host, {"body": body}, limit=self.settings.max_payload,
                                   what=f"record {name!r}")
        except (TypeError, ValueError):
            return fail(Failure())
        return self.mqtt.publish(topic, payload, qos=1, retain=True)

    def watch(self, name: str, callback: InfoCallback) -> Callable[[], None]:
        """``callback(host, body)`` for every host's record ``name`` (None: cleared)."""
        entry = self._info_subs.get(name)
        if entry is None:
            callbacks: list[InfoCallback] = []
            sub = self.mqtt.subscribe(self.layout.pattern(None, INFO, name),
                                      functools.partial(self._guard, handler=self._on_info,
                                                        callbacks=callbacks),
                                      qos=1, name=f"federation: info {name}")
            entry = self._info_subs[name] = (sub, callbacks)
        entry[1].append(callback)

        def remove() -> None:
            if callback in entry[1]:
                entry[1].remove(callback)

        return remove

    def remote_of(self, peer_id: int) -> tuple[str, int] | None:
        """``(host, peer id there)`` of a local mirror's peer id; None for a local device."""
        return self.mirror.remote_of(peer_id)

    # -- lifecycle ------------------------------------------------------------------------

    @classmethod
    def check_config(cls, section: Mapping[str, Any], config: Config) -> list[str]:
        """``hadaemon check``: the site's shape, and an explicit [mqtt] status topic as
        the presence topic of this host (unset, it follows the site)."""
        settings = FederationSettings.from_section(section)
        try:
            check_site(settings.site)
        except ValueError as exc:
            return [str(exc)]
        return _status_problem(settings.site, config.core.name,
                               str(config.section("mqtt").get("status_topic") or ""))

    def start(self) -> None:
        mqtt: MqttClient | None = self.context.plugin("mqtt")
        if mqtt is None:
            raise RuntimeError("the federation needs the mqtt plugin's connection")
        self.mqtt = mqtt
        # (the connection's own: never "", whether set or following the site)
        status_topic = str(getattr(getattr(mqtt, "settings", None), "status_topic", None))
        problems = _status_problem(self.site, self.host, status_topic)
        if problems:
            raise ValueError(problems[0])
        s = self.settings
        self.requests = Requests(self.reactor, mqtt, self.layout, self.presence,
                                 timeout=s.request_timeout, limit=s.max_payload,
                                 dedup_window=s.dedup_window, log=self.log)
        self.mirror = Mirror(self.registry, self.requests, limit=s.max_payload,
                             warn=self._warn, hold_sources=frozenset(s.exclude_sources))
        self.publisher = Publisher(self.reactor, self.bus, self.registry, mqtt, self.layout,
                                   self.host, mirrored=self.mirror.mirrored, qos=s.value_qos,
                                   limit=s.max_payload, warn=self._warn,
                                   exclude=frozenset(s.exclude_sources))
        self._removers = [self.requests.serve("device.write", self._serve_write),
                          self.requests.serve("device.query", self._serve_query)]
        layout, me = self.layout, self.host
        handlers: list[tuple[str, Callable[[Message, Parsed], None]]] = [
            (layout.pattern(None, DEVICE, "+"), self._on_description),
            (layout.pattern(None, INDEX), self._on_index),
            (layout.pattern(None, STATUS), self._on_status),
            (layout.pattern(me, REQUEST, "+"), self._on_request),
            (layout.pattern(me, RESPONSE, "+"), self._on_response),
        ]
        for pattern, handler in handlers:
            self._mqtt_subs.append(mqtt.subscribe(
                pattern, functools.partial(self._guard, handler=handler), qos=1,
                name=f"federation: {pattern}"))
        self._bus_subs += [
            self.bus.subscribe("lifecycle/mqtt/+", self._on_link,
                               name="federation: broker link", event_type=Lifecycle),
            self.bus.subscribe("device/+/+/added", self._on_local_device,
                               name="federation: twins", event_type=DeviceChanged)]
        self.publisher.start()
        if mqtt.connected:
            self._connected()
        self._started = True
        self._detach_commands = attach(self, self.bus, self.log)
        self.log.info("federation: host {host} of site {site}", host=me, site=self.site)

    def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        self._detach_commands()
        if self._settle_call is not None and self._settle_call.active():
            self._settle_call.cancel()
        for remover in self._removers:
            remover()
        for sub in self._mqtt_subs:
            sub.cancel()
        for subs in self._host_subs.values():
            for sub in subs:
                sub.cancel()
        for sub, _ in self._info_subs.values():
            sub.cancel()
        for bus_sub in self._bus_subs:
            bus_sub.cancel()
        self.publisher.stop()
        self.requests.stop()
        self.mirror.stop()

    # -- the broker link -------------------------------------------------------------------

    def _on_link(self, event: Event) -> None:
        assert isinstance(event, Lifecycle)
        if event.state in (Lifecycle.CONNECTED, Lifecycle.RECONNECTED):
            self._connected()
        elif event.state == Lifecycle.DISCONNECTED:
            for host in self.presence.link_down():
                self._presence_changed(host, False, "unreachable (this host's broker link "
                                       "dropped)")

    def _on_local_device(self, event: Event) -> None:
        assert isinstance(event, DeviceChanged)
        if self.mirror.mirrored(event.peer_id):
            return
        with contextlib.suppress(UnknownDevice):
            device = self.registry.device(event.peer_id)
            self.mirror.local_added(device.source, device.key)

    def _connected(self) -> None:
        # The settle delay counts from the first connection: what this host's previous
        # run left on the broker arrives only then, and adapters fed by the broker
        # (zigbee2mqtt's bridge/devices) add their devices only after it.
        if self._settle_call is None:
            self._settle_call = self.reactor.callLater(self.settings.settle_delay,
                                                       self._settle)
        self.publisher.publish_all()

    def _settle(self) -> None:
        self.publisher.settle()
        self.mirror.release()

    def _presence_changed(self, host: str, up: bool, state: str = "offline") -> None:
        if not up:
            self.requests.host_gone(host, state)
        self.mirror.host_presence(host, up)
        self.bus.publish(Lifecycle(self.name, "host-online" if up else "host-offline",
                                   {"host": host}))
        for callback in self.presence.callbacks():
            try:
                callback(host, up)
            except Exception:
                self.log.failure("presence callback {callback!r} failed", callback=callback)

    def _see(self, host: str) -> None:
        """Values and events of a host are subscribed to per host (not with a wildcard: it
        would bring this host's own publishes back to it)."""
        if host == self.host or host in self._host_subs:
            return
        qos = self.settings.value_qos
        self._host_subs[host] = [
            self.mqtt.subscribe(self.layout.pattern(host, kind, "#"),
                                functools.partial(self._guard, handler=self._on_value,
                                                  kind=kind),
                                qos=qos, name=f"federation: {kind}s of {host}")
            for kind in (VALUE, EVENT)]

    # -- what arrives ------------------------------------------------------------------------

    def _guard(self, message: Message, *, handler: Callable[..., None], **args: Any) -> None:
        parsed = self.layout.parse(message.topic)
        if parsed is None:
            return
        try:
            handler(message, parsed, **args)
        except Refused as exc:
            self.dropped += 1
            # one warning per kind of problem and host every _WARN_EVERY s: a flood of
            # one problem is counted, not logged a message at a time
            problem = re.sub(r"\d+", "#", exc.reason)[:48]
            self._warn(f"{parsed.kind}:{parsed.host}:{problem}", f"dropped {exc}")
        except Exception as exc:
            self.dropped += 1
            self.log.failure("federation: {topic} could not be handled", topic=message.topic)
            self._warn(f"{parsed.kind}:{parsed.host}", f"dropped {message.topic}: "
                       f"{type(exc).__name__}: {exc}")

    def _on_status(self, message: Message, parsed: Parsed) -> None:
        if parsed.rest:
            return
        self._see(parsed.host)
        change = self.presence.status(message.topic, parsed.host, message.payload)
        if change is not None:
            self.log.info("federation: host {host} is {state}", host=parsed.host,
                          state="online" if change[1] else "offline")
            self._presence_changed(*change)

    def _on_description(self, message: Message, parsed: Parsed) -> None:
        try:
            peer = int(parsed.rest[0])
        except ValueError:
            raise Refused(message.topic, "the peer id must be an integer") from None
        if parsed.host == self.host:
            self.publisher.own_description(peer, self._places(message))
            return
        self._see(parsed.host)
        self.mirror.description(message.topic, parsed.host, peer, message.payload)

    def _places(self, message: Message) -> list[tuple[int, str]] | None:
        if not message.payload:
            return None
        decoded = codec.decode(message.topic, self.host, message.payload,
                               limit=self.settings.max_payload)
        channels = codec.read_channels(message.topic, decoded.get("channels"))
        return [(c.index, v.name) for c in channels for v in c.variables if not v.is_event]

    def _on_index(self, message: Message, parsed: Parsed) -> None:
        if parsed.rest or parsed.host == self.host:
            return
        self._see(parsed.host)
        self.mirror.index(message.topic, parsed.host, message.payload)

    def _on_value(self, message: Message, parsed: Parsed, kind: str) -> None:
        self.mirror.value(message.topic, parsed.host, parsed.rest, message.payload,
                          event=kind == EVENT)

    def _on_request(self, message: Message, parsed: Parsed) -> None:
        if len(parsed.rest) != 1:
            raise Refused(message.topic, "a request topic is <site>/<host>/req/<sender>")
        self.requests.incoming(message.topic, parsed.rest[0], message.payload)

    def _on_response(self, message: Message, parsed: Parsed) -> None:
        if len(parsed.rest) != 1:
            raise Refused(message.topic, "an answer topic is <site>/<host>/resp/<responder>")
        self.requests.response(message.topic, parsed.rest[0], message.payload)

    def _on_info(self, message: Message, parsed: Parsed,
                 callbacks: list[InfoCallback]) -> None:
        body = None
        if message.payload:
            body = codec.decode(message.topic, parsed.host, message.payload,
                                limit=self.settings.max_payload).get("body")
        for callback in list(callbacks):
            try:
                callback(parsed.host, body)
            except Exception:
                self.log.failure("record callback {callback!r} failed", callback=callback)

    # -- serving remote writes -----------------------------------------------------------------

    def _local_target(self, body: Any) -> tuple[int, int]:
        if not isinstance(body, dict):
            raise InvalidValue(f"a device request is a map, got {type(body).__name__}")
        peer, channel = body.get("peer"), body.get("channel")
        if not isinstance(peer, int) or not isinstance(channel, int):
            raise InvalidValue("a device request names an integer peer and channel")
        if self.mirror.mirrored(peer):
            raise UnknownDevice(peer)  # another host's device: served by its owner only
        return peer, channel

    def _serve_write(self, sender: str, body: Any) -> Deferred[None]:
        peer, channel = self._local_target(body)
        values = body.get("values")
        if not isinstance(values, dict) or not values:
            raise InvalidValue("a device.write request carries a non-empty map of values")
        return self.registry.put_values(peer, channel, values)

    def _serve_query(self, sender: str, body: Any) -> Deferred[None]:
        peer, channel = self._local_target(body)
        names = body.get("names")
        return self.registry.query(peer, channel, None if names is None else
                                   codec.names_of(names))

    # -- warnings, rate-limited --------------------------------------------------------------

    def _warn(self, key: str, text: str) -> None:
        now = time.monotonic()
        last, suppressed = self._warned.get(key, (0.0, 0))
        if now - last < _WARN_EVERY:
            self._warned[key] = (last, suppressed + 1)
            return
        self._warned[key] = (now, 0)
        more = f" ({suppressed} more like it since)" if suppressed else ""
        self.log.warn("federation: {text}{more}", text=text, more=more)
        self.bus.publish(ErrorEvent(self.name, text + more, Level.WARNING))


def _status_problem(site: str, name: str, status_topic: str) -> list[str]:
    # "" (not set) follows the site: the mqtt plugin makes it <site>/<name>/status.
    expected = f"{site}/{name}/status"
    if not status_topic or status_topic == expected:
        return []
    return [f"[federation] site {site!r}: this host's presence is the [mqtt] status topic, "
            f"which must be {expected!r}, not {status_topic!r} (leave [mqtt].status_topic "
            "unset: it follows the site)"]


__all__ = ["Federation"]
