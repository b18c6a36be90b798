"""What reaches the adapter over a real broker: zigbee2mqtt's messages, not our own
commands; nothing bigger than max_payload; one warning per device and kind of problem."""

from __future__ import annotations

import json
import pathlib
from typing import Any

from twisted.logger import LogLevel

from hadaemon.testing import BlockingClient, Broker, capture_logs, run_in_reactor, wait_until
from hadaemon.zigbee.subscriptions import fixed_filters, name_filters
from tests.mqtt.test_connection import reactor_thread

from .util import Harness, zigbee_daemon, zigbee_running


def _watch(broker: Broker, pattern: str) -> BlockingClient:
    watcher = BlockingClient(broker).connect()
    watcher.subscribe(pattern)
    return watcher


def test_our_own_commands_are_not_delivered_back(tmp_path: pathlib.Path,
                                                 broker: Broker) -> None:
    config, catalog = zigbee_daemon(tmp_path, broker, zigbee={"initial_query": False})

    async def scenario(reactor: Any) -> None:
        async with zigbee_running(reactor, config, catalog) as (daemon, network, simulator):
            connection = daemon.plugin("mqtt").connection  # type: ignore[union-attr]
            watcher = await reactor_thread(reactor, _watch, broker, "zigbee2mqtt/#")
            try:
                registry = daemon.registry
                for name in ("Coffee plug", "kitchen/coffee"):
                    if name != "Coffee plug":  # a friendly name with a slash
                        simulator.rename("Coffee plug", name)
                        # its retained availability comes with the new exact subscription
                        await wait_until(reactor, lambda: getattr(
                            network.find("kitchen/coffee"), "available", None) is True)
                    plug = network.find(name)
                    # everything the simulator sent so far has reached us after this
                    tv = network.find("TV plug").peer_id
                    power = 10.0 + len(name)
                    simulator.report("TV plug", {"power": power})

                    def reported(peer: int = tv, value: float = power) -> bool:
                        return bool(registry.get_value(peer, 0, "power") == value)

                    await wait_until(reactor, reported, what="the simulator's messages so far")
                    before = connection.messages_received
                    wanted = not registry.get_value(plug.peer_id, 0, "state")
                    await registry.set_value(plug.peer_id, 0, "state", wanted)

                    def echoed(peer: int = plug.peer_id, value: bool = wanted) -> bool:
                        return bool(registry.get_value(peer, 0, "state") == value)

                    # the simulator's echo of the new state comes after our /set on the
                    # broker, so our /set, if it came back, would already be counted
                    await wait_until(reactor, echoed, what=f"{name}'s echo")
                    answer = await network.requests.request("health_check")
                    assert answer == {"healthy": True}
                    # the echo and the response, not our /set nor our bridge/request
                    assert connection.messages_received - before == 2
                    # they did go out (the watcher's thread may lag behind us)
                    sent = {f"zigbee2mqtt/{name}/set", "zigbee2mqtt/bridge/request/health_check"}

                    def went_out(wanted: set[str] = sent) -> bool:
                        return wanted <= {m.topic for m in watcher.pending()}

                    await wait_until(reactor, went_out, what="our commands on the broker")
                    for _ in watcher.pending():
                        watcher.expect()
            finally:
                watcher.close()

    run_in_reactor(scenario, timeout=30)


def test_filters_reach_every_name_but_no_command() -> None:
    from hadaemon.mqtt import matches

    filters = [*fixed_filters("z"), *sorted(name_filters("z", ["lamp", "a/b", "x/+"]))]
    for topic in ("z/lamp", "z/lamp/availability", "z/a/b", "z/a/b/availability",
                  "z/bridge/state", "z/bridge/devices", "z/bridge/response/device/rename",
                  "z/bridge/event", "z/bridge/groups", "z/bridge/info"):
        assert any(matches(f, topic) for f in filters), topic
    for topic in ("z/lamp/set", "z/lamp/get", "z/lamp/set/state", "z/a/b/set", "z/a/b/get",
                  "z/lamp/l1/set", "z/bridge/request/health_check", "z/bridge/logging"):
        assert not any(matches(f, topic) for f in filters), topic


def test_a_10_mb_report_is_ignored_with_one_warning(tmp_path: pathlib.Path,
                                                    broker: Broker) -> None:
    config, catalog = zigbee_daemon(tmp_path, broker, zigbee={"initial_query": False})
    huge = json.dumps({"state": "ON", "padding": "x" * (10 * 1024 * 1024)}).encode()

    async def scenario(reactor: Any) -> None:
        async with zigbee_running(reactor, config, catalog) as (daemon, network, _simulator):
            plug = network.find("TV plug")
            registry = daemon.registry
            await registry.set_value(plug.peer_id, 0, "state", False)
            await wait_until(reactor, lambda: registry.get_value(plug.peer_id, 0, "state")
                             is False)
            client = await reactor_thread(reactor, lambda: BlockingClient(broker).connect())
            try:
                with capture_logs() as logs:
                    for payload in (huge, huge, b"not json", b"not json either",
                                    b'{"power": 12.5}'):
                        await reactor_thread(reactor, client.publish, "zigbee2mqtt/TV plug",
                                             payload)
                    await wait_until(reactor, lambda: registry.get_value(
                        plug.peer_id, 0, "power") == 12.5, what="the last report")
            finally:
                await reactor_thread(reactor, client.close)
            assert registry.get_value(plug.peer_id, 0, "state") is False  # not applied
            warnings = [t for t in logs.texts(LogLevel.warn) if "TV plug" in t]
            assert len(warnings) == 2, warnings  # each kind once, the second kind too
            assert f"{len(huge)} bytes, more than the 1048576 allowed " \
                "([zigbee2mqtt].max_payload); ignored" in warnings[0]
            assert "not JSON" in warnings[1]

    run_in_reactor(scenario, timeout=60)


def test_the_limits_are_configurable_and_the_device_list_has_its_own() -> None:
    h = Harness(max_payload=2048, max_devices_payload=1_000_000)  # the sample: ~100 kB
    assert h.network.find("TV plug") is not None
    h.deliver("zigbee2mqtt/TV plug", {"state": "ON", "pad": "x" * 2048})
    h.deliver("zigbee2mqtt/TV plug", {"state": "ON"})
    assert h.registry.get_value(h.peer("TV plug"), 0, "state") is True
    small = Harness(max_devices_payload=50_000)
    assert small.network.devices == {}
