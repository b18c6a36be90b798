"""The test broker must behave like a real one: auth, TLS, crashes and restarts, latency."""

from __future__ import annotations

import socket
import ssl
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from hadaemon.testing import (
    ENV_VAR,
    BlockingClient,
    Broker,
    BrokerError,
    BrokerUnsupported,
    ConnectRefused,
    PortInUse,
    available_impls,
    default_impl,
    find_mosquitto,
    find_mosquitto_passwd,
    make_client,
    mosquitto_password_line,
    poll_until,
)
from hadaemon.testing.fixtures import BrokerFactory

IMPLS = available_impls()
needs_mosquitto = pytest.mark.skipif(
    "mosquitto" not in IMPLS, reason="mosquitto is not installed (or not selected)"
)


def running(broker: Broker) -> bool:
    """``broker.running``, read fresh (mypy would narrow the property across restarts)."""
    return broker.running


def prefix() -> str:
    """A topic prefix no other test uses (brokers may be shared)."""
    return f"test/{uuid.uuid4().hex[:10]}"


def round_trip(broker: Broker, **client_kwargs: Any) -> None:
    topic = f"{prefix()}/ping"
    with BlockingClient(broker, **client_kwargs) as client:
        client.subscribe(f"{topic.rsplit('/', 1)[0]}/#")
        client.publish(topic, b"pong")
        message = client.expect(topic, timeout=5)
        assert message.payload == b"pong"


@pytest.mark.parametrize("broker", IMPLS, indirect=True)
def test_publish_subscribe_round_trip(broker: Broker) -> None:
    assert broker.running and broker.url == f"mqtt://127.0.0.1:{broker.port}"
    round_trip(broker)
    # A bare paho client made by make_client works too, on paho's thread.
    topic = f"{prefix()}/raw"
    with BlockingClient(broker) as listener:
        listener.subscribe(topic, qos=0)
        raw = make_client(broker)
        raw.connect(broker.host, broker.port)
        raw.loop_start()
        try:
            raw.publish(topic, b"raw", qos=1).wait_for_publish(5)
        finally:
            raw.disconnect()
            raw.loop_stop()
        assert listener.expect(topic).payload == b"raw"


def test_shared_broker_round_trip_and_expect_times_out_naming_the_filter(
    shared_broker: Broker,
) -> None:
    round_trip(shared_broker)
    with BlockingClient(shared_broker) as client:
        topic = f"{prefix()}/nothing"
        client.subscribe(topic)
        with pytest.raises(TimeoutError, match="nothing"):
            client.expect(topic, timeout=0.1)


@pytest.mark.parametrize("impl", IMPLS)
def test_password_broker_accepts_only_the_right_credentials(
    broker_factory: BrokerFactory, impl: str
) -> None:
    broker = broker_factory(username="alice", password="s3cret", impl=impl)
    round_trip(broker)
    with pytest.raises(ConnectRefused):
        BlockingClient(broker, password="wrong").connect()
    with pytest.raises(ConnectRefused):
        BlockingClient(broker, username="mallory", password="s3cret").connect()
    with pytest.raises(ConnectRefused):
        BlockingClient(broker, username=None, password=None).connect()


@pytest.mark.parametrize("impl", IMPLS)
def test_tls_broker_needs_the_test_ca(broker_factory: BrokerFactory, impl: str) -> None:
    broker = broker_factory(tls=True, impl=impl)
    assert broker.url.startswith("mqtts://") and broker.ca_path is not None
    round_trip(broker)
    round_trip(broker, client_cert=True)  # an unrequested client certificate is fine
    with pytest.raises(ssl.SSLCertVerificationError):
        BlockingClient(broker, trust_ca=False).connect()


@pytest.mark.parametrize("impl", IMPLS)
def test_tls_with_password(broker_factory: BrokerFactory, impl: str) -> None:
    broker = broker_factory(tls=True, username="bob", password="pw", impl=impl)
    round_trip(broker)
    with pytest.raises(ConnectRefused):
        BlockingClient(broker, password="nope").connect()


@pytest.mark.parametrize("impl", IMPLS)
def test_mutual_tls_requires_a_client_certificate(broker_factory: BrokerFactory, impl: str) -> None:
    broker = broker_factory(tls=True, require_client_cert=True, impl=impl)  # skips on amqtt
    assert broker.client_cert_path is not None and broker.client_key_path is not None
    round_trip(broker)  # make_client sends the client cert when the broker requires one
    with pytest.raises((ConnectionError, ssl.SSLError)):
        BlockingClient(broker, client_cert=False).connect()


@pytest.mark.skipif("amqtt" not in IMPLS, reason="amqtt is not installed (or not selected)")
def test_amqtt_says_clearly_what_it_cannot_do(tmp_path: Path) -> None:
    with pytest.raises(BrokerUnsupported, match="client certificates"):
        Broker(impl="amqtt", tls=True, require_client_cert=True, workdir=tmp_path)
    with pytest.raises(BrokerUnsupported, match="mosquitto config"):
        Broker(impl="amqtt", extra_config=["max_keepalive 10"], workdir=tmp_path)
    assert not Broker(impl="amqtt", workdir=tmp_path).mqtt5  # it speaks MQTT 3.1.1 only


