"""zigbee devices seen from the other worlds (bus, registry), the simulator's strictness,
and the public surface."""

from __future__ import annotations

import json
import pathlib
from typing import Any

from hadaemon.bus import VariableChanged
from hadaemon.registry import UnknownVariable
from hadaemon.testing import BlockingClient, Broker, run_in_reactor, wait_until

from .util import Harness, zigbee_daemon, zigbee_running


def test_bus_messages_and_events_for_other_worlds() -> None:
    h = Harness()
    hue, remote = h.peer("Hallway Hue"), h.peer("Tradfri remote")
    answers: list[Any] = []
    # what a node's setValue or a service's SubmitAction to a device boils down to
    h.bus.send(f"device:{hue}", {"state": True, "brightness": 5}).addBoth(answers.append)
    h.turn()
    assert h.take() == [("zigbee2mqtt/Hallway Hue/set", {"state": "ON", "brightness": 5})]
    h.turn()
    assert answers == [None]
    h.bus.send(f"device:{hue}", {"nope": 1}).addErrback(answers.append)
    h.turn()
    assert answers[-1].check(UnknownVariable)
    h.events.clear()
    h.deliver("zigbee2mqtt/Tradfri remote", {"action": "arrow_left_click", "battery": 80})
    by_name = {e.name: e for e in h.events}
    event = by_name["action"]
    assert isinstance(event, VariableChanged)
    assert (event.source, event.peer_id, event.channel, event.value, event.is_event) == \
        ("zigbee2mqtt", remote, 0, "arrow_left_click", True)
    assert event.topic == f"variable/zigbee2mqtt/{remote}/0/action"
    device = h.registry.device(remote)
    assert device.key == "0x00158d000000000d" and device.type == "E1524/E1810"
    assert device.info["power_source"] == "Battery"
    spec = device.variable(0, "battery").spec
    assert (spec.unit, spec.minimum, spec.maximum, spec.type.value) == ("%", 0, 100, "int")


def test_peer_ids_are_stable_across_restarts() -> None:
    first = Harness()
    ids = {d.key: d.peer_id for d in first.registry.devices()}
    second = Harness()
    second.store = first.store  # same store, a new daemon
    from hadaemon.bus import Bus
    from hadaemon.registry import Registry

    registry = Registry(second.clock, Bus(second.clock), first.store)
    for key, peer in ids.items():
        assert registry.peer_id_for("zigbee2mqtt", key) == peer


def test_the_simulator_respects_access_bits_and_types(tmp_path: pathlib.Path,
                                                      broker: Broker) -> None:
    config, catalog = zigbee_daemon(tmp_path, broker, zigbee={"initial_query": False})
    client = BlockingClient(broker).connect()
    client.subscribe("zigbee2mqtt/Living room temp")
    client.subscribe("test/marker")

    async def scenario(reactor: Any) -> None:
        async with zigbee_running(reactor, config, catalog) as (_daemon, _network, simulator):
            before = dict(simulator.devices["Living room temp"].state)
            for topic, payload in [
                ("zigbee2mqtt/Living room temp/set", {"temperature": 30}),  # read-only
                ("zigbee2mqtt/Hallway Hue/set", {"brightness": "bright"}),  # wrong type
                ("zigbee2mqtt/Hallway Hue/set", {"brightness": 999}),  # out of range
                ("zigbee2mqtt/Hallway Hue/set", {"colour": 1}),  # no such property
                ("zigbee2mqtt/Nobody/set", {"state": "ON"}),
            ]:
                client.publish(topic, json.dumps(payload).encode())
            await wait_until(reactor, lambda: len(simulator.warnings) >= 5)
            assert simulator.devices["Living room temp"].state == before
            text = "\n".join(simulator.warnings)
            assert "'temperature' is not settable" in text and "'bright' is not a number" in text
            assert "999 is above 254" in text and "no converter for 'colour'" in text
            # /set/<attribute> with a bare value, and an endpoint topic
            client.publish("zigbee2mqtt/Hallway Hue/set/brightness", b"120")
            client.publish("zigbee2mqtt/Garden 2ch/l2/set", b'{"state": "TOGGLE"}')
            garden = simulator.devices["Garden 2ch"]
            await wait_until(reactor, lambda: simulator.devices["Hallway Hue"].state[
                "brightness"] == 120 and garden.state["state_l2"] == "ON")
            # A barrier: the simulator answers in order, so anything it published for the
            # refused set reaches the client before this.
            await simulator.connection.publish("test/marker", b"1")
            await wait_until(reactor, client.pending, what="the marker")
            # nothing was published for the refused set
            assert [m.topic for m in client.pending()] == ["test/marker"]

    run_in_reactor(scenario, timeout=20)
    client.close()


def test_public_exports() -> None:
    import hadaemon.mqtt
    import hadaemon.zigbee.api
    import hadaemon.zigbee.compat.message_loop

    assert set(hadaemon.mqtt.__all__) >= {
        "MqttService", "MqttConnection", "MqttSettings", "Message", "MqttSubscription",
        "NotConnected", "OutboxFull", "ConnectionStopped", "InvalidTopic"}
    api = set(hadaemon.zigbee.api.__all__)
    assert {"Device", "DevicesClient", "Group", "UNKNOWN", "SettableAndQueryableToggleParameter",
            "SettableEnumParameter", "CompositeParameter", "ListenerCancellationToken"} <= api
    assert all(hasattr(hadaemon.zigbee.api, name) for name in api)
    assert set(hadaemon.zigbee.compat.message_loop.__all__) >= {
        "MessageLoop", "MessageLoopTimer", "AsyncUpdater", "AsyncCallback", "message_loop"}
