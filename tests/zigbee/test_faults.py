"""Faults: the broker killed while sets are pending; credentials and TLS honoured."""

from __future__ import annotations

import json
import pathlib
from typing import Any

from hadaemon.daemon import Daemon
from hadaemon.testing import BlockingClient, Broker, capture_logs, run_in_reactor, sleep, wait_until
from hadaemon.testing.fixtures import BrokerFactory
from tests.mqtt.test_connection import reactor_thread

from .util import zigbee_daemon, zigbee_running


def test_broker_killed_and_restarted_while_sets_are_pending(tmp_path: pathlib.Path,
                                                             broker: Broker) -> None:
    config, catalog = zigbee_daemon(
        tmp_path, broker, zigbee={"initial_query": False, "requery_on_reconnect": True},
        mqtt={"reconnect_delay": 0.6, "reconnect_delay_max": 1.0, "reconnect_jitter": 0.0},
    )
    holder: dict[str, BlockingClient] = {}

    def restart_and_watch() -> None:
        broker.start()
        watcher = BlockingClient(broker).connect()
        watcher.subscribe("zigbee2mqtt/+/set")
        holder["watcher"] = watcher

    async def scenario(reactor: Any) -> None:
        async with zigbee_running(reactor, config, catalog) as (daemon, network, simulator):
            registry = daemon.registry
            plugs = [network.find(n) for n in ("Coffee plug", "TV plug")]
            await reactor_thread(reactor, broker.kill)
            await wait_until(reactor, lambda: not network.ready, what="the disconnect")
            writes = []
            for i in range(30):  # sets made while the broker is down: queued, none lost
                for plug in plugs:
                    writes.append(registry.set_value(plug.peer_id, 0, "state", i % 2 == 0))
                    writes.append(registry.set_value(plug.peer_id, 0, "countdown"
                                                     if plug.name == "Coffee plug" else
                                                     "power_on_behavior",
                                                     i if plug.name == "Coffee plug" else "on"))
                await sleep(reactor, 0)
            simulator.devices["TV plug"].state["state"] = "OFF"
            # On the reactor thread on purpose: the daemon cannot send its CONNECT (and the
            # queued sets) before the watcher's subscription is in place.
            restart_and_watch()
            for write in writes:
                await write  # each acknowledged by the restarted broker
            await wait_until(reactor, lambda: network.ready, timeout=10, what="the reconnect")
            # re-synced: what the registry shows is what the devices have
            for plug in plugs:
                await wait_until(reactor, lambda plug=plug: registry.get_value(
                    plug.peer_id, 0, "state") == (simulator.devices[plug.name].state["state"]
                                                   == "ON"), what=f"{plug.name} re-synced")

    run_in_reactor(scenario, timeout=40)
    watcher = holder["watcher"]
    # The broker acknowledged every set; its deliveries to the watcher may still be on the way.
    received = [watcher.expect("zigbee2mqtt/+/set", timeout=10) for _ in range(60)]
    received += watcher.pending()
    sets = [(m.topic, json.loads(m.payload)) for m in received]
    # collated per turn (one message per plug per turn), last values, nothing lost
    assert len(sets) == 60
    coffee = [p for t, p in sets if t == "zigbee2mqtt/Coffee plug/set"]
    assert [p["countdown"] for p in coffee] == list(range(30))
    watcher.close()


def test_password_and_tls_are_used_for_every_connection(tmp_path: pathlib.Path,
                                                        broker_factory: BrokerFactory) -> None:
    broker = broker_factory(username="z2m", password="s3cret", tls=True)
    config, catalog = zigbee_daemon(tmp_path, broker, zigbee={"initial_query": False})

    async def scenario(reactor: Any) -> None:
        daemon = Daemon(config, reactor, catalog=catalog)
        daemon.startService()
        await daemon.started
        network: Any = daemon.plugin("zigbee2mqtt").network  # type: ignore[union-attr]
        await wait_until(reactor, lambda: network.ready and len(network.devices) == 17)
        await daemon.stopService()

    run_in_reactor(scenario, timeout=20)

    bad_config, bad_catalog = zigbee_daemon(tmp_path / "bad", broker,
                                            mqtt={"password": "wrong"},
                                            zigbee={"initial_query": False})

    async def refused(reactor: Any) -> None:
        with capture_logs() as logs:
            daemon = Daemon(bad_config, reactor, catalog=bad_catalog)
            daemon.startService()
            await daemon.started
            await wait_until(reactor, lambda: "refused the connection" in logs.text(),
                             what="the refusal")
            network: Any = daemon.plugin("zigbee2mqtt").network  # type: ignore[union-attr]
            assert not network.ready and network.devices == {}
            await daemon.stopService()
        assert "refused the connection" in logs.text()

    run_in_reactor(refused, timeout=20)


def test_zigbee_without_the_mqtt_plugin_fails_clearly(tmp_path: pathlib.Path,
                                                      broker: Broker) -> None:
    config, catalog = zigbee_daemon(tmp_path, broker, plugins=["zigbee2mqtt"])

    async def scenario(reactor: Any) -> None:
        daemon = Daemon(config, reactor, catalog=catalog)
        daemon.startService()
        await daemon.started
        assert daemon.failed["zigbee2mqtt"] == (
            "not started: plugin 'zigbee2mqtt' requires 'mqtt', which is not enabled in "
            "[daemon].plugins")
        assert daemon.plugin("zigbee2mqtt") is None
        await daemon.stopService()

    run_in_reactor(scenario, timeout=20)
