"""The registry: stable peer ids, unknown-until-reported values, writes, events, sysvars."""

from __future__ import annotations

import math
import pathlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import pytest
from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.internet.task import Clock

from hadaemon.bus import Bus, DeviceChanged, Event, VariableChanged
from hadaemon.registry import (
    UNKNOWN,
    Access,
    ChannelSpec,
    ConfirmationTimeout,
    Device,
    InvalidValue,
    ReadOnly,
    Registry,
    SystemVariableNotFound,
    UnknownChannel,
    UnknownDevice,
    UnknownVariable,
    ValueType,
    VariableSpec,
)
from hadaemon.store import Store
from tests.core.helpers import result_of


def pending(d: Deferred[Any]) -> bool:
    """True while ``d`` has no result yet (``called`` is also true when it waits on another)."""
    box: list[Any] = []

    def peek(result: Any) -> Any:
        box.append(result)
        return result

    d.addBoth(peek)
    return not box


def sync_thread(fn: Callable[[], Any]) -> Deferred[Any]:
    return maybeDeferred(fn)


class Owner:
    """A device owner that records writes and accepts them at once."""

    def __init__(self) -> None:
        self.writes: list[tuple[int, int, dict[str, Any]]] = []
        self.queries: list[tuple[int, int, list[str]]] = []

    def write_values(self, device: Device, channel: int, values: Mapping[str, Any]) -> Any:
        self.writes.append((device.peer_id, channel, dict(values)))
        return succeed(None)

    def query_values(self, device: Device, channel: int, names: Sequence[str]) -> Any:
        self.queries.append((device.peer_id, channel, list(names)))
        return None


LAMP = [
    ChannelSpec(0, [
        VariableSpec("state", ValueType.BOOL, Access.ALL),
        VariableSpec("brightness", ValueType.INT, Access.ALL, minimum=0, maximum=254),
        VariableSpec("power", ValueType.FLOAT, Access.READ),
        VariableSpec("action", ValueType.ENUM, Access.READ, values=("on", "off"), is_event=True),
    ]),
    ChannelSpec(1, [VariableSpec("state", ValueType.BOOL, Access.ALL)], name="l2"),
]


class World:
    """A registry over a real store file, restartable like the daemon."""

    def __init__(self, path: pathlib.Path) -> None:
        self.path = path
        self.clock = Clock()
        self.open()

    def open(self) -> None:
        self.store = Store(self.path, reactor=self.clock, run_in_thread=sync_thread)
        self.store.open()
        self.bus = Bus(self.clock)
        self.registry = Registry(self.clock, self.bus, self.store)
        self.registry.start()
        self.events: list[Event] = []
        self.bus.subscribe("#", self.events.append)

    def restart(self) -> None:
        self.registry.stop()
        result_of(self.store.stopService())
        self.open()

    def changes(self) -> list[tuple[str, Any]]:
        return [(e.name, e.value) for e in self.events if isinstance(e, VariableChanged)]


@pytest.fixture
def world(tmp_path: pathlib.Path) -> Iterator[World]:
    w = World(tmp_path / "state.db")
    yield w
    w.registry.stop()
    result_of(w.store.stopService())


def test_peer_ids_are_stable_across_restarts_and_never_reused(world: World) -> None:
    owner = Owner()
    lamp = world.registry.add_device("zigbee2mqtt", "0x01", "Lamp", LAMP, owner)
    sensor = world.registry.add_device("zigbee2mqtt", "0x02", "Sensor", LAMP, owner)
    other = world.registry.add_device("demo", "0x01", "Same key, other world", LAMP, owner)
    assert (lamp.peer_id, sensor.peer_id, other.peer_id) == (1, 2, 3)
    world.registry.remove_device(sensor.peer_id)
    world.restart()
    assert world.registry.devices() == []
    owner = Owner()
    new = world.registry.add_device("zigbee2mqtt", "0x03", "New", LAMP, owner)
    back = world.registry.add_device("zigbee2mqtt", "0x02", "Sensor again", LAMP, owner)
    again = world.registry.add_device("zigbee2mqtt", "0x01", "Lamp", LAMP, owner)
    assert (new.peer_id, back.peer_id, again.peer_id) == (4, 2, 1)


