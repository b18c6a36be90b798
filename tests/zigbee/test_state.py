"""One owner of device state: the registry holds what a zigbee device reported and what
was asked of it, whichever world asked (an automation, a node or service through the
registry); the adapter keeps only what is on its way to the broker."""

from __future__ import annotations

import pathlib
from typing import Any

from twisted.internet.defer import Deferred, fail

from hadaemon.sentinels import UNKNOWN
from hadaemon.testing import Broker, run_in_reactor, wait_until
from hadaemon.zigbee.devices import DynamicDevice, attribute_names
from hadaemon.zigbee.naming import Namer
from hadaemon.zigbee.testkit import FakeConnection

from .util import Harness, zigbee_daemon, zigbee_running


def brightness(h: Harness, name: str = "Hallway Hue") -> Any:
    return h.registry.variable(h.peer(name), 0, "brightness")


def test_an_automation_set_is_a_pending_write_in_the_registry() -> None:
    h = Harness()
    hue = h.view("Hallway Hue")
    h.deliver("zigbee2mqtt/Hallway Hue", {"brightness": 10})
    var = brightness(h)
    hue.brightness.set(200)
    # Every world reads the automation's write: it is the registry's pending write.
    assert (var.value, var.pending) == (10, 200)
    assert h.registry.get_value(h.peer("Hallway Hue"), 0, "brightness") == 200
    assert hue.brightness.get() == 200 and hue.brightness.get_reported_raw() == 10
    h.turn()
    assert h.take() == [("zigbee2mqtt/Hallway Hue/set", {"brightness": 200})]
    # The device's confirming report ends it; events carry confirmed values only.
    h.deliver("zigbee2mqtt/Hallway Hue", {"brightness": 200})
    assert (var.value, var.pending) == (200, UNKNOWN)
    assert [e.value for e in h.events if e.name == "brightness"] == [10, 200]


def test_a_registry_write_is_seen_by_automations_and_tells_their_listeners() -> None:
    h = Harness()
    hue = h.view("Hallway Hue")
    seen: list[Any] = []
    hue.brightness.add_listener(lambda: seen.append(hue.brightness.get()))
    h.deliver("zigbee2mqtt/Hallway Hue", {"brightness": 10})
    # A node's or a service's write: a message to device:<peer>, through the bus.
    sent = h.bus.send(f"device:{h.peer('Hallway Hue')}", {"brightness": 50})
    h.turn()
    assert h.take() == [("zigbee2mqtt/Hallway Hue/set", {"brightness": 50})]
    assert sent.called and seen == [10, 50]  # the listener ran before the flush
    assert hue.brightness.get() == 50 and brightness(h).pending == 50
    h.deliver("zigbee2mqtt/Hallway Hue", {"brightness": 50})
    assert brightness(h).pending is UNKNOWN and seen == [10, 50]  # confirmed: no change


def test_both_worlds_writes_end_the_same_way() -> None:
    """A confirmation waits in one place, whoever wrote: a write from an automation is
    confirmed by the report that confirms a registry write of the same value."""
    h = Harness()
    hue = h.view("Hallway Hue")
    peer = h.peer("Hallway Hue")
    confirmed: list[Any] = []
    h.registry.set_value(peer, 0, "brightness", 80, confirm=True, timeout=5).addBoth(
        confirmed.append)
    h.turn()
    hue.brightness.set(120)  # the automation changes its mind in a later turn
    h.turn()
    assert [p for _t, p in h.take()] == [{"brightness": 80}, {"brightness": 120}]
    assert brightness(h).pending == 120
    h.deliver("zigbee2mqtt/Hallway Hue", {"brightness": 80})  # the first, in flight
    assert confirmed == [None]  # the registry write is confirmed...
    assert hue.brightness.get() == 120  # ...and reads still see the later write
    h.deliver("zigbee2mqtt/Hallway Hue", {"brightness": 120})
    assert brightness(h).pending is UNKNOWN and hue.brightness.get() == 120


def test_a_stale_report_keeps_the_write_a_later_one_ends_it() -> None:
    h = Harness()
    hue = h.view("Hallway Hue")
    h.deliver("zigbee2mqtt/Hallway Hue", {"brightness": 10})
    seen: list[Any] = []
    hue.brightness.add_listener(lambda: seen.append(hue.brightness.get()))
    hue.brightness.set(200)
    h.turn()
    # A report sent before the /set reached the lamp: in flight, not the lamp's answer.
    h.deliver("zigbee2mqtt/Hallway Hue", {"brightness": 11})
    assert hue.brightness.get() == 200 and brightness(h).value == 11
    # Later than any report in flight: the lamp's own word (someone turned a dimmer).
    h.clock.advance(h.registry.stale_window)
    h.deliver("zigbee2mqtt/Hallway Hue", {"brightness": 90})
    assert hue.brightness.get() == 90 and brightness(h).pending is UNKNOWN
    assert seen == [200, 90]


