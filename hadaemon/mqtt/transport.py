"""paho-mqtt 2.x driven by the reactor: one paho client and socket per connection attempt.

paho's blocking ``connect()`` (DNS, TCP, TLS: a peer that never answers TLS would stall
the reactor) runs in a thread; the socket is then handed to the reactor, which calls
paho's ``loop_read``/``loop_write`` when it is readable/writable and ``loop_misc`` once a
second for keepalives. paho never runs a thread of its own here, so every paho callback,
and every callback of ours, runs on the reactor thread.

Reads are buffered: paho reads a packet with three ``recv`` calls (command byte, length,
body); a 64 KiB read buffer serves those from memory and lets one reactor wake-up handle
every packet that arrived, which roughly doubles ingest throughput. A plain QoS 0
PUBLISH (what zigbee2mqtt sends by default) is decoded from that buffer by us, not paho
(:meth:`_BufferedSocket.take_publish`, in ``socketbuffer.py``); every other packet goes
through paho.

Writes: a QoS 1 PUBLISH made while paho has nothing of its own to write or to have
acknowledged is framed and written by us, and its PUBACK taken by us
(:meth:`PahoSession.publish`); everything else (QoS 0, the publishes of a reconnect,
SUBSCRIBE, PINGREQ, DISCONNECT) goes through paho, and our bytes always leave before
anything paho queued after them.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from collections.abc import Callable
from typing import Any, Literal

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode
from twisted.internet.interfaces import IReadWriteDescriptor
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from hadaemon.mqtt.reasons import describe_error, describe_loss
from hadaemon.mqtt.settings import MqttSettings
from hadaemon.mqtt.socketbuffer import _BufferedSocket

_MAX_FRAMED = 1 << 27  # bigger publishes go through paho (MQTT's limit is 256 MiB)
_MAX_PACKETS_PER_WAKEUP = 1000


class _ReactorPahoClient(mqtt.Client):
    quickack = False
    own_puback: Callable[[int], bool] | None = None  # the session's: True if it was ours

    def _create_socket(self) -> Any:
        return _BufferedSocket(super()._create_socket(), self.quickack)

    def _handle_pubackcomp(self, cmd: Literal["PUBACK", "PUBCOMP"]) -> MQTTErrorCode:
        # paho reads several packets at a time when it has messages in flight, so the
        # PUBACK of a PUBLISH we framed can reach paho, which ignores ids it did not give.
        packet = self._in_packet["packet"]
        if (cmd == "PUBACK" and self.own_puback is not None and len(packet) >= 2
                and self.own_puback((packet[0] << 8) | packet[1])):
            return mqtt.MQTT_ERR_SUCCESS
        return super()._handle_pubackcomp(cmd)


@implementer(IReadWriteDescriptor)
class PahoSession:
    """One connection attempt: a paho client, its socket, and the reactor registration.

    Created and used on the reactor thread; only :meth:`open_in_thread` runs in a
    worker thread, and it touches nothing but its own paho client.
    """

    def __init__(
        self,
        reactor: Any,
        settings: MqttSettings,
        ssl_context: ssl.SSLContext | None,
        *,
        on_connack: Callable[[bool, str], None],
        on_message: Callable[[str, bytes, int, bool], None],
        on_publish: Callable[[int], None],
        on_closed: Callable[[str], None],
        log: Logger,
        will: tuple[str, bytes] | None = None,
        on_read_done: Callable[[], None] | None = None,
    ) -> None:
        self._reactor = reactor
        self._settings = settings
        self._log = log
        self._on_connack = on_connack
        self._on_message_cb = on_message
        self._on_publish_cb = on_publish
        self._on_closed_cb = on_closed
        self._on_read_done = on_read_done
        protocol = mqtt.MQTTv5 if settings.protocol == "5" else mqtt.MQTTv311
        self._mqtt5 = protocol == mqtt.MQTTv5
        kwargs: dict[str, Any] = {"client_id": settings.client_id, "protocol": protocol,
                                  "reconnect_on_failure": False}
        if protocol == mqtt.MQTTv311:
            kwargs["clean_session"] = True
        client = _ReactorPahoClient(CallbackAPIVersion.VERSION2, **kwargs)
        client.quickack = settings.tcp_quickack
        client.own_puback = self._own_puback
        client.connect_timeout = settings.connect_timeout
        client.max_inflight_messages_set(settings.max_inflight)
        if settings.username:
            client.username_pw_set(settings.username, settings.password or None)
        if ssl_context is not None:
            client.tls_set_context(ssl_context)
            if not settings.tls_verify:
                client.tls_insecure_set(True)  # else paho checks the host name itself
        if will is not None:
            client.will_set(will[0], will[1], qos=1, retain=True)
        client.on_connect = self._paho_connect
        client.on_message = self._paho_message
        client.on_publish = self._paho_publish
        client.on_disconnect = self._paho_disconnect
        client.on_socket_open = self._socket_open
        client.on_socket_close = self._socket_close
        client.on_socket_register_write = self._register_write
        client.on_socket_unregister_write = self._unregister_write
        self.client = client
        self._sock: Any = None
        self._fd = -1
        self._handed_over = False
        self._wants_write = self._reading = self._writing = self._in_read = False
        self._more_call: Any = None
        self._deferring_writer = False
        self._out = bytearray()  # PUBLISHes we framed, not yet written
        self._own: dict[int, None] = {}  # their packet ids, until their PUBACK
        self._own0: list[int] = []  # the ids of our QoS 0 ones in _out, done when written
        self.closed = False
        self._close_reason = ""
        self._misc = LoopingCall(self._loop_misc)
        self._misc.clock = reactor

    # -- the worker thread ----------------------------------------------------------

    def open_in_thread(self) -> None:
        """DNS, TCP, TLS and queueing CONNECT; blocking, so never on the reactor thread."""
        self.client.connect(
            self._settings.host, self._settings.port, keepalive=self._settings.keepalive
        )

    def _socket_open(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        # Called inside connect(), in the worker thread: only note the socket.
        self._sock = sock
        self._fd = sock.fileno()
        if self._settings.tcp_nodelay:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # -- back on the reactor thread -------------------------------------------------

    def hand_over(self) -> None:
        """Register the socket with the reactor (after ``open_in_thread`` returned)."""
        if self.closed or self._sock is None:
            return
        self._handed_over = True
        self._reactor.addReader(self)
        self._reading = True
        if self._wants_write or self.client.want_write():
            self._add_writer()
        self._misc.start(1.0, now=False)

    def fileno(self) -> int:
        # paho closes the socket right after on_socket_close: keep the number.
        return self._fd

    def logPrefix(self) -> str:
        return "mqtt"

    def doRead(self) -> None:
        self._in_read = True
        self._more_call = None
        sock = self._sock
        fast = isinstance(sock, _BufferedSocket)
        taken = False
        try:
            for _ in range(_MAX_PACKETS_PER_WAKEUP):
                # Between paho's packets, a plain QoS 0 PUBLISH is taken here (see
                # _BufferedSocket.take_publish); paho reads everything else.
                if fast and not self.client._in_packet["command"]:
                    if self._own:
                        mid = sock.take_puback(self._own)
                        if mid is not None:
                            taken = True
                            self._own_puback(mid)
                            if self.closed or not sock.buffered():
                                return
                            continue
                    publish = sock.take_publish(self._mqtt5)
                    if publish is not None:
                        taken = True
                        self._on_message_cb(publish[0], publish[1], 0, publish[2])
                        if self.closed or not sock.buffered():
                            return
                        continue
                rc = self.client.loop_read()
                if rc != mqtt.MQTT_ERR_SUCCESS or self.closed:
                    return
                if not self._buffered():
                    return
            # Bytes are left in our buffer (or the TLS layer's), where epoll cannot see
            # them: let other work run, then go on reading, or they would wait for the
            # next packet to arrive (up to a keepalive later).
            self._more_call = self._reactor.callLater(0, self.doRead)
        except Exception:
            self._log.failure("MQTT read failed", failure=Failure())
            self.abort("read error")
        finally:
            self._in_read = False
            if taken:
                # paho's keepalive reads this; its own reads set it per packet.
                self.client._last_bytes_received = time.monotonic()
            if self._on_read_done is not None and not self.closed:
                # Outside the read, so what the callback publishes is written at once.
                self._on_read_done()

    def _buffered(self) -> int:
        sock = self._sock
        return sock.buffered() if isinstance(sock, _BufferedSocket) else 0

    def doWrite(self) -> None:
        self._wants_write = False
        try:
            if self._out and not self._write_own():
                return  # paho's packets wait behind ours
            if self.client.want_write() or self._writing:
                self.client.loop_write()  # unregisters the writer if paho had registered it
            if self._writing and not self._out and not self.client.want_write():
                self._writing = False  # it was registered for our bytes only
                self._reactor.removeWriter(self)
        except Exception:
            self._log.failure("MQTT write failed", failure=Failure())
            self.abort("write error")

    def connectionLost(self, reason: Failure) -> None:
        self.abort(reason.getErrorMessage())

    def _loop_misc(self) -> None:
        try:
            self.client.loop_misc()
        except Exception:
            self._log.failure("MQTT keepalive check failed", failure=Failure())
            self.abort("keepalive error")

    def _register_write(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        if not self._handed_over or self._deferring_writer:
            self._wants_write = True  # handled by hand_over() / publish()
            return
        self._add_writer()

    def _add_writer(self) -> None:
        if not self._writing and not self.closed:
            self._writing = True
            self._reactor.addWriter(self)

    def _unregister_write(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        self._wants_write = False
        if self._writing and not self._out:
            self._writing = False
            self._reactor.removeWriter(self)

    def _socket_close(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        self._detach()

    def _detach(self) -> None:
        more, self._more_call = self._more_call, None
        if more is not None and more.active():
            more.cancel()
        if self._writing:
            self._writing = False
            self._reactor.removeWriter(self)
        if self._reading:
            self._reading = False
            self._reactor.removeReader(self)
        if self._misc.running:
            self._misc.stop()

    # -- paho callbacks (reactor thread, inside loop_read/loop_write/loop_misc) ------

    def _paho_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, rc: ReasonCode, props: Any
    ) -> None:
        self._on_connack(not rc.is_failure, str(rc))

    def _paho_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self._on_message_cb(message.topic, bytes(message.payload), message.qos,
                            bool(message.retain))

    def _paho_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, rc: ReasonCode, props: Any
    ) -> None:
        self._on_publish_cb(mid)

    def _paho_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, rc: ReasonCode, props: Any
    ) -> None:
        sock = self._sock
        self._finish(self._close_reason or describe_loss(
            rc, from_broker=flags.is_disconnect_packet_from_server,
            error=getattr(sock, "error", None), eof=getattr(sock, "eof", False),
            keepalive=self._settings.keepalive,
        ))

    def _finish(self, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        self._detach()
        self._on_closed_cb(reason)

    # -- commands --------------------------------------------------------------------

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> int | None:
        """Hand a publish to paho; its mid, or None if paho refused it (not connected)."""
        if len(payload) < _MAX_FRAMED and self._can_frame(qos):
            return self._publish_framed(topic, payload, qos, retain)
        self._deferring_writer = True  # kick() writes, or registers the writer
        try:
            info = self.client.publish(topic, payload, qos=qos, retain=retain)
        finally:
            self._deferring_writer = False
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            self.kick()
            return None
        return int(info.mid)

    def _can_frame(self, qos: int) -> bool:
        """Whether a PUBLISH may skip paho: connected, paho has nothing queued to write
        nor waiting for its acknowledgement or a place in flight (so order is kept) and,
        for QoS 1, ours in flight stay within ``max_inflight``."""
        client = self.client
        return (self._handed_over and not self.closed and client.is_connected()
                and not client.want_write() and not client._out_messages
                and (qos == 0 or len(self._own) < self._settings.max_inflight))

    def _publish_framed(self, topic: str, payload: bytes, qos: int, retain: bool) -> int:
        """A PUBLISH framed by us (kick() writes it); a QoS 1 one's PUBACK taken by us,
        a QoS 0 one done once written.

        paho's publish, write and PUBACK (an MQTTMessage, its locks, a Properties and a
        ReasonCode per acknowledgement) were half of a reaction's CPU:
        ``benchmarks/zigbee_path.py`` reaction, least CPU per reaction, 3 runs taking
        turns: 102-111 us against 212-235 us through paho (docs/mqtt.md, "Measured").
        QoS 0 likewise: ``benchmarks/nodes_vs_nodered.py``, MQTT in -> two nodes -> MQTT
        out, the daemon's publish took ~88 us of its ~213 us per round trip through paho
        (a py-spy profile), ~35 us of it the socket's send.
        """
        mid = self.client._mid_generate()  # one id space with paho's own
        while mid in self._own:
            mid = self.client._mid_generate()
        name = topic.encode()
        props = b"\x00" if self._mqtt5 else b""
        length = 2 + len(name) + len(props) + len(payload) + (2 if qos else 0)
        out = self._out
        out.append((0x32 if qos else 0x30) | (1 if retain else 0))
        while length > 0x7F:
            out.append((length & 0x7F) | 0x80)
            length >>= 7
        out.append(length)
        out += len(name).to_bytes(2, "big")
        out += name
        if qos:
            out += mid.to_bytes(2, "big")
            self._own[mid] = None
        else:
            self._own0.append(mid)
        out += props
        out += payload
        self._wants_write = True
        return mid

    def _own_puback(self, mid: int) -> bool:
        """The PUBACK of ``mid``: True (and the publish is done) if we framed it."""
        if mid not in self._own:
            return False
        del self._own[mid]
        self._on_publish_cb(mid)
        return True

    def _write_own(self) -> bool:
        """Write our framed bytes; False if some are left (the writer is registered)."""
        try:
            sent = self._sock.send(self._out)
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            sent = 0
        except OSError as exc:
            self.abort(describe_error(exc))
            return False
        del self._out[:sent]
        if self._out:
            self._add_writer()
            return False
        if self._own0:  # our QoS 0 PUBLISHes are written: done, as paho's would be
            done, self._own0 = self._own0, []
            for mid in done:
                self._on_publish_cb(mid)
        return True

    def kick(self) -> None:
        """Write what publish() queued: at once when we are not inside paho's read (paho
        itself writes at once outside its callbacks), else on the next writable turn."""
        if not self._wants_write or self.closed:
            return
        if not self._in_read and self._handed_over and not self._writing:
            self.doWrite()
        else:
            self._wants_write = False
            self._add_writer()

    def subscribe(self, filters: list[tuple[str, int]]) -> None:
        if filters:
            self.client.subscribe(filters)

    def unsubscribe(self, filters: list[str]) -> None:
        if filters:
            self.client.unsubscribe(filters)

    def disconnect(self) -> None:
        """A clean DISCONNECT (the broker then drops the last will); closes after writing."""
        self._close_reason = "disconnected by us"
        if self.client.disconnect() != mqtt.MQTT_ERR_SUCCESS:
            self.abort("disconnected by us")

    def abort(self, reason: str) -> None:
        """Close the socket now, without DISCONNECT (the broker publishes the last will)."""
        if self.closed:
            return
        self._close_reason = reason
        self._detach()
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()
        self._finish(reason)