def test_values_unknown_until_reported_and_events_per_change(world: World) -> None:
    lamp = world.registry.add_device("z", "lamp", "Lamp", LAMP, Owner())
    assert world.registry.get_value(lamp.peer_id, 0, "state") is UNKNOWN
    world.registry.report(lamp.peer_id, 0, "state", True)
    world.registry.report(lamp.peer_id, 0, "state", True)  # no change, no event
    world.registry.report(lamp.peer_id, 0, "state", False)
    world.registry.report(lamp.peer_id, 0, "action", "on")
    world.registry.report(lamp.peer_id, 0, "action", "on")  # events: every occurrence
    assert world.changes() == [("state", True), ("state", False), ("action", "on"),
                               ("action", "on")]
    first = next(e for e in world.events if isinstance(e, VariableChanged))
    assert first.previous is UNKNOWN and first.source == "z" and first.channel == 0
    assert world.registry.get_value(lamp.peer_id, 0, "state") is False


def test_adding_renaming_and_removing_a_device_publish_events(world: World) -> None:
    owner = Owner()
    lamp = world.registry.add_device("z", "lamp", "Lamp", LAMP, owner)
    world.registry.add_device("z", "lamp", "Lamp renamed", LAMP, owner)
    world.registry.remove_device(lamp.peer_id)
    assert [(e.change, e.name) for e in world.events if isinstance(e, DeviceChanged)] == [
        ("added", "Lamp"), ("renamed", "Lamp renamed"), ("removed", "Lamp renamed")
    ]


def test_writes_go_to_the_owner_after_checks(world: World) -> None:
    owner = Owner()
    lamp = world.registry.add_device("z", "lamp", "Lamp", LAMP, owner)
    pid = lamp.peer_id
    assert result_of(world.registry.set_value(pid, 0, "brightness", 100)) is None
    assert result_of(world.registry.put_values(pid, 1, {"state": True})) is None
    assert owner.writes == [(pid, 0, {"brightness": 100}), (pid, 1, {"state": True})]
    failures = [
        (world.registry.set_value(pid, 0, "power", 3.0), ReadOnly, -6),
        (world.registry.set_value(pid, 0, "nope", 1), UnknownVariable, -5),
        (world.registry.set_value(pid, 5, "state", True), UnknownChannel, -2),
        (world.registry.set_value(99, 0, "state", True), UnknownDevice, -2),
        (world.registry.set_value(pid, 0, "brightness", 300), InvalidValue, -5),
        (world.registry.set_value(pid, 0, "brightness", "max"), InvalidValue, -5),
        (world.registry.put_values(pid, 0, {"state": True, "power": 1.0}), ReadOnly, -6),
    ]
    for d, error, code in failures:
        failure = result_of(d)
        assert failure.check(error), failure
        assert failure.value.fault_code == code
    assert len(owner.writes) == 2  # nothing written by a failed check


def test_confirmed_write_waits_for_the_device(world: World) -> None:
    lamp = world.registry.add_device("z", "lamp", "Lamp", LAMP, Owner())
    d = world.registry.set_value(lamp.peer_id, 0, "brightness", 50, confirm=True, timeout=5)
    assert pending(d)
    world.registry.report(lamp.peer_id, 0, "brightness", 49)  # not what was asked
    assert pending(d)
    world.registry.report(lamp.peer_id, 0, "brightness", 50)
    assert result_of(d) is None
    late = world.registry.set_value(lamp.peer_id, 0, "state", True, confirm=True, timeout=5)
    world.clock.advance(5.1)
    failure = result_of(late)
    assert failure.check(ConfirmationTimeout)
    assert "did not confirm" in failure.getErrorMessage()