@pytest.mark.parametrize("impl", IMPLS)
def test_kill_then_restart_on_the_same_port(broker_factory: BrokerFactory, impl: str) -> None:
    broker = broker_factory(impl=impl)
    port, pid = broker.port, broker.pid
    assert pid is not None
    with BlockingClient(broker) as client:
        broker.kill()
        assert not running(broker)
        poll_until(lambda: not client.connected, 30, "the client to see the broker gone")
        with pytest.raises(OSError):
            BlockingClient(broker).connect(timeout=2)

        broker.restart()
        assert running(broker) and broker.port == port and broker.pid != pid
        client.connect()  # the same client id reconnects
        assert client.connected
    round_trip(broker)
    assert broker.log_text().count("=== hadaemon.testing: starting") == 2


@pytest.mark.parametrize("impl", IMPLS)
def test_stop_is_graceful_and_idempotent(broker_factory: BrokerFactory, impl: str) -> None:
    broker = broker_factory(impl=impl)
    broker.stop()
    broker.stop()
    assert not running(broker)
    broker.start()
    round_trip(broker)


@pytest.mark.parametrize("impl", IMPLS)
def test_start_fails_loudly_when_the_port_is_taken_by_another_broker(
    broker: Broker, impl: str, tmp_path: Path
) -> None:
    # The probe would happily connect to the *other* broker; start() must not be fooled.
    with pytest.raises(PortInUse, match=r"(?i)address already in use") as info:
        Broker(impl=impl, port=broker.port, workdir=tmp_path / "second").start(timeout=5)
    assert str(tmp_path / "second") in str(info.value)  # names the log file


def test_factory_can_defer_start(broker_factory: BrokerFactory) -> None:
    broker = broker_factory(start=False)
    assert not running(broker)
    broker.start()
    assert running(broker)
    with pytest.raises(BrokerError, match="already running"):
        broker.start()


def test_context_manager_removes_its_own_workdir() -> None:
    with Broker() as broker:
        workdir = broker.workdir
        round_trip(broker)
    assert not broker.running
    assert not workdir.exists()
    assert "starting" in broker.log_text()  # the log outlives the directory


def test_env_var_forces_the_implementation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, "amqtt")
    assert default_impl() == "amqtt"
    assert available_impls() == ["amqtt"]
    monkeypatch.setenv(ENV_VAR, "mosquitto")
    assert default_impl() == "mosquitto"
    monkeypatch.setenv(ENV_VAR, "hivemq")
    with pytest.raises(BrokerError, match=ENV_VAR):
        default_impl()


def test_bad_options_are_rejected_early() -> None:
    with pytest.raises(ValueError, match="both"):
        Broker(username="alice")
    with pytest.raises(ValueError, match="tls"):
        Broker(require_client_cert=True)
    with pytest.raises(ValueError, match="impl"):
        Broker(impl="hivemq")


@needs_mosquitto
def test_find_mosquitto_finds_an_executable() -> None:
    found = find_mosquitto()
    assert found is not None and Path(found).name == "mosquitto"


@pytest.mark.skipif(find_mosquitto_passwd() is None, reason="mosquitto_passwd is not installed")
def test_our_password_hash_matches_mosquitto_passwd(tmp_path: Path) -> None:
    import base64
    import subprocess

    tool = find_mosquitto_passwd()
    assert tool is not None
    subprocess.run([tool, "-c", "-b", str(tmp_path / "pw"), "carol", "h0rse"], check=True)
    line = (tmp_path / "pw").read_text().strip()
    salt = base64.b64decode(line.split("$")[3])
    assert mosquitto_password_line("carol", "h0rse", salt=salt) == line


@needs_mosquitto
def test_mosquitto_accepts_our_own_password_file(
    broker_factory: BrokerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("hadaemon.testing.credentials.find_mosquitto_passwd", lambda: None)
    broker = broker_factory(impl="mosquitto", username="dave", password="pa:ss wörd")
    assert broker.password_path is not None
    assert broker.password_path.read_text().startswith("dave:$7$101$")
    round_trip(broker)
    with pytest.raises(ConnectRefused):
        BlockingClient(broker, password="pa:ss word").connect()


@needs_mosquitto
def test_mosquitto_speaks_mqtt5(broker_factory: BrokerFactory) -> None:
    broker = broker_factory(impl="mosquitto")
    assert broker.mqtt5
    round_trip(broker, protocol=mqtt.MQTTv5)


@needs_mosquitto
def test_qos1_request_reply_is_not_stalled_by_nagle(broker_factory: BrokerFactory) -> None:
    """set_tcp_nodelay works: without it each round trip takes ~40-90 ms (delayed ACK)."""
    broker = broker_factory(impl="mosquitto")
    assert "set_tcp_nodelay true" in broker.config_path.read_text()
    base = prefix()
    with BlockingClient(broker) as responder, BlockingClient(broker) as requester:

        def reply(client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
            client.publish(f"{base}/reply", message.payload, qos=1)

        responder.client.on_message = reply
        responder.subscribe(f"{base}/request")
        requester.subscribe(f"{base}/reply")
        # Our side of each connection has Nagle off too (the broker's is its config,
        # checked above); the round trip's speed is a benchmark's business, not a test's.
        for client in (responder, requester):
            sock = client.client.socket()
            assert sock is not None
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        for i in range(50):
            requester.publish(f"{base}/request", str(i), qos=1)
            assert requester.expect(f"{base}/reply").payload == str(i).encode()
