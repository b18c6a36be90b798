"""MQTT clients for test code: paho clients set up for a test broker, and a blocking
client driven by paho's own thread (for tests only, never for the daemon)."""

from __future__ import annotations

import enum
import socket
import ssl
import threading
import time
import uuid
import weakref
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Literal

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from hadaemon.testing.broker_errors import BrokerError, ConnectRefused

if TYPE_CHECKING:
    from hadaemon.testing.broker import Broker

__all__ = ["USE_BROKER", "BlockingClient", "connect_manually", "make_client"]


class _UseBroker(enum.Enum):
    TOKEN = "use the broker's setting"


USE_BROKER: Final = _UseBroker.TOKEN
"""Default for ``make_client``'s credentials: take them from the broker."""


class _TrackingContext(ssl.SSLContext):
    """Remembers the last socket it wrapped, so a failed connect can close it.

    paho drops (and leaks) the TLS socket when the handshake fails, e.g. on an untrusted
    certificate, which later surfaces as a ResourceWarning in an unrelated test.
    """

    last_socket: ssl.SSLSocket | None = None

    def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        self.last_socket = super().wrap_socket(*args, **kwargs)
        return self.last_socket


_CONTEXTS: weakref.WeakKeyDictionary[mqtt.Client, _TrackingContext] = weakref.WeakKeyDictionary()


def _connect_socket(client: mqtt.Client, host: str, port: int) -> None:
    """``client.connect()``, closing the half-made TLS socket if it raises."""
    try:
        client.connect(host, port)
    except BaseException:
        context = _CONTEXTS.get(client)
        if context is not None and context.last_socket is not None:
            context.last_socket.close()
        raise


def _set_nodelay(client: mqtt.Client, userdata: Any, sock: Any) -> None:
    # The broker has TCP_NODELAY; without it here too our replies would sit in Nagle.
    if isinstance(sock, socket.socket):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def make_client(
    broker: Broker,
    client_id: str | None = None,
    *,
    username: str | Literal[_UseBroker.TOKEN] | None = USE_BROKER,
    password: str | Literal[_UseBroker.TOKEN] | None = USE_BROKER,
    trust_ca: bool = True,
    client_cert: bool | None = None,
    nodelay: bool = True,
    **client_kwargs: Any,
) -> mqtt.Client:
    """A paho (callback API v2) client set up for ``broker``; not connected yet.

    Credentials default to the broker's; pass ``username=None`` for an anonymous client.
    ``trust_ca=False`` leaves only the system CAs, so the test CA is not trusted.
    ``client_cert`` defaults to sending one exactly when the broker requires it.
    The protocol defaults to MQTT 3.1.1, which both implementations speak.
    """
    if client_id is None:
        client_id = f"hadaemon-test-{uuid.uuid4().hex[:12]}"
    client_kwargs.setdefault("protocol", mqtt.MQTTv311)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, **client_kwargs)
    user = broker.username if isinstance(username, _UseBroker) else username
    secret = broker.password if isinstance(password, _UseBroker) else password
    if user is not None:
        client.username_pw_set(user, secret)
    if broker.tls:
        send_cert = broker.require_client_cert if client_cert is None else client_cert
        context = _TrackingContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies cert and hostname
        if trust_ca:
            context.load_verify_locations(cafile=str(broker.ca_path))
        else:
            context.load_default_certs()
        if send_cert:
            context.load_cert_chain(str(broker.client_cert_path), str(broker.client_key_path))
        client.tls_set_context(context)
        _CONTEXTS[client] = context
    if nodelay:
        client.on_socket_open = _set_nodelay
    return client


def connect_manually(client: mqtt.Client, host: str, port: int, timeout: float) -> None:
    """CONNECT and wait for CONNACK by driving ``client.loop()`` in this thread."""
    acks: list[ReasonCode] = []

    def on_connect(c: mqtt.Client, u: Any, flags: Any, rc: ReasonCode, props: Any) -> None:
        acks.append(rc)

    client.on_connect = on_connect
    _connect_socket(client, host, port)
    deadline = time.monotonic() + timeout
    while not acks:
        rc = client.loop(timeout=0.05)
        if acks:
            break
        if rc != mqtt.MQTT_ERR_SUCCESS:
            raise ConnectionError(f"connection to {host}:{port} lost before CONNACK ({rc})")
        if time.monotonic() >= deadline:
            raise TimeoutError(f"no CONNACK from {host}:{port} within {timeout:g} s")
    if acks[0].is_failure:
        raise ConnectRefused(acks[0])