def test_device_address_on_the_bus(world: World) -> None:
    owner = Owner()
    lamp = world.registry.add_device("z", "lamp", "Lamp", LAMP, owner)
    ok = world.bus.send(f"device:{lamp.peer_id}", {"brightness": 10})
    channel = world.bus.send(f"device:{lamp.peer_id}/1", {"state": False})
    ambiguous = world.bus.send(f"device:{lamp.peer_id}", {"state": True})
    bad = world.bus.send(f"device:{lamp.peer_id}", "not a table")
    world.clock.advance(0)
    assert result_of(ok) is None and result_of(channel) is None
    assert owner.writes == [(lamp.peer_id, 0, {"brightness": 10}), (lamp.peer_id, 1,
                                                                     {"state": False})]
    assert "name the channel" in result_of(ambiguous).getErrorMessage()
    assert result_of(bad).check(InvalidValue)


def test_query_asks_the_owner_for_queryable_values(world: World) -> None:
    owner = Owner()
    lamp = world.registry.add_device("z", "lamp", "Lamp", LAMP, owner)
    assert result_of(world.registry.query(lamp.peer_id, 0)) is None
    assert owner.queries == [(lamp.peer_id, 0, ["state", "brightness"])]


def test_system_variables_persist_and_publish(world: World) -> None:
    reg = world.registry
    with pytest.raises(SystemVariableNotFound) as info:
        reg.get_system_variable("mode")
    assert info.value.fault_code == -1
    reg.set_system_variable("mode", "away")
    reg.set_system_variable("counter", 10**30)
    world.bus.send("device:0", {"mode": "home"})
    world.clock.advance(0)
    change = [e for e in world.events if isinstance(e, VariableChanged)][-1]
    assert (change.source, change.peer_id, change.channel, change.name, change.value,
            change.previous) == ("system", 0, -1, "mode", "home", "away")
    reg.set_system_variable("gone", 1)
    reg.delete_system_variable("gone")
    with pytest.raises(TypeError):
        reg.set_system_variable("bad", {1, 2})  # outside the value model
    world.restart()
    assert world.registry.system_variables() == {"mode": "home", "counter": 10**30}
    assert world.registry.get_value(0, -1, "mode") == "home"


def test_last_known_values_survive_restart_but_value_stays_unknown(world: World) -> None:
    lamp = world.registry.add_device("z", "lamp", "Lamp", LAMP, Owner())
    world.registry.report(lamp.peer_id, 0, "brightness", 77)
    world.registry.report(lamp.peer_id, 0, "action", "on")
    world.clock.advance(1.0)  # the batched flush
    world.restart()
    lamp = world.registry.add_device("z", "lamp", "Lamp", LAMP, Owner())
    var = lamp.variable(0, "brightness")
    assert var.value is UNKNOWN and var.last_known == 77
    assert lamp.variable(0, "action").last_known is UNKNOWN  # events are not state


def test_subscribe_filters_by_peer_and_name_across_channels(world: World) -> None:
    lamp = world.registry.add_device("z", "lamp", "Lamp", LAMP, Owner())
    other = world.registry.add_device("z", "other", "Other", LAMP, Owner())
    got: list[tuple[int, str]] = []
    world.registry.subscribe(lambda e: got.append((e.peer_id, e.name)), peer_id=lamp.peer_id,
                             name="state")
    world.registry.report(lamp.peer_id, 0, "state", True)
    world.registry.report(lamp.peer_id, 0, "brightness", 3)
    world.registry.report(other.peer_id, 0, "state", True)
    world.registry.report(lamp.peer_id, 1, "state", True)
    assert got == [(lamp.peer_id, "state"), (lamp.peer_id, "state")]


def test_a_change_is_what_the_value_model_calls_not_the_same(world: World) -> None:
    """``hadaemon.values.same``: bool is no number, numbers compare by value, NaN is NaN."""
    lamp = world.registry.add_device("z", "lamp", "Lamp", [ChannelSpec(0, [VariableSpec("v")])],
                                     Owner())
    for value in (1, True, 1.0, 1, math.nan, math.nan, [1], (1,), [True], [1.0]):
        world.registry.report(lamp.peer_id, 0, "v", value)
    assert world.changes() == [("v", 1), ("v", True), ("v", 1.0), ("v", math.nan),
                               ("v", [1]), ("v", [True]), ("v", [1.0])]
    assert world.registry.get_value(lamp.peer_id, 0, "v") == [1.0]


