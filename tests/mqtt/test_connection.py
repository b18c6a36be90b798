"""The shared connection against a real mosquitto: publish, subscribe, queue, lifecycle."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest
from twisted.internet.defer import Deferred

from hadaemon.bus import Bus
from hadaemon.mqtt import Message, NotConnected, OutboxFull
from hadaemon.testing import (
    BlockingClient,
    Broker,
    capture_logs,
    find_mosquitto,
    run_in_reactor,
    wait_until,
)

from .util import Lifecycles, connection


def test_publish_subscribe_and_status(broker: Broker) -> None:
    watcher = BlockingClient(broker).connect()
    watcher.subscribe("test/#")

    async def scenario(reactor: Any) -> None:
        bus = Bus(reactor)
        events = Lifecycles(bus)
        conn = connection(reactor, broker, bus)
        got: list[Message] = []
        conn.subscribe("test/in/+", got.append)
        conn.start()
        await conn.when_connected(5)
        assert events.events == ["connected"]
        watcher.publish("test/in/x", b'{"n": 1}')
        await wait_until(reactor, lambda: got, what="a message")
        assert got[0].topic == "test/in/x" and got[0].json() == {"n": 1}
        assert got[0].qos == 1 and not got[0].retain
        # QoS 1 fires on PUBACK, QoS 0 once written
        await conn.publish("test/out/a", "text", qos=1)
        await conn.publish("test/out/b", b"\x00bin", qos=0)
        await conn.stop()

    run_in_reactor(scenario, timeout=15)
    # the retained status says online first, then offline after the clean stop
    status = [watcher.expect("test/hadaemon-test/status") for _ in range(2)]
    assert [json.loads(m.payload)["state"] for m in status] == ["online", "offline"]
    assert watcher.expect("test/out/a").payload == b"text"
    assert watcher.expect("test/out/b").payload == b"\x00bin"
    watcher.close()


def test_retained_messages_once_per_subscription(broker: Broker) -> None:
    publisher = BlockingClient(broker).connect()
    publisher.publish("ret/a", b"1", retain=True)

    async def scenario(reactor: Any) -> None:
        conn = connection(reactor, broker)
        first: list[str] = []
        second: list[str] = []
        conn.subscribe("ret/#", lambda m: first.append(m.text()))
        conn.start()
        await conn.when_connected(5)
        await wait_until(reactor, lambda: first == ["1"], what="the retained message")
        # an overlapping subscription gets the retained message; the first one not again
        conn.subscribe("ret/a", lambda m: second.append(m.text()))
        await wait_until(reactor, lambda: second == ["1"], what="retained for the new one")
        # a later message only the first filter matches: the broker sends in order, so a
        # second copy of the retained one would have come before it
        await reactor_thread(reactor, publisher.publish, "ret/b", b"after")
        await wait_until(reactor, lambda: first[-1:] == ["after"], what="the later message")
        assert first == ["1", "after"]
        await conn.stop()

    run_in_reactor(scenario, timeout=15)
    publisher.close()


def test_cancel_and_failing_callbacks(broker: Broker) -> None:
    publisher = BlockingClient(broker).connect()

    async def scenario(reactor: Any) -> None:
        conn = connection(reactor, broker)
        seen: list[str] = []

        def failing(message: Message) -> None:
            raise RuntimeError("on purpose")

        def once(message: Message) -> None:
            seen.append("once")
            sub_once.cancel()  # cancelling itself must not skip the next subscription

        conn.subscribe("c/#", failing, name="failing subscriber")
        sub_once = conn.subscribe("c/#", once)
        kept = conn.subscribe("c/#", lambda m: seen.append(m.text()))
        conn.start()
        await conn.when_connected(5)
        with capture_logs() as logs:
            publisher.publish("c/x", b"1")
            await wait_until(reactor, lambda: "1" in seen)
        assert seen == ["once", "1"]
        assert "failing subscriber failed on c/x" in logs.text()
        kept.cancel()
        conn.subscribe("other", lambda m: None)  # (a new subscription clears the cache)
        marker: list[str] = []
        conn.subscribe("c/end", lambda m: marker.append(m.text()))
        publisher.publish("c/x", b"2")
        # comes after "2", in order, through the broker's c/# (so no wait for c/end's
        # SUBACK): "2" reached the connection by then
        publisher.publish("c/end", b"end")
        await wait_until(reactor, lambda: marker, what="the later message")
        assert seen == ["once", "1"]
        await conn.stop()

    run_in_reactor(scenario, timeout=15)
    publisher.close()


def test_publishes_made_while_disconnected_are_sent_after_connect(tmp_path: Any) -> None:
    if find_mosquitto() is None:
        pytest.skip("needs mosquitto's persistent sessions")
    # The watcher's session must exist before the connection flushes its queue (which
    # happens the moment the broker is back), so it is made first and kept across the
    # broker's restart: a persistent session with a QoS 1 subscription.
    store = tmp_path / "persist"
    store.mkdir()
    broker = Broker(workdir=tmp_path / "b", impl="mosquitto",
                    extra_config=["persistence true", f"persistence_location {store}/"])
    broker.start()
    session = BlockingClient(broker, "watcher", clean_session=False).connect()
    session.subscribe("q/#", qos=1)
    session.close()
    broker.stop()  # now down: the connection below starts disconnected

    async def scenario(reactor: Any) -> None:
        bus = Bus(reactor)
        events = Lifecycles(bus)
        conn = connection(reactor, broker, bus, queue_limit=50)
        conn.start()
        pending = [conn.publish(f"q/{i}", str(i)) for i in range(50)]
        overflow = conn.publish("q/overflow", "x")
        with pytest.raises(OutboxFull):
            await overflow
        with pytest.raises(NotConnected):
            await conn.publish("q/zero", "x", qos=0)
        await wait_until(reactor, lambda: conn.machine.attempt >= 3,
                         what="a few failed attempts, backing off")
        assert not conn.connected and events.events == []
        watcher = await reactor_thread(reactor, _start_and_watch, broker)
        for d in pending:
            await d
        got = [watcher.expect("q/+", timeout=5).payload for _ in range(50)]
        assert got == [str(i).encode() for i in range(50)]  # all, in order
        watcher.close()
        await conn.stop()
        assert events.events == ["connected"]

    try:
        run_in_reactor(scenario, timeout=20)
    finally:
        broker.close()


def _start_and_watch(broker: Broker) -> BlockingClient:
    broker.restart()
    return BlockingClient(broker, "watcher", clean_session=False).connect()


def reactor_thread(reactor: Any, fn: Any, *args: Any) -> Deferred[Any]:
    from twisted.internet.threads import deferToThreadPool

    return deferToThreadPool(reactor, reactor.getThreadPool(), fn, *args)


def test_tcp_nodelay_follows_the_setting(broker: Broker) -> None:
    async def scenario(reactor: Any) -> None:
        for nodelay in (True, False):
            conn = connection(reactor, broker, client_id=f"nd-{nodelay}", tcp_nodelay=nodelay)
            conn.start()
            await conn.when_connected(5)
            sock = conn._session.client.socket()
            assert bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)) is nodelay
            await conn.stop()

    run_in_reactor(scenario, timeout=15)


def test_last_will_when_the_connection_dies(broker: Broker) -> None:
    watcher = BlockingClient(broker).connect()
    watcher.subscribe("test/will/status")

    async def scenario(reactor: Any) -> None:
        conn = connection(reactor, broker, client_id="will", status_topic="test/will/status")
        conn.start()
        await conn.when_connected(5)
        await wait_until(reactor, watcher.pending, what="online status")
        conn._session.abort("simulated crash")  # no DISCONNECT: the broker sends the will
        await wait_until(reactor, lambda: len(watcher.pending()) >= 2, what="the last will")
        await conn.stop()

    run_in_reactor(scenario, timeout=15)
    states = [json.loads(watcher.expect("test/will/status").payload)["state"] for _ in range(2)]
    assert states[:2] == ["online", "offline"]
    watcher.close()


def test_subscribe_rejects_bad_filters_and_publish_bad_topics(broker: Broker) -> None:
    async def scenario(reactor: Any) -> None:
        conn = connection(reactor, broker)
        with pytest.raises(ValueError, match="must be the last level"):
            conn.subscribe("a/#/b", lambda m: None)
        with pytest.raises(ValueError, match="wildcards"):
            await conn.publish("a/+", "x")
        with pytest.raises(ValueError, match="qos"):
            await conn.publish("a", "x", qos=2)
        await conn.stop()

    run_in_reactor(scenario, timeout=10)


def test_settings_from_config_defaults_and_a_password_kept_out_of_repr() -> None:
    from hadaemon.mqtt import SCHEMA, MqttSettings

    section = SCHEMA.defaults()
    settings = MqttSettings.from_config(section, "home/daemon")
    assert settings.client_id.startswith("hadaemon-home-daemon-")
    assert settings.status_topic == "hadaemon/home-daemon/status"
    assert settings.tls_verify and settings.tcp_nodelay
    secret = MqttSettings(password="s3cret")
    assert "s3cret" not in repr(secret)


def test_the_default_status_topic_follows_the_federation_site(tmp_path: Any) -> None:
    """With the federation enabled, "" is <[federation].site>/<name>/status (the host's
    presence in the site); without it, or set by hand, as before."""
    from hadaemon.config import read, validate
    from hadaemon.federation import Federation
    from hadaemon.mqtt import MqttService, MqttSettings
    from hadaemon.mqtt.settings import status_prefix

    schemas = {"mqtt": MqttService.schema, "federation": Federation.schema}

    def status_topic(plugins: list[str], sections: dict[str, Any]) -> str:
        raw = {"daemon": {"name": "pi", "plugins": plugins}, **sections}
        config, errors = validate(read(raw, base_dir=tmp_path, environ={}), schemas)
        assert not errors
        settings = MqttSettings.from_config(config.section("mqtt"), config.core.name,
                                            status_prefix=status_prefix(config))
        return settings.status_topic

    fed = ["mqtt", "federation"]
    assert status_topic(fed, {"federation": {"site": "home/flat"}}) == "home/flat/pi/status"
    assert status_topic(fed, {}) == "hadaemon/pi/status"
    assert status_topic(["mqtt"], {"federation": {"site": "home"}}) == "hadaemon/pi/status"
    assert status_topic(fed, {"federation": {"site": "home"},
                              "mqtt": {"status_topic": "x/pi/status"}}) == "x/pi/status"
    # a site that is no topic prefix is the federation's to refuse; the default stays
    assert status_topic(fed, {"federation": {"site": "a/+"}}) == "hadaemon/pi/status"


def test_a_burst_bigger_than_one_wakeup_is_read_to_the_end(broker: Broker) -> None:
    # Regression: packets left in our read buffer after a wake-up's packet limit were
    # only read when the next packet arrived, up to a keepalive (60 s) later.
    publisher = BlockingClient(broker).connect()
    watcher = BlockingClient(broker).connect()
    watcher.subscribe("burst/end")

    async def scenario(reactor: Any) -> None:
        conn = connection(reactor, broker)
        got: list[bytes] = []
        conn.subscribe("burst/#", lambda m: got.append(m.payload), qos=0)
        conn.start()
        await conn.when_connected(5)
        # Flooded from the reactor thread, so the reactor reads nothing meanwhile: once
        # the watcher got the last message, the broker passed the whole burst on to us
        # too, and it piles up in our socket.
        for i in range(2500):
            publisher.client.publish("burst/x", str(i).encode(), qos=0)
        publisher.publish("burst/end", b"end")
        assert watcher.expect("burst/end", timeout=10).payload == b"end"
        await wait_until(reactor, lambda: got and got[-1] == b"end", timeout=10,
                         what="the last message of the burst")
        assert len(got) == 2501
        await conn.stop()

    run_in_reactor(scenario, timeout=30)
    publisher.close()
    watcher.close()


def test_mqtt_5_publishes_and_receives(broker: Broker) -> None:
    if not broker.mqtt5:
        pytest.skip(f"{broker.impl} speaks MQTT 3.1.1 only")
    watcher = BlockingClient(broker).connect()
    watcher.subscribe("v5/#")

    async def scenario(reactor: Any) -> None:
        conn = connection(reactor, broker, client_id="v5", protocol="5")
        got: list[bytes] = []
        conn.subscribe("v5/in", lambda m: got.append(m.payload))
        conn.start()
        await conn.when_connected(5)
        await conn.publish("v5/out", "five")
        watcher.publish("v5/in", b"back")
        await wait_until(reactor, lambda: got == [b"back"])
        await conn.stop()

    run_in_reactor(scenario, timeout=15)
    assert watcher.expect("v5/out").payload == b"five"
    watcher.close()


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_qos0_publishes_framed_by_us_keep_their_order_and_fire_once_written(
    broker: Broker, protocol: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A QoS 0 publish skips paho while paho has nothing queued or unacknowledged; mixed
    with QoS 1 ones (paho's first: the online status is unacknowledged at connect), all
    arrive in order, retained where asked, and every Deferred fires (QoS 0 once
    written)."""
    if protocol == "5" and not broker.mqtt5:
        pytest.skip(f"{broker.impl} speaks MQTT 3.1.1 only")
    from hadaemon.mqtt.transport import PahoSession

    framed: list[int] = []
    original = PahoSession._publish_framed

    def spy(self: PahoSession, topic: str, payload: bytes, qos: int, retain: bool) -> int:
        framed.append(qos)
        return original(self, topic, payload, qos, retain)

    monkeypatch.setattr(PahoSession, "_publish_framed", spy)
    watcher = BlockingClient(broker).connect()
    watcher.subscribe("zero/#")

    async def scenario(reactor: Any) -> None:
        conn = connection(reactor, broker, client_id=f"zero-{protocol}", protocol=protocol)
        conn.start()
        await conn.when_connected(5)
        sent = [conn.publish("zero/t", str(i), qos=i % 3 == 0, retain=i == 40)
                for i in range(60)]
        for d in sent:
            await d
        assert framed.count(0) > 0
        await conn.stop()

    run_in_reactor(scenario, timeout=20)
    got = [watcher.expect("zero/t").payload for _ in range(60)]
    assert got == [str(i).encode() for i in range(60)]
    late = BlockingClient(broker).connect()
    late.subscribe("zero/t")
    assert late.expect("zero/t").payload == b"40"  # retained
    watcher.close()
    late.close()


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_qos1_publishes_framed_by_us_and_by_paho_keep_their_order(
    broker: Broker, protocol: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A QoS 1 publish skips paho only while paho has nothing queued or unacknowledged
    and ours in flight stay under max_inflight; either way all arrive, in order, and
    every Deferred fires on its PUBACK."""
    if protocol == "5" and not broker.mqtt5:
        pytest.skip(f"{broker.impl} speaks MQTT 3.1.1 only")
    from hadaemon.mqtt.transport import PahoSession

    framed: list[int] = []
    original = PahoSession._publish_framed

    def spy(self: PahoSession, topic: str, payload: bytes, qos: int, retain: bool) -> int:
        mid = original(self, topic, payload, qos, retain)
        if qos:
            framed.append(mid)
        return mid

    monkeypatch.setattr(PahoSession, "_publish_framed", spy)
    watcher = BlockingClient(broker).connect()
    watcher.subscribe("order/#")

    async def scenario(reactor: Any) -> None:
        conn = connection(reactor, broker, client_id=f"order-{protocol}", protocol=protocol,
                          max_inflight=20)
        conn.start()
        await conn.when_connected(5)
        # The online status is still unacknowledged in paho: these go through paho.
        first = [conn.publish("order/t", str(i)) for i in range(30)]
        for d in first:
            await d
        before = len(framed)
        # Ours until 20 are in flight, then paho's (and ours wait for its PUBACKs).
        second = [conn.publish("order/t", str(i), retain=i == 59) for i in range(30, 90)]
        assert len(framed) - before == 20
        for d in second:
            await d
        await conn.publish("order/t", "90")  # paho has nothing pending again: ours
        assert len(framed) - before == 21
        assert conn.queued == 0
        await conn.stop()

    run_in_reactor(scenario, timeout=20)
    got = [watcher.expect("order/t").payload for _ in range(91)]
    assert got == [str(i).encode() for i in range(91)]
    watcher.close()
    with BlockingClient(broker) as clear:
        clear.publish("order/t", b"", retain=True)
