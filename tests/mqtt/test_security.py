"""Credentials and TLS are used for every connection; refusals are clear and retried."""

from __future__ import annotations

from typing import Any

from hadaemon.bus import Bus
from hadaemon.testing import BlockingClient, capture_logs, run_in_reactor, wait_until
from hadaemon.testing.fixtures import BrokerFactory

from .util import Lifecycles, connection


def test_password_broker_accepts_the_credentials_and_refuses_wrong_or_none(
    broker_factory: BrokerFactory,
) -> None:
    broker = broker_factory(username="alice", password="s3cret")

    async def scenario(reactor: Any) -> None:
        good = connection(reactor, broker, client_id="good")
        good.start()
        await good.when_connected(5)
        await good.publish("auth/ok", "1")
        await good.stop()

        bus = Bus(reactor)
        events = Lifecycles(bus)
        with capture_logs() as logs:
            bad = connection(reactor, broker, bus, client_id="bad", password="wrong")
            bad.start()
            await wait_until(reactor, lambda: bad.machine.attempt >= 2, what="a retry")
        assert not bad.connected and events.events == []
        text = logs.text()
        assert "refused the connection" in text and "wrong" not in text
        assert "retrying in" in text
        await bad.stop()

        anonymous = connection(reactor, broker, client_id="anon", username="", password="")
        anonymous.start()
        await wait_until(reactor, lambda: anonymous.machine.attempt >= 2)
        assert not anonymous.connected
        await anonymous.stop()

    run_in_reactor(scenario, timeout=15)


def test_tls_with_ca_and_verification(broker_factory: BrokerFactory) -> None:
    broker = broker_factory(tls=True, username="bob", password="pw")
    watcher = BlockingClient(broker).connect()
    watcher.subscribe("tls/#")

    async def scenario(reactor: Any) -> None:
        conn = connection(reactor, broker, client_id="tls-good")
        got: list[bytes] = []
        conn.subscribe("tls/in", lambda m: got.append(m.payload))
        conn.start()
        await conn.when_connected(5)
        await conn.publish("tls/out", "secure")
        watcher.publish("tls/in", b"x" * 100_000)  # bigger than one TLS record
        await wait_until(reactor, lambda: got, what="a message over TLS")
        assert got == [b"x" * 100_000]
        await conn.stop()

        # verification is on by default: without the test CA the broker is not trusted
        with capture_logs() as logs:
            untrusted = connection(reactor, broker, client_id="tls-bad", ca_file=None)
            untrusted.start()
            await wait_until(reactor, lambda: untrusted.machine.attempt >= 2)
        assert not untrusted.connected
        assert "TLS certificate not trusted" in logs.text()
        await untrusted.stop()

        # tls_verify = false connects anyway (for testing setups only)
        insecure = connection(reactor, broker, client_id="tls-insecure", ca_file=None,
                              tls_verify=False)
        insecure.start()
        await insecure.when_connected(5)
        await insecure.stop()

        # plain TCP against the TLS port never gets a CONNACK
        plain = connection(reactor, broker, client_id="tls-plain", tls=False,
                           connect_timeout=0.5)
        plain.start()
        await wait_until(reactor, lambda: plain.machine.attempt >= 2)
        assert not plain.connected
        await plain.stop()

    run_in_reactor(scenario, timeout=20)
    assert watcher.expect("tls/out").payload == b"secure"
    watcher.close()


def test_mutual_tls_connects_with_a_client_certificate_and_not_without(
    broker_factory: BrokerFactory,
) -> None:
    broker = broker_factory(tls=True, require_client_cert=True)

    async def scenario(reactor: Any) -> None:
        conn = connection(reactor, broker, client_id="mtls")
        conn.start()
        await conn.when_connected(5)
        await conn.stop()
        no_cert = connection(reactor, broker, client_id="mtls-none", cert_file=None,
                             key_file=None)
        no_cert.start()
        # refused, and tried again: the first attempt ended without a connection
        await wait_until(reactor, lambda: no_cert.machine.attempt >= 2)
        assert not no_cert.connected and no_cert.machine.last_error
        await no_cert.stop()

    run_in_reactor(scenario, timeout=15)