def test_a_write_is_confirmed_by_the_same_number_and_not_by_a_bool(world: World) -> None:
    # zigbee2mqtt speaks JSON: a setpoint written as 21.0 comes back as 21.
    spec = [ChannelSpec(0, [VariableSpec("setpoint", ValueType.FLOAT, Access.ALL),
                            VariableSpec("mode", ValueType.ENUM, Access.ALL, values=(0, 1))])]
    device = world.registry.add_device("z", "trv", "TRV", spec, Owner())
    d = world.registry.set_value(device.peer_id, 0, "setpoint", 21.0, confirm=True, timeout=5)
    world.registry.report(device.peer_id, 0, "setpoint", 21)
    assert result_of(d) is None
    mode = world.registry.set_value(device.peer_id, 0, "mode", 1, confirm=True, timeout=5)
    world.registry.report(device.peer_id, 0, "mode", True)  # True is not 1
    assert pending(mode)
    world.registry.report(device.peer_id, 0, "mode", 1)
    assert result_of(mode) is None
    refused = world.registry.set_value(device.peer_id, 0, "mode", True)  # nor for an enum
    assert result_of(refused).check(InvalidValue)


class RefusingOwner(Owner):
    """Accepts writes later, or refuses them (the adapter lost its wire)."""

    def __init__(self) -> None:
        super().__init__()
        self.answers: list[Deferred[None]] = []

    def write_values(self, device: Device, channel: int, values: Mapping[str, Any]) -> Any:
        self.writes.append((device.peer_id, channel, dict(values)))
        answer: Deferred[None] = Deferred()
        self.answers.append(answer)
        return answer


def test_reads_see_an_accepted_write_until_the_device_confirms(world: World) -> None:
    lamp = world.registry.add_device("z", "lamp", "Lamp", LAMP, Owner())
    pid, registry = lamp.peer_id, world.registry
    registry.report(pid, 0, "brightness", 10)
    assert result_of(registry.set_value(pid, 0, "brightness", 20)) is None
    # Read your own write: the pending value, not the last confirmed one.
    assert registry.get_value(pid, 0, "brightness") == 20
    assert registry.variable(pid, 0, "brightness").value == 10  # what the device confirmed
    assert world.changes() == [("brightness", 10)]  # events carry confirmed values only
    # A stale report still in flight does not undo the write for readers...
    registry.report(pid, 0, "brightness", 11)
    assert registry.get_value(pid, 0, "brightness") == 20
    # ...the confirmation ends the pending write.
    registry.report(pid, 0, "brightness", 20)
    assert registry.variable(pid, 0, "brightness").pending is UNKNOWN
    assert world.changes() == [("brightness", 10), ("brightness", 11), ("brightness", 20)]
    # A write the device never confirms counts for confirm_timeout, then reads fall back.
    registry.set_value(pid, 0, "brightness", 30)
    world.clock.advance(registry.confirm_timeout)
    assert registry.get_value(pid, 0, "brightness") == 30
    world.clock.advance(0.001)
    assert registry.get_value(pid, 0, "brightness") == 20


def test_a_refused_write_is_not_read_back(world: World) -> None:
    owner = RefusingOwner()
    lamp = world.registry.add_device("z", "lamp", "Lamp", LAMP, owner)
    pid, registry = lamp.peer_id, world.registry
    registry.report(pid, 0, "brightness", 10)
    first = registry.set_value(pid, 0, "brightness", 20)
    second = registry.set_value(pid, 0, "brightness", 30)
    assert registry.get_value(pid, 0, "brightness") == 30
    owner.answers[0].errback(RuntimeError("the broker went away"))
    assert result_of(first).check(RuntimeError)
    assert registry.get_value(pid, 0, "brightness") == 30  # the later write still stands
    owner.answers[1].errback(RuntimeError("the broker went away"))
    assert result_of(second).check(RuntimeError)
    assert registry.get_value(pid, 0, "brightness") == 10
    # Event variables hold no pending value: an event is not a state to read back.
    assert registry.variable(pid, 0, "action").pending is UNKNOWN


