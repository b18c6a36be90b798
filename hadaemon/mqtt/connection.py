"""One broker connection, kept up for as long as it runs: the shared core service.

Reactor thread only. Built from a :class:`~hadaemon.mqtt.machine.ConnectionMachine` (when
to connect, back off, announce) and :class:`~hadaemon.mqtt.transport.PahoSession`
(one socket's I/O). It offers what every MQTT user in the daemon needs:

- ``publish(topic, payload, qos=1, retain=False)``: a Deferred that fires once written
  (QoS 0) or acknowledged (QoS 1). QoS 1 publishes made while disconnected are queued
  (``queue_limit``) and sent after the reconnect; unacknowledged ones are resent.
- ``subscribe(filter, callback, qos=1)``: subscriptions survive reconnects; a callback
  gets :class:`Message` objects for the topics its filter matches. A retained message is
  given once to each subscription (not again when someone else subscribes to an
  overlapping filter), and again after a reconnect.
- ``Lifecycle(<component>, "connected" | "reconnected" | "disconnected")`` on the bus,
  and a retained ``{"state": "online"}`` on the status topic whose last will says
  ``offline``.
"""

from __future__ import annotations

import random
import ssl
import threading
from collections.abc import Callable, Mapping
from typing import Any

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from hadaemon.bus import Bus, Lifecycle
from hadaemon.bus.topics import validate_topic
from hadaemon.logs import get_logger
from hadaemon.mqtt.machine import (
    Abort,
    Action,
    Announce,
    ArmTimeout,
    CancelRetry,
    ConnectionMachine,
    DisarmTimeout,
    Disconnect,
    Finished,
    OpenSocket,
    ScheduleRetry,
    SessionDown,
    SessionUp,
    State,
)
from hadaemon.mqtt.outbox import (
    ConnectionLost,
    ConnectionStopped,
    NotConnected,
    Outbox,
    Outgoing,
    PublishError,
)
from hadaemon.mqtt.reasons import describe_error
from hadaemon.mqtt.settings import MqttSettings
from hadaemon.mqtt.subscriptions import (
    Message,
    MessageCallback,
    MessageDispatch,
    MqttSubscription,
)
from hadaemon.watchdog import Watchdog

ONLINE = b'{"state": "online"}'
OFFLINE = b'{"state": "offline"}'

