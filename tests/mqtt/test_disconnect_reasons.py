"""A lost broker is logged with its cause, not paho's "Unspecified error"."""

from __future__ import annotations

import os
import signal
import ssl
from typing import Any

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode
from twisted.logger import LogLevel

from hadaemon.bus import Bus, Event, Lifecycle
from hadaemon.mqtt.reasons import describe_loss
from hadaemon.testing import Broker, capture_logs, run_in_reactor, wait_until
from hadaemon.testing.fixtures import BrokerFactory

from .test_connection import reactor_thread
from .util import connection


def _disconnected(bus: Bus) -> list[str]:
    """The reasons of ``disconnected`` lifecycle events, as they come."""
    reasons: list[str] = []

    def on(event: Event) -> None:
        assert isinstance(event, Lifecycle)
        if event.state == "disconnected":
            reasons.append(event.details["reason"])

    bus.subscribe("lifecycle/mqtt/+", on)
    return reasons


def _lost(broker: Broker, how: Any, reason: str | set[str], timeout: float = 10.0,
          **settings: Any) -> str:
    """Connect, do ``how(broker)`` in a thread, check the reason (or one of them) the
    ``disconnected`` event gives, and return the warning logged."""

    async def scenario(reactor: Any) -> str:
        bus = Bus(reactor)
        reasons = _disconnected(bus)
        conn = connection(reactor, broker, bus, **settings)
        conn.start()
        await conn.when_connected(5)
        with capture_logs() as logs:
            if how is None:  # something only we can do: a packet over the broker's limit
                conn.publish("test/big", b"x" * 5000, qos=0).addErrback(lambda _: None)
            else:
                await reactor_thread(reactor, how, broker)
            await wait_until(reactor, lambda: reasons, timeout=timeout, what="the disconnect")
        await conn.stop(timeout=0.5)
        assert reasons[0] in ({reason} if isinstance(reason, str) else reason)
        return next(t for t in logs.texts(LogLevel.warn) if "disconnected from" in t)

    line: str = run_in_reactor(scenario, timeout=timeout + 20)
    return line


def test_a_killed_broker_closed_the_connection(broker: Broker) -> None:
    # the kernel closes a killed process's sockets: a FIN, or a reset if data was unread
    # (or, were we writing a ping just then, a broken pipe)
    ends = {"connection closed by the broker", "connection reset by the broker",
            "connection closed by the broker (broken pipe)"}
    line = _lost(broker, Broker.kill, ends)
    assert line in {f"mqtt: disconnected from {broker.url}: {end}" for end in ends}


def test_a_frozen_broker_is_a_keepalive_timeout(broker: Broker) -> None:
    def freeze(b: Broker) -> None:
        assert b.pid is not None
        os.kill(b.pid, signal.SIGSTOP)

    try:
        line = _lost(broker, freeze, "keepalive timeout: no answer from the broker within 1 s",
                     keepalive=1)
    finally:
        if broker.pid is not None:
            os.kill(broker.pid, signal.SIGCONT)
    assert line.endswith(": keepalive timeout: no answer from the broker within 1 s")


def test_a_disconnect_from_the_broker_gives_its_reason(broker_factory: BrokerFactory) -> None:
    broker = broker_factory(extra_config=["max_packet_size 2000"])
    if not broker.mqtt5:
        pytest.skip("a DISCONNECT with a reason needs MQTT 5")
    reason = "the broker disconnected us: we sent a packet larger than the broker accepts"
    line = _lost(broker, None, reason, protocol="5")
    assert line == f"mqtt: disconnected from {broker.url}: {reason}"


def test_paho_codes_and_socket_errors_in_words() -> None:
    def loss(code: str, **kw: Any) -> str:
        options: dict[str, Any] = {"from_broker": False, "error": None, "eof": False,
                                   "keepalive": 60, **kw}
        return describe_loss(ReasonCode(PacketTypes.DISCONNECT, code), **options)

    assert loss("Unspecified error", eof=True) == "connection closed by the broker"
    assert loss("Unspecified error", error=ConnectionResetError(104, "reset")) == \
        "connection reset by the broker"
    assert loss("Unspecified error", error=BrokenPipeError(32, "pipe")) == \
        "connection closed by the broker (broken pipe)"
    assert loss("Unspecified error", error=ssl.SSLError(1, "bad record mac")).startswith(
        "TLS error")
    assert loss("Keep alive timeout") == \
        "keepalive timeout: no answer from the broker within 60 s"
    assert loss("Server shutting down", from_broker=True) == \
        "the broker disconnected us: the broker is shutting down"
    assert loss("Unspecified error") == "connection lost (Unspecified error)"