def test_a_report_after_the_stale_window_ends_a_pending_write(world: World) -> None:
    """A report of another value within ``stale_window`` of the write was in flight; a
    later one is the device's own word (a dimmer turned, a value clamped)."""
    lamp = world.registry.add_device("z", "lamp", "Lamp", LAMP, Owner())
    pid, registry = lamp.peer_id, world.registry
    registry.report(pid, 0, "brightness", 10)
    registry.set_value(pid, 0, "brightness", 200)
    world.clock.advance(registry.stale_window / 2)
    registry.report(pid, 0, "brightness", 11)
    assert registry.get_value(pid, 0, "brightness") == 200
    world.clock.advance(registry.stale_window / 2)
    registry.report(pid, 0, "brightness", 254)
    assert registry.get_value(pid, 0, "brightness") == 254
    assert registry.variable(pid, 0, "brightness").pending is UNKNOWN


def test_an_owners_own_writes_are_held_like_any_write(world: World) -> None:
    """``hold_pending`` (a zigbee automation's set) is the pending write of put_values:
    read back, confirmed by the same report, dropped when the owner loses it."""
    spec = [ChannelSpec(0, [
        VariableSpec("level", ValueType.INT, Access.ALL),
        VariableSpec("identify", ValueType.STRING, Access.WRITE),
        VariableSpec("action", ValueType.STRING, Access.READ, is_event=True),
    ])]
    device = world.registry.add_device("z", "dev", "Dev", spec, Owner())
    registry, level = world.registry, device.variable(0, "level")
    registry.report_to(level, 1)
    assert registry.hold_pending(level, 5)
    assert registry.get_value(device.peer_id, 0, "level") == 5
    registry.drop_pending(level, 6)  # not the value held: a later write stands
    assert level.pending == 5
    registry.report_to(level, 5.0)  # confirmed (the same number)
    assert level.pending is UNKNOWN and world.changes() == [("level", 1), ("level", 5.0)]
    held = 7
    registry.hold_pending(level, held)
    registry.drop_pending(level, held)  # its /set was lost
    assert registry.current(level) == 5.0
    # Nothing would ever confirm a write-only or event variable: nothing is held...
    assert not registry.hold_pending(device.variable(0, "identify"), "now")
    assert not registry.hold_pending(device.variable(0, "action"), "x")
    # ...nor a write of the confirmed value, which ends one pending.
    registry.hold_pending(level, 9)
    assert not registry.hold_pending(level, 5) and level.pending is UNKNOWN


def test_forgetting_a_value_leaves_nothing_to_read(world: World) -> None:
    lamp = world.registry.add_device("z", "lamp", "Lamp", LAMP, Owner())
    registry, var = world.registry, lamp.variable(0, "brightness")
    registry.report_to(var, 10)
    registry.set_value(lamp.peer_id, 0, "brightness", 20)
    registry.forget(var)
    assert registry.current(var) is UNKNOWN and var.pending is UNKNOWN
    assert world.changes() == [("brightness", 10)]  # no event: no value to carry
    registry.report_to(var, 10)
    assert world.changes() == [("brightness", 10), ("brightness", 10)]


def test_an_owner_that_confirms_at_once_leaves_nothing_pending(world: World) -> None:
    registry = world.registry

    class Confirming(Owner):
        def write_values(self, device: Device, channel: int, values: Mapping[str, Any]) -> Any:
            registry.report_many(device.peer_id, channel, values)
            return super().write_values(device, channel, values)

    lamp = registry.add_device("z", "lamp", "Lamp", LAMP, Confirming())
    d = registry.set_value(lamp.peer_id, 0, "brightness", 30, confirm=True)
    assert result_of(d) is None
    assert lamp.variable(0, "brightness").pending is UNKNOWN
    registry.report(lamp.peer_id, 0, "brightness", 31)  # at once: no write to mask it
    assert registry.get_value(lamp.peer_id, 0, "brightness") == 31
