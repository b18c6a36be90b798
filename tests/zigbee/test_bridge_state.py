"""The device query follows zigbee2mqtt: held while the bridge is offline, sent when it
comes online, sent again after a bridge restart; once per device each time."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest

from hadaemon.mqtt import MqttConnection
from hadaemon.testing import BlockingClient, Broker, run_in_reactor, wait_until
from hadaemon.zigbee.simulator import Zigbee2MqttSimulator, sample_devices
from tests.mqtt.util import settings_for

from .util import Harness, zigbee_daemon, zigbee_running

MARKER = "test/marker"


def _offline_bridge(broker: Broker, state: bytes) -> BlockingClient:
    """zigbee2mqtt's retained messages as a stopped zigbee2mqtt leaves them; then a
    watcher of everything under its base topic."""
    client = BlockingClient(broker).connect()
    client.publish("zigbee2mqtt/bridge/state", state, qos=1, retain=True)
    client.publish("zigbee2mqtt/bridge/devices", json.dumps(sample_devices()), qos=1,
                   retain=True)
    client.subscribe("zigbee2mqtt/#")
    client.subscribe(MARKER)
    return client


def _gets_since_online(watcher: BlockingClient) -> list[str]:
    """The devices asked (``<name>/get``) since the bridge last said online."""
    messages = watcher.pending()
    online = [i for i, m in enumerate(messages) if m.topic == "zigbee2mqtt/bridge/state"
              and b"online" in m.payload]
    start = online[-1] if online else len(messages)
    return sorted(m.topic[len("zigbee2mqtt/"):-len("/get")] for m in messages[start:]
                  if m.topic.endswith("/get"))


async def _queried_once(reactor: Any, network: Any, connection: Any,
                        watcher: BlockingClient, expected: list[str]) -> None:
    # The run is over once the last device was asked *and* the collator, which sends a
    # turn's /get on the next turn, has sent it: else the marker could overtake it.
    await wait_until(reactor, lambda: network.bridge_online and not network._query_queue
                     and network._query_call is None and not network.collator.pending(),
                     what="the query run")
    # A barrier: all our earlier publishes reach the watcher before this one (a marker
    # of its own: an earlier call's marker is already there).
    markers = sum(m.topic == MARKER for m in watcher.pending())
    await connection.publish(MARKER, b"%d" % (markers + 1))
    await wait_until(reactor, lambda: sum(m.topic == MARKER for m in watcher.pending())
                     > markers, what="the marker")
    assert _gets_since_online(watcher) == expected, "\n".join(
        f"{m.topic} {m.payload[:30]!r}" for m in watcher.pending() if "/bridge/" in m.topic
        or m.topic.endswith("/get") or m.topic == MARKER)


@pytest.mark.parametrize("offline", [b"offline", b'{"state": "offline"}'],
                         ids=["legacy", "json"])
def test_query_waits_for_the_bridge_and_follows_its_restart(
        tmp_path: pathlib.Path, broker: Broker, offline: bytes) -> None:
    watcher = _offline_bridge(broker, offline)
    config, catalog = zigbee_daemon(tmp_path, broker, plugins=["mqtt", "zigbee2mqtt"],
                                    zigbee={"initial_query": True, "query_interval": 0.0})

    async def scenario(reactor: Any) -> None:
        async with zigbee_running(reactor, config, catalog) as (daemon, network, _none):
            assert network.bridge_online is False
            connection = daemon.plugin("mqtt").connection  # type: ignore[union-attr]
            expected = sorted(d.name for d in network.devices.values()
                              if network.can_answer(d) and network.queryable(d))
            assert "Coffee plug" in expected and "Front door" not in expected  # battery
            # zigbee2mqtt starts: it says online, and answers the query
            settings = settings_for(broker, client_id="z2m-simulator")
            z2m = MqttConnection(reactor, settings, status=False, will=(
                "zigbee2mqtt/bridge/state", b'{"state": "offline"}'))
            simulator = Zigbee2MqttSimulator(reactor, z2m, sample_devices())
            simulator.start()
            z2m.start()
            try:
                await _queried_once(reactor, network, connection, watcher, expected)
                plug = network.find("Coffee plug")
                await wait_until(reactor, lambda: daemon.registry.get_value(
                    plug.peer_id, 0, "state") is not None, what="an answer to the query")
                # a restart of zigbee2mqtt: offline, then online again
                simulator.set_bridge_online(False)
                await wait_until(reactor, lambda: network.bridge_online is False)
                simulator.set_bridge_online(True)
                await _queried_once(reactor, network, connection, watcher, expected)
            finally:
                await simulator.stop()
                await z2m.stop()

    try:
        run_in_reactor(scenario, timeout=40)
    finally:
        watcher.close()


def test_the_bridge_going_offline_mid_run_restarts_it_when_back() -> None:
    h = Harness(initial_query=True, query_interval=1.0, requery_on_reconnect=False)
    network = h.network
    expected = sorted(f"zigbee2mqtt/{d.name}/get" for d in network.devices.values()
                      if network.can_answer(d) and network.queryable(d))
    h.deliver("zigbee2mqtt/bridge/state", {"state": "online"})
    asked = [t for t, _ in h.take() if t.endswith("/get")]
    assert 0 < len(asked) < len(expected)  # the run has begun (one device a second)
    h.deliver("zigbee2mqtt/bridge/state", {"state": "offline"})
    _wait(h, 60)
    assert not [t for t, _ in h.take() if t.endswith("/get")]  # not into the void
    h.deliver("zigbee2mqtt/bridge/state", "online")
    _wait(h, 60)
    # the interrupted run starts over, once per device
    assert sorted(t for t, _ in h.take() if t.endswith("/get")) == expected
    # a restart with requery_on_reconnect off: nothing left to ask
    h.deliver("zigbee2mqtt/bridge/state", "offline")
    h.deliver("zigbee2mqtt/bridge/state", "online")
    _wait(h, 60)
    assert not [t for t, _ in h.take() if t.endswith("/get")]


def _wait(h: Harness, seconds: int) -> None:
    for _ in range(seconds):
        h.clock.advance(1)