class MqttConnection(MessageDispatch):
    """One broker connection with reconnects, a publish queue and lasting subscriptions.

    ``component`` names it in ``Lifecycle`` events and logs (the plugin's name).
    Everything here is for the reactor thread only.
    """

    def __init__(
        self,
        reactor: Any,
        settings: MqttSettings,
        *,
        bus: Bus | None = None,
        component: str = "mqtt",
        log: Logger | None = None,
        watchdog: Watchdog | None = None,
        rand: Callable[[], float] = random.random,
        status: bool = True,
        will: tuple[str, bytes] | None = None,
    ) -> None:
        self.reactor = reactor
        self.settings = settings
        self.bus = bus
        self.component = component
        self.log = log or get_logger(f"hadaemon.mqtt.{component}")
        self.watchdog = watchdog
        self.machine = ConnectionMachine(
            settings.backoff(rand),
            settings.connect_timeout,
        )
        # The daemon's own status topic, or a custom last will (the simulator's bridge).
        self._status = status
        if will is None and status:
            will = (settings.status_topic, OFFLINE)
        self._will = will
        self._session: Any = None
        self._outbox = Outbox(settings.queue_limit)
        self._subs: list[MqttSubscription] = []
        self._broker_filters: dict[str, int] = {}
        self._topic_cache: dict[str, list[MqttSubscription]] = {}
        self._timeout_call: IDelayedCall | None = None
        self._retry_call: IDelayedCall | None = None
        self._force_call: IDelayedCall | None = None
        self._stopped: Deferred[None] | None = None
        self._drained: list[Deferred[None]] = []
        self._listeners: list[Callable[[str], object]] = []
        self._read_hooks: list[Callable[[], object]] = []
        self._ssl_context: ssl.SSLContext | None = None
        self.messages_received = 0
        self.messages_sent = 0

    # -- public API --------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether the broker accepted us and the connection is up right now."""
        return self.machine.state is State.CONNECTED

    @property
    def state(self) -> State:
        return self.machine.state

    @property
    def queued(self) -> int:
        """Publishes not yet acknowledged (queued or in flight)."""
        return len(self._outbox)

    def start(self) -> None:
        """Begin connecting (returns at once; reconnects on its own from then on)."""
        self._run(self.machine.start())

    def add_listener(self, callback: Callable[[str], object]) -> Callable[[], None]:
        """Call ``callback(event)`` on connected/reconnected/disconnected; returns a remover.

        For users without a bus (the simulator, command-line tools); plugins should
        watch ``lifecycle/<component>/+`` on the bus instead.
        """
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback) if callback in self._listeners else None

    def when_connected(self, timeout: float | None = None) -> Deferred[None]:
        """Fires once connected (now if already); with ``timeout``, fails with TimeoutError."""
        if self.connected:
            return succeed(None)
        d: Deferred[None] = Deferred()

        def on_event(event: str) -> None:
            if event in ("connected", "reconnected") and not d.called:
                remove()
                d.callback(None)

        remove = self.add_listener(on_event)
        if timeout is not None:
            d.addTimeout(timeout, self.reactor, onTimeoutCancel=lambda r, t: _timeout(
                f"not connected to {self.settings.url} within {t:g} s"
                + (f" ({self.machine.last_error})" if self.machine.last_error else "")
            ))
            d.addErrback(lambda f: (remove(), f)[1])
        return d

    def publish(
        self, topic: str, payload: bytes | str, *, qos: int = 1, retain: bool = False
    ) -> Deferred[None]:
        """Publish; fires when written (QoS 0) or acknowledged (QoS 1).

        Fails at once with ValueError (bad topic or QoS), :class:`NotConnected` (QoS 0
        while disconnected), :class:`OutboxFull` (queue full) or
        :class:`ConnectionStopped` (after ``stop``).
        """
        try:
            validate_topic(topic)
            if qos not in (0, 1):
                raise ValueError(f"qos must be 0 or 1, got {qos!r}")
            data = payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)
            if self.machine.state in (State.STOPPING, State.STOPPED):
                raise ConnectionStopped(f"{self.component}: the connection is stopped")
            item = self._outbox.make(topic, data, qos, retain)
            if self.connected:
                self._send(item)
                self._session.kick()
            elif qos == 0:
                raise NotConnected(
                    f"{self.component}: not connected to {self.settings.url}; QoS 0 "
                    f"publish to {topic!r} dropped"
                )
            else:
                self._outbox.enqueue(item)
        except (ValueError, PublishError):
            return fail(Failure())
        return item.done

    def stop(self, timeout: float = 5.0) -> Deferred[None]:
        """Deliver what is queued (within ``timeout``), say offline, disconnect cleanly.

        Publishes still unacknowledged at the end fail with ConnectionStopped.
        """
        if self._stopped is not None:
            return self._stopped
        stopped: Deferred[None] = Deferred()
        self._stopped = stopped
        deadline = self.reactor.seconds() + timeout

        def goodbye(_: object = None) -> None:
            self._run(self.machine.stop())
            if not stopped.called:
                remaining = max(0.1, deadline - self.reactor.seconds())
                self._force_call = self.reactor.callLater(remaining, self._force_stop)

        if self.connected and len(self._outbox):
            drained: Deferred[None] = Deferred()
            self._drained.append(drained)
            drained.addTimeout(max(0.1, timeout * 0.8), self.reactor)
            drained.addBoth(goodbye)
        else:
            goodbye()
        return stopped

    # -- state machine actions ------------------------------------------------------------

    def _run(self, actions: list[Action]) -> None:
        for action in actions:
            self._do(action)

    def _do(self, action: Action) -> None:
        if isinstance(action, OpenSocket):
            self._open(action.attempt)
        elif isinstance(action, ArmTimeout):
            self._cancel_timeout()
            self._timeout_call = self.reactor.callLater(action.seconds, self._timed_out)
        elif isinstance(action, DisarmTimeout):
            self._cancel_timeout()
        elif isinstance(action, ScheduleRetry):
            self.log.info(
                "{component}: cannot connect to {url} ({reason}); retrying in {delay:.1f} s",
                component=self.component, url=self.settings.url,
                reason=self.machine.last_error or "?", delay=action.delay,
            )
            self._retry_call = self.reactor.callLater(action.delay, self._retry)
        elif isinstance(action, CancelRetry):
            if self._retry_call is not None and self._retry_call.active():
                self._retry_call.cancel()
            self._retry_call = None
        elif isinstance(action, Abort):
            session, self._session = self._session, None
            if session is not None:
                session.abort("aborted")
        elif isinstance(action, SessionUp):
            self._session_up()
        elif isinstance(action, SessionDown):
            for item in self._outbox.connection_down():
                if not item.done.called:
                    item.done.errback(ConnectionLost(
                        f"connection lost before the QoS 0 publish to {item.topic!r} was written"
                    ))
        elif isinstance(action, Announce):
            self._announce(action.event, action.reason)
        elif isinstance(action, Disconnect):
            session = self._session
            if session is not None:
                if self._status:
                    session.publish(self.settings.status_topic, OFFLINE, 1, True)
                    session.kick()
                session.disconnect()
        elif isinstance(action, Finished):
            self._finished()

    def _open(self, attempt: int) -> None:
        from hadaemon.mqtt.transport import PahoSession

        try:
            if self._ssl_context is None and self.settings.tls:
                self._ssl_context = self.settings.ssl_context()
            session = PahoSession(
                self.reactor, self.settings, self._ssl_context,
                on_connack=lambda ok, reason: self._on_connack(session, ok, reason),
                on_message=self._on_message,
                on_publish=self._on_publish,
                on_closed=lambda reason: self._on_closed(session, reason),
                log=self.log,
                will=self._will,
                on_read_done=self._read_done,
            )
        except Exception as exc:
            self.reactor.callLater(0, self._connect_failed, None, attempt, describe_error(exc))
            return
        self._session = session
        thread = threading.Thread(
            target=self._connect_in_thread, args=(session, attempt),
            name=f"hadaemon-{self.component}-connect", daemon=True,
        )
        thread.start()

    def _connect_in_thread(self, session: Any, attempt: int) -> None:
        # Worker thread: only the blocking connect, then hand the result to the reactor.
        try:
            session.open_in_thread()
        except BaseException as exc:
            result: tuple[Any, ...] = (self._connect_failed, session, attempt, describe_error(exc))
        else:
            result = (self._socket_opened, session, attempt)
        try:
            self.reactor.callFromThread(*result)
        except Exception:
            # The reactor is gone (the daemon stopped while we were connecting).
            session.abort("reactor stopped")

    def _socket_opened(self, session: Any, attempt: int) -> None:
        if session is not self._session:
            session.abort("stale connection attempt")
            return
        self._run(self.machine.socket_opened(attempt))
        if self.machine.state is State.HANDSHAKE:
            session.hand_over()

    def _connect_failed(self, session: Any, attempt: int, reason: str) -> None:
        if session is not None and session is not self._session:
            return
        self._session = None
        self._run(self.machine.connect_failed(attempt, reason))

    def _timed_out(self) -> None:
        self._timeout_call = None
        self._run(self.machine.timed_out())

    def _retry(self) -> None:
        self._retry_call = None
        self._run(self.machine.retry_due())

    def _cancel_timeout(self) -> None:
        if self._timeout_call is not None and self._timeout_call.active():
            self._timeout_call.cancel()
        self._timeout_call = None

    def _on_connack(self, session: Any, accepted: bool, reason: str) -> None:
        if session is not self._session:
            return
        if not accepted:
            self.log.error(
                "{component}: {url} refused the connection: {reason}",
                component=self.component, url=self.settings.url, reason=reason,
            )
        self._run(self.machine.connack(accepted, f"refused: {reason}"))

    def _on_closed(self, session: Any, reason: str) -> None:
        if session is not self._session:
            return
        self._session = None
        self._run(self.machine.lost(reason))

    def _session_up(self) -> None:
        session = self._session
        for sub in self._subs:
            sub.seen_retained.clear()
        session.subscribe(sorted(self._broker_filters.items()))
        if self._status:
            session.publish(self.settings.status_topic, ONLINE, 1, True)
        for item in self._outbox.take_queued():
            if not self._send(item):
                break
        session.kick()

    def _send(self, item: Outgoing) -> bool:
        mid = self._session.publish(item.topic, item.payload, item.qos, item.retain)
        if mid is None:
            if item.qos > 0:
                self._outbox.push_front(item)
            else:
                item.done.errback(NotConnected(f"not connected; publish to {item.topic!r} dropped"))
            return False
        self.messages_sent += 1
        self._outbox.sent(mid, item)
        return True

    def _on_publish(self, mid: int) -> None:
        item = self._outbox.acknowledged(mid)
        if item is not None and not item.done.called:
            item.done.callback(None)
        if self._drained and not len(self._outbox):
            waiting, self._drained = self._drained, []
            for d in waiting:
                if not d.called:
                    d.callback(None)

    def _announce(self, event: str, reason: str) -> None:
        if event == "disconnected":
            self.log.warn(
                "{component}: disconnected from {url}: {reason}",
                component=self.component, url=self.settings.url, reason=reason,
            )
        else:
            self.log.info(
                "{component}: {event} to {url} as {client_id}",
                component=self.component, event=event, url=self.settings.url,
                client_id=self.settings.client_id,
            )
        details: Mapping[str, Any] = {"broker": self.settings.url, "reason": reason}
        if self.bus is not None:
            self.bus.publish(Lifecycle(self.component, event, details))
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                self.log.failure("{component}: connection listener failed", failure=Failure(),
                                 component=self.component)

    def _finished(self) -> None:
        self._cancel_timeout()
        if self._force_call is not None and self._force_call.active():
            self._force_call.cancel()
        for item in self._outbox.drain_all():
            if not item.done.called:
                item.done.errback(ConnectionStopped(
                    f"{self.component} stopped before the publish to {item.topic!r} was "
                    "acknowledged"
                ))
        for d in self._drained:
            if not d.called:
                d.callback(None)
        self._drained = []
        if self._stopped is not None and not self._stopped.called:
            self._stopped.callback(None)

    def _force_stop(self) -> None:
        if self._stopped is not None and not self._stopped.called:
            session, self._session = self._session, None
            if session is not None:
                session.abort("stop timed out")
            self.machine.state = State.STOPPED
            self._finished()


def _timeout(message: str) -> Failure:
    return Failure(TimeoutError(message))


__all__ = ["Message", "MessageCallback", "MqttConnection", "MqttSubscription"]