class BlockingClient:
    """A synchronous MQTT client for test code, driven by paho's own network thread.

    Received messages queue up until ``expect()`` takes them, so a test can publish,
    then wait, without racing the callback thread. Not for the daemon itself.
    """

    def __init__(self, broker: Broker, client_id: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("reconnect_on_failure", False)
        self.broker = broker
        self.client_id: str = client_id or f"hadaemon-test-{uuid.uuid4().hex[:12]}"
        self._kwargs = kwargs
        self._cond = threading.Condition()
        self._messages: list[mqtt.MQTTMessage] = []
        self._acks: dict[int, list[ReasonCode]] = {}
        self._connack: ReasonCode | None = None
        self._disconnected = False
        self._errors: list[str] = []
        self._used = False
        self.client: mqtt.Client = self._new_client()

    def _new_client(self) -> mqtt.Client:
        client = make_client(self.broker, self.client_id, **self._kwargs)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        client.on_log = self._on_log
        return client

    # callbacks run on paho's thread

    def _on_connect(self, c: mqtt.Client, u: Any, flags: Any, rc: ReasonCode, p: Any) -> None:
        with self._cond:
            self._connack = rc
            self._cond.notify_all()

    def _on_disconnect(self, c: mqtt.Client, u: Any, flags: Any, rc: ReasonCode, p: Any) -> None:
        with self._cond:
            self._disconnected = True
            self._cond.notify_all()

    def _on_message(self, c: mqtt.Client, u: Any, message: mqtt.MQTTMessage) -> None:
        with self._cond:
            self._messages.append(message)
            self._cond.notify_all()

    def _on_subscribe(
        self, c: mqtt.Client, u: Any, mid: int, codes: list[ReasonCode], p: Any
    ) -> None:
        with self._cond:
            self._acks[mid] = codes
            self._cond.notify_all()

    def _on_log(self, c: mqtt.Client, u: Any, level: int, text: str) -> None:
        if level in (mqtt.MQTT_LOG_ERR, mqtt.MQTT_LOG_WARNING):
            with self._cond:
                self._errors.append(text)

    # blocking API

    @property
    def connected(self) -> bool:
        """Whether the client currently has a live MQTT session."""
        return self.client.is_connected()

    def connect(self, timeout: float = 5.0) -> BlockingClient:
        """Connect (again) and wait for CONNACK; raises ConnectRefused, ssl.SSLError, OSError.

        Each connection gets a fresh paho client with the same client id: paho cannot
        restart its network thread cleanly once it has ended.
        """
        if self._used:
            self.close()
            self.client = self._new_client()
        self._used = True
        with self._cond:
            self._connack, self._disconnected = None, False
            self._errors.clear()
        _connect_socket(self.client, self.broker.host, self.broker.port)
        self.client.loop_start()
        with self._cond:
            done = self._cond.wait_for(
                lambda: self._connack is not None or self._disconnected, timeout
            )
        connack = self._current_connack()
        if connack is not None and not connack.is_failure:
            return self
        self.close()
        if connack is not None:
            raise ConnectRefused(connack)
        if done:
            with self._cond:
                errors = "; ".join(self._errors)
            raise ConnectionError(
                f"{self.broker.url} closed the connection before CONNACK ({errors});"
                f" broker log:\n{self.broker.log_tail(5)}"
            )
        raise TimeoutError(f"no CONNACK from {self.broker.url} within {timeout:g} s")

    def _current_connack(self) -> ReasonCode | None:
        # A method, not an attribute read: the paho thread sets it behind mypy's back.
        with self._cond:
            return self._connack

    def subscribe(self, topic: str, qos: int = 1, timeout: float = 5.0) -> None:
        """Subscribe and wait for SUBACK; raises BrokerError if the broker refused."""
        rc, mid = self.client.subscribe(topic, qos)
        if rc != mqtt.MQTT_ERR_SUCCESS or mid is None:
            raise ConnectionError(f"cannot subscribe to {topic!r}: {rc}")
        with self._cond:
            if not self._cond.wait_for(lambda: mid in self._acks, timeout):
                raise TimeoutError(f"no SUBACK for {topic!r} within {timeout:g} s")
            codes = self._acks.pop(mid)
        if any(code.is_failure for code in codes):
            raise BrokerError(f"subscription to {topic!r} refused: {codes}")

    def publish(
        self,
        topic: str,
        payload: bytes | str = b"",
        qos: int = 1,
        retain: bool = False,
        timeout: float = 5.0,
    ) -> None:
        """Publish and wait until it is sent (QoS 0) or acknowledged (QoS 1 and 2)."""
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(timeout)
        if not info.is_published():
            raise TimeoutError(f"publish to {topic!r} not acknowledged within {timeout:g} s")

    def expect(self, topic_pattern: str = "#", timeout: float = 5.0) -> mqtt.MQTTMessage:
        """Take the oldest received message whose topic matches the MQTT filter."""

        def take() -> mqtt.MQTTMessage | None:
            for i, message in enumerate(self._messages):
                if mqtt.topic_matches_sub(topic_pattern, message.topic):
                    return self._messages.pop(i)
            return None

        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = take()
                if found is not None:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [m.topic for m in self._messages]
                    raise TimeoutError(
                        f"no message on {topic_pattern!r} within {timeout:g} s (unclaimed: {seen})"
                    )
                self._cond.wait(remaining)

    def pending(self) -> list[mqtt.MQTTMessage]:
        """Received messages no ``expect()`` has taken yet (a copy)."""
        with self._cond:
            return list(self._messages)

    def close(self) -> None:
        """Disconnect and stop paho's thread; idempotent."""
        self.client.disconnect()
        self.client.loop_stop()

    def __enter__(self) -> BlockingClient:
        if not self.connected:
            self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
