"""The connection state machine, backoff and outbox: plain data, no I/O.

The topic rules are tested in ``tests/core/test_topics.py``."""

from __future__ import annotations

import pytest

from hadaemon.backoff import Backoff
from hadaemon.mqtt.machine import (
    Abort,
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
from hadaemon.mqtt.outbox import Outbox, OutboxFull


def machine(rand: float = 0.0) -> ConnectionMachine:
    return ConnectionMachine(Backoff(1.0, 8.0, jitter=0.5, rand=lambda: rand),
                             handshake_timeout=5.0)


def test_first_connect_then_loss_then_reconnect() -> None:
    m = machine()
    assert m.start() == [OpenSocket(1), ArmTimeout(5.0)]
    assert m.state is State.CONNECTING
    assert m.socket_opened(1) == []
    assert m.state is State.HANDSHAKE
    assert m.connack(True) == [DisarmTimeout(), SessionUp(), Announce("connected")]
    assert m.connected
    actions = m.lost("broker went away")
    assert actions == [SessionDown(), Announce("disconnected", "broker went away"),
                       ScheduleRetry(1.0)]
    assert m.retry_due() == [OpenSocket(2), ArmTimeout(5.0)]
    m.socket_opened(2)
    # a later connect is a reconnect, told apart from the first
    assert m.connack(True)[-1] == Announce("reconnected")
    # counted for metrics: sessions accepted, and lost while up (not a clean stop)
    assert (m.connections, m.disconnects, m.attempt) == (2, 1, 2)
    m.stop()
    m.lost("goodbye")
    assert (m.connections, m.disconnects) == (2, 1)


def test_backoff_grows_caps_and_resets_on_success() -> None:
    m = machine()
    m.start()
    delays = []
    for attempt in range(1, 7):
        (_, retry) = m.connect_failed(attempt, "connection refused")
        assert isinstance(retry, ScheduleRetry)
        delays.append(retry.delay)
        m.retry_due()
    assert delays == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    m.socket_opened(7)
    m.connack(True)
    assert m.lost("again")[-1] == ScheduleRetry(1.0)


def test_refused_connack_aborts_and_waits() -> None:
    m = machine()
    m.start()
    m.socket_opened(1)
    actions = m.connack(False, "refused: Not authorized")
    assert actions == [DisarmTimeout(), Abort(), ScheduleRetry(1.0)]
    assert m.last_error == "refused: Not authorized"
    assert not m.ever_connected


def test_stale_attempts_and_late_events_are_ignored() -> None:
    m = machine()
    m.start()
    assert m.timed_out() == [Abort(), ScheduleRetry(1.0)]
    # the thread of attempt 1 finally finishes: its socket is closed, nothing else
    assert m.socket_opened(1) == [Abort()]
    assert m.connect_failed(1, "late") == []
    assert m.connack(True) == []
    assert m.lost("late") == []
    assert m.state is State.WAITING


def test_stop_in_every_state() -> None:
    m = machine()
    assert m.stop() == [Finished()]
    assert m.state is State.STOPPED
    assert m.start() == []

    m = machine()
    m.start()
    assert m.stop() == [DisarmTimeout(), Abort(), Finished()]

    m = machine()
    m.start()
    m.connect_failed(1, "refused")
    assert m.stop() == [CancelRetry(), Finished()]

    m = machine()
    m.start()
    m.socket_opened(1)
    m.connack(True)
    assert m.stop() == [Disconnect()]
    assert m.state is State.STOPPING
    assert m.stop() == []
    assert m.lost("disconnected by us") == [SessionDown(), Finished()]
    assert m.state is State.STOPPED


def test_outbox_requeues_unacknowledged_in_order_and_is_bounded() -> None:
    box = Outbox(limit=2)
    a, b, c = (box.make(t, b"", 1, False) for t in "abc")
    box.enqueue(a)
    box.enqueue(b)
    with pytest.raises(OutboxFull, match="queue_limit 2"):
        box.enqueue(c)
    taken = list(box.take_queued())
    assert taken == [a, b]
    box.sent(7, a)
    box.sent(8, b)
    zero = box.make("z", b"", 0, False)
    box.sent(9, zero)
    assert box.acknowledged(7) is a
    lost = box.connection_down()
    assert lost == [zero]  # QoS 0 is not resent: it would arrive stale
    assert list(box.queued) == [b]
    assert len(box) == 1