def test_an_unconfirmed_write_times_out_and_is_sent_again() -> None:
    h = Harness()
    hue = h.view("Hallway Hue")
    h.deliver("zigbee2mqtt/Hallway Hue", {"brightness": 10})
    hue.brightness.set(200)
    h.turn()
    h.clock.advance(h.registry.confirm_timeout / 2)
    hue.brightness.set(200)  # what the lamp was asked for: nothing to send
    h.turn()
    assert [p for _t, p in h.take()] == [{"brightness": 200}]
    h.clock.advance(h.registry.confirm_timeout + 0.001)
    assert hue.brightness.get() == 10  # never confirmed: reads fall back
    hue.brightness.set(200)
    h.turn()
    assert h.take() == [("zigbee2mqtt/Hallway Hue/set", {"brightness": 200})]


class RefusingConnection(FakeConnection):
    """Refuses publishes while disconnected, as the real connection does at QoS 0."""

    def publish(self, topic: str, payload: bytes | str, *, qos: int = 1,
                retain: bool = False) -> Deferred[None]:
        if not self.connected:
            return fail(ConnectionError(f"not connected: {topic} dropped"))
        return super().publish(topic, payload, qos=qos, retain=retain)


def test_a_lost_set_ends_the_pending_write_of_either_world() -> None:
    h = Harness(connection=RefusingConnection)
    hue = h.view("Hallway Hue")
    peer = h.peer("Hallway Hue")
    h.deliver("zigbee2mqtt/Hallway Hue", {"brightness": 10, "color_temp": 300})
    h.connection.disconnect()
    seen: list[Any] = []
    hue.brightness.add_listener(lambda: seen.append(hue.brightness.get()))
    hue.brightness.set(200)
    outcome: list[Any] = []
    h.registry.set_value(peer, 0, "color_temp", 400).addBoth(outcome.append)
    assert hue.brightness.get() == 200 and hue.color_temp.get() == 400
    h.turn()
    assert h.take() == []
    # The registry's write fails for its writer, the automation's is forgotten: reads
    # fall back to what the lamp confirmed.
    assert outcome[0].check(ConnectionError)
    assert hue.brightness.get() == 10 and hue.color_temp.get() == 300
    assert brightness(h).pending is UNKNOWN
    assert seen == [200, 10]  # told of the set, then that it did not happen


def test_a_null_report_forgets_the_value_and_what_was_asked() -> None:
    h = Harness()
    hue = h.view("Hallway Hue")
    hue.effect.set("blink")
    h.turn()
    h.deliver("zigbee2mqtt/Hallway Hue", {"effect": "blink"})
    var = h.registry.variable(h.peer("Hallway Hue"), 0, "effect")
    assert var.value == "blink"
    h.deliver("zigbee2mqtt/Hallway Hue", {"effect": None})  # the effect ended
    assert (var.value, var.pending) == (UNKNOWN, UNKNOWN)
    assert hue.effect.get() is UNKNOWN


def test_composite_keys_and_toggles_are_held_decoded() -> None:
    h = Harness()
    bulb, hue = h.view("Color bulb"), h.view("Hallway Hue")
    h.deliver("zigbee2mqtt/Color bulb", {"color": {"x": 0.1, "y": 0.2}})
    h.deliver("zigbee2mqtt/Hallway Hue", {"state": "ON"})
    bulb.color.x.set(0.3)
    hue.state.toggle()  # zigbee2mqtt's TOGGLE: held as the flipped value
    color = h.registry.variable(h.peer("Color bulb"), 0, "color")
    state = h.registry.variable(h.peer("Hallway Hue"), 0, "state")
    assert color.pending == {"x": 0.3, "y": 0.2} and state.pending is False
    assert hue.state.get_raw() == "OFF" and hue.state.get_reported_raw() == "ON"
    h.turn()
    assert sorted(h.take()) == [("zigbee2mqtt/Color bulb/set", {"color": {"x": 0.3, "y": 0.2}}),
                                ("zigbee2mqtt/Hallway Hue/set", {"state": "TOGGLE"})]
    h.deliver("zigbee2mqtt/Color bulb", {"color": {"x": 0.3}})  # a part: merged
    assert color.value == {"x": 0.3, "y": 0.2} and color.pending is UNKNOWN


def test_writes_of_both_worlds_are_confirmed_by_the_device_through_a_broker(
        tmp_path: pathlib.Path, broker: Broker) -> None:
    """Real parts: the daemon's MQTT connection, a broker, the simulator echoing state.
    An automation's set and a registry write are pending in the registry until the
    device's report confirms them."""
    config, catalog = zigbee_daemon(tmp_path, broker, zigbee={"initial_query": False})

    async def scenario(reactor: Any) -> None:
        async with zigbee_running(reactor, config, catalog) as (daemon, network, _sim):
            registry = daemon.registry
            link = network.find("Hallway Hue")
            lamp = DynamicDevice(link, attribute_names(link.feature_list(), Namer()))
            network.attach_view(lamp)
            var = registry.variable(link.peer_id, 0, "brightness")
            lamp.brightness.set(77)  # an automation's set
            assert var.pending == 77 and registry.get_value(link.peer_id, 0, "brightness") == 77
            await wait_until(reactor, lambda: var.value == 77, what="the lamp's report")
            assert var.pending is UNKNOWN
            # a node's or service's write, waiting for the same kind of confirmation
            await registry.set_value(link.peer_id, 0, "brightness", 12, confirm=True,
                                     timeout=5)
            assert (var.value, var.pending) == (12, UNKNOWN) and lamp.brightness.get() == 12

    run_in_reactor(scenario, timeout=30)
