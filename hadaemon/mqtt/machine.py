"""The connection's state machine: pure logic, no sockets, no reactor.

The I/O side (:mod:`hadaemon.mqtt.connection`) feeds it what happened (a socket opened,
a CONNACK arrived, the connection dropped, a timer fired) and carries out the actions it
returns, in order. Keeping the two apart makes every transition testable on plain data
and keeps the reconnect policy in one place.

::

    IDLE --start--> CONNECTING --socket_opened--> HANDSHAKE --connack ok--> CONNECTED
                       |  ^                          |                        |
             connect_failed |                 refused/timeout/lost          lost
                       v  | retry_due                v                        v
                      WAITING <-----------------------------------------------+
    any --stop--> STOPPING --closed--> STOPPED
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from hadaemon.backoff import Backoff


class State(StrEnum):
    IDLE = "idle"
    CONNECTING = "connecting"  # DNS, TCP and TLS in a thread
    HANDSHAKE = "handshake"  # socket on the reactor, CONNECT sent, waiting for CONNACK
    CONNECTED = "connected"
    WAITING = "waiting"  # backing off before the next attempt
    STOPPING = "stopping"
    STOPPED = "stopped"


# -- actions the I/O side carries out -------------------------------------------------


@dataclass(frozen=True)
class OpenSocket:
    """Start connection attempt number ``attempt`` (in a thread)."""

    attempt: int


@dataclass(frozen=True)
class ArmTimeout:
    """Fail the attempt if no CONNACK arrives within ``seconds``."""

    seconds: float


@dataclass(frozen=True)
class DisarmTimeout:
    pass


@dataclass(frozen=True)
class ScheduleRetry:
    delay: float


@dataclass(frozen=True)
class CancelRetry:
    pass


@dataclass(frozen=True)
class Abort:
    """Close the socket now (no DISCONNECT: the last will fires)."""


@dataclass(frozen=True)
class SessionUp:
    """Restore subscriptions and send what was queued."""


@dataclass(frozen=True)
class SessionDown:
    """Put unacknowledged QoS 1 publishes back in the queue."""


@dataclass(frozen=True)
class Announce:
    """Tell the world: ``connected`` (first time), ``reconnected`` or ``disconnected``."""

    event: str
    reason: str = ""


@dataclass(frozen=True)
class Disconnect:
    """Say goodbye cleanly (offline status, DISCONNECT) and close."""


@dataclass(frozen=True)
class Finished:
    """Nothing left to do: the connection is stopped."""


Action = (
    OpenSocket | ArmTimeout | DisarmTimeout | ScheduleRetry | CancelRetry | Abort | SessionUp
    | SessionDown | Announce | Disconnect | Finished
)


class ConnectionMachine:
    """The states of one broker connection over its whole life (many sockets)."""

    def __init__(self, backoff: Backoff, handshake_timeout: float) -> None:
        self.state = State.IDLE
        self.backoff = backoff
        self.handshake_timeout = handshake_timeout
        self.attempt = 0
        self.ever_connected = False
        self.last_error = ""
        self.connections = 0  # sessions the broker accepted (the first, then reconnects)
        self.disconnects = 0  # sessions lost while up (not counting a clean stop)

    @property
    def connected(self) -> bool:
        return self.state is State.CONNECTED

    def start(self) -> list[Action]:
        if self.state is not State.IDLE:
            return []
        return self._open()

    def _open(self) -> list[Action]:
        self.attempt += 1
        self.state = State.CONNECTING
        return [OpenSocket(self.attempt), ArmTimeout(self.handshake_timeout)]

    def socket_opened(self, attempt: int) -> list[Action]:
        """The thread made the socket (TCP and TLS done) for ``attempt``."""
        if self.state is not State.CONNECTING or attempt != self.attempt:
            return [Abort()]  # a stale attempt, or we were stopped meanwhile
        self.state = State.HANDSHAKE
        return []

    def connect_failed(self, attempt: int, reason: str) -> list[Action]:
        if self.state is not State.CONNECTING or attempt != self.attempt:
            return []
        self.last_error = reason
        return [DisarmTimeout(), *self._wait()]

    def connack(self, accepted: bool, reason: str = "") -> list[Action]:
        if self.state is not State.HANDSHAKE:
            return []
        if not accepted:
            self.last_error = reason
            return [DisarmTimeout(), Abort(), *self._wait()]
        self.state = State.CONNECTED
        self.connections += 1
        self.backoff.reset()
        event = "reconnected" if self.ever_connected else "connected"
        self.ever_connected = True
        self.last_error = ""
        return [DisarmTimeout(), SessionUp(), Announce(event)]

    def timed_out(self) -> list[Action]:
        if self.state not in (State.CONNECTING, State.HANDSHAKE):
            return []
        self.last_error = f"no CONNACK within {self.handshake_timeout:g} s"
        return [Abort(), *self._wait()]

    def lost(self, reason: str) -> list[Action]:
        """The socket closed (read error, keepalive expired, broker went away)."""
        if self.state is State.HANDSHAKE:
            self.last_error = reason
            return [DisarmTimeout(), *self._wait()]
        if self.state is State.CONNECTED:
            self.last_error = reason
            self.disconnects += 1
            return [SessionDown(), Announce("disconnected", reason), *self._wait()]
        if self.state is State.STOPPING:
            self.state = State.STOPPED
            return [SessionDown(), Finished()]
        return []

    def retry_due(self) -> list[Action]:
        if self.state is not State.WAITING:
            return []
        return self._open()

    def stop(self) -> list[Action]:
        """Stop for good: a clean goodbye when connected, else just give up."""
        previous = self.state
        if previous in (State.STOPPING, State.STOPPED):
            return []
        if previous is State.CONNECTED:
            self.state = State.STOPPING
            return [Disconnect()]
        self.state = State.STOPPED
        actions: list[Action] = []
        if previous is State.WAITING:
            actions.append(CancelRetry())
        if previous in (State.CONNECTING, State.HANDSHAKE):
            actions += [DisarmTimeout(), Abort()]
        return [*actions, Finished()]

    def _wait(self) -> list[Action]:
        self.state = State.WAITING
        return [ScheduleRetry(self.backoff.next_delay())]
