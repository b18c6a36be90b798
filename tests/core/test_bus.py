"""The bus contract: addressing, ordering, backpressure, isolation, events."""

from __future__ import annotations

import sys
import threading
from typing import Any

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from hadaemon.aio import UserCodeExit
from hadaemon.bus import (
    Address,
    Bus,
    Completion,
    DestinationGone,
    EndpointExists,
    ErrorEvent,
    Event,
    InvalidAddress,
    InvalidTopic,
    Level,
    Lifecycle,
    QueueFull,
    StatusUpdate,
    UnknownDestination,
    VariableChanged,
    WrongThread,
)
from hadaemon.testing.logs import capture_logs
from hadaemon.testing.reactors import run_in_reactor
from tests.core.helpers import result_of


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def bus(clock: Clock) -> Bus:
    return Bus(clock)


# -- addresses ------------------------------------------------------------------------


def test_address_scheme() -> None:
    a = Address.parse("node:n1/0")
    assert (a.kind, a.id, a.path, a.endpoint) == ("node", "n1", "0", "node:n1")
    s = Address.parse("service:readgpio_py/some/action")
    assert (s.id, s.path) == ("readgpio_py", "some/action")
    d = Address.parse("device:12")
    assert (d.kind, d.id, d.path, str(d)) == ("device", "12", "", "device:12")
    built = Address("service", "x_py", "act")
    assert built.endpoint == "service:x_py" and built == Address.parse("service:x_py/act")
    assert repr(built) == "Address(kind='service', id='x_py', path='act')"
    assert len({built, Address.parse("service:x_py/act")}) == 1
    for bad in ["node", "node:", ":x", "Node:x", "node:/x"]:
        with pytest.raises(InvalidAddress):
            Address.parse(bad)


# -- messages -------------------------------------------------------------------------


def test_delivery_happens_in_a_later_turn_and_returns_the_result(bus: Bus, clock: Clock) -> None:
    got: list[tuple[str, Any]] = []

    def handler(address: Address, message: Any) -> str:
        got.append((str(address), message))
        return f"ok {message}"

    bus.register("service:echo_py", handler)
    d = bus.send("service:echo_py/act", 1)
    assert got == [] and not d.called  # the sender never runs the receiver's code
    clock.advance(0)
    assert got == [("service:echo_py/act", 1)]
    assert result_of(d) == "ok 1"


def test_flush_delivers_now_what_waits_for_the_next_turn(bus: Bus, clock: Clock) -> None:
    # What an adapter's read posted is delivered at the end of the read (Bus.flush), not
    # a turn later; the drain's hooks run after it; a handler's own flush does nothing.
    got: list[Any] = []
    hooks: list[list[Any]] = []

    def handler(address: Address, message: Any) -> None:
        got.append(message)
        bus.flush()  # inside the drain: no re-entrancy
        if message == 1:
            bus.post("service:echo_py/again", "nested")

    bus.register("service:echo_py", handler)
    remove = bus.after_drain(lambda: hooks.append(list(got)))
    bus.flush()  # nothing waits: nothing happens
    assert got == [] and hooks == []
    bus.post("service:echo_py/act", 1)
    bus.post("service:echo_py/act", 2)
    assert got == []
    bus.flush()
    assert got == [1, 2] and hooks == [[1, 2]]  # the hook after the whole drain
    clock.advance(0)  # the message posted meanwhile, in the next turn as before
    assert got == [1, 2, "nested"] and hooks[-1] == [1, 2, "nested"]
    remove()
    bus.post("service:echo_py/act", 3)
    clock.advance(0)
    assert got[-1] == 3 and hooks[-1] == [1, 2, "nested"]


def test_a_failing_drain_hook_is_logged_and_the_bus_goes_on(bus: Bus, clock: Clock) -> None:
    got: list[Any] = []
    bus.register("service:echo_py", lambda address, message: got.append(message))

    def broken() -> None:
        raise RuntimeError("hook broke")

    bus.after_drain(broken)
    with capture_logs() as logs:
        bus.post("service:echo_py/act", 1)
        clock.advance(0)
        bus.post("service:echo_py/act", 2)
        clock.advance(0)
    assert got == [1, 2]
    assert "after-drain hook" in logs.text() and "broken" in logs.text()


def test_one_at_a_time_and_in_order(bus: Bus, clock: Clock) -> None:
    pending: list[Deferred[None]] = []
    seen: list[int] = []

    def handler(address: Address, message: int) -> Deferred[None]:
        seen.append(message)
        d: Deferred[None] = Deferred()
        pending.append(d)
        return d

    bus.register("node:b", handler)
    sends = [bus.send(f"node:b/{i % 2}", i) for i in range(5)]
    clock.advance(0)
    assert seen == [0]
    for expected in range(1, 5):
        pending[-1].callback(None)
        clock.advance(0)
        assert seen == list(range(expected + 1))
    pending[-1].callback(None)
    assert all(d.called for d in sends)


def test_declared_concurrency(bus: Bus, clock: Clock) -> None:
    in_flight: list[Deferred[None]] = []

    def handler(address: Address, message: int) -> Deferred[None]:
        d: Deferred[None] = Deferred()
        in_flight.append(d)
        return d

    bus.register("service:par_py", handler, concurrency=3)
    for i in range(5):
        bus.send("service:par_py/x", i)
    clock.advance(0)
    assert len(in_flight) == 3
    in_flight[0].callback(None)
    clock.advance(0)
    assert len(in_flight) == 4


def test_unknown_destination_and_bad_address(bus: Bus) -> None:
    failure = result_of(bus.send("node:nobody/0", {}))
    assert failure.check(UnknownDestination)
    assert "node:nobody/0" in failure.getErrorMessage()
    assert result_of(bus.send("garbage", {})).check(InvalidAddress)


def test_full_queue_fails_fast(bus: Bus, clock: Clock) -> None:
    bus.register("node:slow", lambda a, m: Deferred(), queue_size=2)
    first = [bus.send("node:slow/0", i) for i in range(2)]
    clock.advance(0)  # one taken into the handler, one waiting
    assert not any(d.called for d in first)
    bus.send("node:slow/0", 2)  # fills the queue again
    overflow = result_of(bus.send("node:slow/0", 3))
    assert overflow.check(QueueFull)
    assert overflow.value.size == 2


def test_handler_exception_reaches_sender_is_logged_and_next_message_flows(
    bus: Bus, clock: Clock
) -> None:
    def handler(address: Address, message: str) -> str:
        if message == "bad":
            raise ValueError("broken handler")
        return message

    bus.register("service:fragile_py", handler, name="fragile service")
    with capture_logs() as logs:
        bad = bus.send("service:fragile_py/x", "bad")
        good = bus.send("service:fragile_py/x", "good")
        clock.advance(0)
    assert result_of(bad).check(ValueError)
    assert result_of(good) == "good"
    text = logs.text()
    assert "fragile service" in text and "broken handler" in text


def test_completion_reports_its_outcome_and_holds_the_endpoint_until_then(
    bus: Bus, clock: Clock
) -> None:
    class Later(Completion):
        __slots__ = ("listener",)

        def when_done(self, callback: Any, *args: Any) -> None:
            self.listener = (callback, args)

    pending: list[Later] = []

    def handler(address: Address, message: str) -> Later:
        pending.append(Later())
        return pending[-1]

    bus.register("service:later_py", handler, name="later service")
    first = bus.send("service:later_py/x", "a")
    second = bus.send("service:later_py/x", "b")
    clock.advance(0)
    assert len(pending) == 1 and not first.called  # one at a time: the first is pending
    callback, args = pending[0].listener
    callback("done", *args)
    assert result_of(first) == "done"
    clock.advance(0)
    assert len(pending) == 2
    callback, args = pending[1].listener
    with capture_logs() as logs:
        callback(Failure(ValueError("late failure")), *args)
    assert result_of(second).check(ValueError)
    assert "later service" in logs.text() and "late failure" in logs.text()


def test_handler_calling_sys_exit_does_not_stop_anything(bus: Bus, clock: Clock) -> None:
    def quitter(address: Address, message: Any) -> None:
        sys.exit(4)

    bus.register("node:quitter", quitter)
    bus.register("node:fine", lambda a, m: "alive")
    with capture_logs() as logs:
        d1 = bus.send("node:quitter/0", None)
        d2 = bus.send("node:fine/0", None)
        clock.advance(0)
    failure = result_of(d1)
    assert failure.check(UserCodeExit) and failure.value.code == 4
    assert result_of(d2) == "alive"
    assert "node:quitter" in logs.text()


def test_async_handler_on_fake_clock(bus: Bus, clock: Clock) -> None:
    gate: Deferred[int] = Deferred()

    async def handler(address: Address, message: int) -> int:
        return message + await gate

    bus.register("service:coro_py", handler)
    d = bus.send("service:coro_py/x", 1)
    clock.advance(0)
    assert not d.called
    gate.callback(41)
    assert result_of(d) == 42


def test_unregister_fails_queued_messages(bus: Bus, clock: Clock) -> None:
    reg = bus.register("node:gone", lambda a, m: Deferred())
    bus.send("node:gone/0", 1)
    clock.advance(0)
    queued = bus.send("node:gone/0", 2)
    reg.unregister()
    assert result_of(queued).check(DestinationGone)
    assert result_of(bus.send("node:gone/0", 3)).check(UnknownDestination)


def test_duplicate_endpoint(bus: Bus) -> None:
    bus.register("node:x", lambda a, m: None)
    with pytest.raises(EndpointExists):
        bus.register("node:x", lambda a, m: None)
    with pytest.raises(InvalidAddress):
        bus.register("node:y/0", lambda a, m: None)


def test_post_logs_undeliverable(bus: Bus) -> None:
    with capture_logs() as logs:
        bus.post("service:nobody_py/act", {})
    assert "not delivered" in logs.text() and "service:nobody_py/act" in logs.text()


def test_bus_is_reactor_thread_only(bus: Bus) -> None:
    errors: list[BaseException] = []

    def other() -> None:
        for call in (lambda: bus.send("node:x/0", 1), lambda: bus.publish(Lifecycle("a", "b"))):
            try:
                call()
            except WrongThread as exc:
                errors.append(exc)

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    assert len(errors) == 2
    assert "reactor thread" in str(errors[0])


# -- events ---------------------------------------------------------------------------


def change(name: str = "temperature", value: Any = 21.5, source: str = "zigbee2mqtt",
           peer_id: int = 7) -> VariableChanged:
    return VariableChanged(source, peer_id, 0, name, value, 1.0)


def test_topics_and_patterns(bus: Bus) -> None:
    got: dict[str, list[str]] = {}
    patterns = ["variable/#", "variable/zigbee2mqtt/+/+/temperature", "variable/+/8/#",
                "lifecycle/daemon/started", "#", "error/+/error"]
    for pattern in patterns:
        bus.subscribe(pattern, lambda e, p=pattern: got.setdefault(p, []).append(e.topic))
    bus.publish(change())
    bus.publish(change("a/b", peer_id=8))
    bus.publish(Lifecycle("daemon", Lifecycle.STARTED))
    bus.publish(ErrorEvent("node:n1", "bad", Level.ERROR))
    bus.publish(StatusUpdate("nodes", "n1", {"text": "ok"}))
    assert got["variable/#"] == ["variable/zigbee2mqtt/7/0/temperature",
                                 "variable/zigbee2mqtt/8/0/a%2Fb"]
    assert got["variable/zigbee2mqtt/+/+/temperature"] == ["variable/zigbee2mqtt/7/0/temperature"]
    assert got["variable/+/8/#"] == ["variable/zigbee2mqtt/8/0/a%2Fb"]
    assert got["lifecycle/daemon/started"] == ["lifecycle/daemon/started"]
    assert got["error/+/error"] == ["error/node:n1/error"]
    assert len(got["#"]) == 5


def test_invalid_patterns(bus: Bus) -> None:
    for bad in ["a/#/b", "a+/b", ""]:
        with pytest.raises(InvalidTopic):
            bus.subscribe(bad, lambda e: None)


def test_event_type_filter(bus: Bus) -> None:
    got: list[Event] = []
    bus.subscribe("#", got.append, event_type=Lifecycle)
    bus.publish(change())
    bus.publish(Lifecycle("x", "y"))
    assert [type(e) for e in got] == [Lifecycle]


def test_raising_subscribers_are_isolated(bus: Bus) -> None:
    got: list[str] = []

    def boom(event: Event) -> None:
        raise RuntimeError("subscriber exploded")

    def leave(event: Event) -> None:
        sys.exit(1)

    bus.subscribe("#", lambda e: got.append("first"))
    bus.subscribe("#", boom, name="the exploding one")
    bus.subscribe("#", leave, name="the leaving one")
    bus.subscribe("#", lambda e: got.append("last"))
    with capture_logs() as logs:
        bus.publish(change())
    assert got == ["first", "last"]
    text = logs.text()
    assert "the exploding one" in text and "subscriber exploded" in text
    assert "the leaving one" in text and "sys.exit(1)" in text


def test_nested_publish_keeps_order_for_everyone(bus: Bus) -> None:
    seen_a: list[str] = []
    seen_b: list[str] = []

    def a(event: Event) -> None:
        seen_a.append(event.topic)
        if isinstance(event, VariableChanged) and event.name == "first":
            bus.publish(change("second"))

    bus.subscribe("#", a)
    bus.subscribe("#", lambda e: seen_b.append(e.topic))
    bus.publish(change("first"))
    expected = ["variable/zigbee2mqtt/7/0/first", "variable/zigbee2mqtt/7/0/second"]
    assert seen_a == expected and seen_b == expected


def test_cancel_during_dispatch_skips_nobody(bus: Bus) -> None:
    got: list[str] = []
    subs = []

    def once(event: Event) -> None:
        got.append("once")
        subs[0].cancel()

    subs.append(bus.subscribe("#", once))
    bus.subscribe("#", lambda e: got.append("second"))
    bus.subscribe("#", lambda e: got.append("third"))
    bus.publish(change())
    bus.publish(change())
    assert got == ["once", "second", "third", "second", "third"]


def test_async_subscriber_failure_logged(bus: Bus) -> None:
    async def bad(event: Event) -> None:
        raise KeyError("late failure")

    bus.subscribe("#", bad, name="async subscriber")
    with capture_logs() as logs:
        bus.publish(change())
    assert "async subscriber" in logs.text()


def test_async_handler_in_real_reactor_awaits_asyncio_and_deferreds() -> None:
    import asyncio

    from twisted.internet.task import deferLater

    async def scenario(reactor: Any) -> Any:
        bus = Bus(reactor)

        async def handler(address: Address, message: int) -> int:
            await asyncio.sleep(0.001)
            value: int = await deferLater(reactor, 0.001, lambda: 2)
            return message * value

        bus.register("service:mixed_py", handler)
        return await bus.send("service:mixed_py/x", 21)

    assert run_in_reactor(scenario, timeout=5) == 42


def test_an_error_event_topic_carries_its_source_and_level() -> None:
    assert ErrorEvent("x", "m", Level.WARNING).topic == "error/x/warning"
    assert ErrorEvent("node:a", "m", Level.ERROR).topic == "error/node:a/error"


def test_handler_returning_its_own_task_in_real_reactor() -> None:
    import asyncio

    async def scenario(reactor: Any) -> tuple[Any, Any]:
        bus = Bus(reactor)

        async def work(message: int) -> int:
            await asyncio.sleep(0.001)
            if message < 0:
                raise ValueError("negative")
            return message * 2

        def handler(address: Address, message: int) -> asyncio.Task[int]:
            return asyncio.get_running_loop().create_task(work(message))

        bus.register("service:tasks_py", handler)
        doubled = await bus.send("service:tasks_py/x", 21)
        with pytest.raises(ValueError, match="negative"):
            await bus.send("service:tasks_py/x", -1)
        return doubled, await bus.send("service:tasks_py/x", 1)  # the next one flows

    with capture_logs() as logs:
        assert run_in_reactor(scenario, timeout=5) == (42, 2)
    assert "handler service:tasks_py failed on a message to service:tasks_py/x" in logs.text()


# -- figures ----------------------------------------------------------------------------


def test_stats_by_kind_count_outcomes_refusals_and_outlive_their_endpoints(
    bus: Bus, clock: Clock
) -> None:
    pending: Deferred[None] = Deferred()
    a = bus.register("svc:a", lambda address, message: None)
    bus.register("svc:b", lambda address, message: 1 / 0, queue_size=1)
    bus.register("other:c", lambda address, message: pending)
    with capture_logs():
        for i in range(20):
            bus.post("svc:a", i)
        bus.post("svc:b", 1)
        bus.post("svc:b", 2)  # its queue holds one
        bus.post("svc:nobody", 3)
        bus.post("other:c", 4)
        bus.post("other:c", 5)
        clock.advance(0)
    stats = bus.stats()
    svc, other = stats["svc"], stats["other"]
    assert (svc.endpoints, svc.handled, svc.failed, svc.queue_full, svc.unknown_destination) \
        == (2, 21, 1, 1, 1)
    assert 2 <= svc.timed <= 21  # a sample, each endpoint's first message included
    assert (other.endpoints, other.in_flight, other.queued, other.handled) == (1, 1, 1, 0)
    pending.callback(None)
    assert (bus.stats()["other"].handled, bus.stats()["other"].timed) == (1, 1)
    a.unregister()
    after = bus.stats()["svc"]
    assert (after.endpoints, after.handled, after.failed) == (1, 21, 1)  # counts stay
    events = bus.events_published
    bus.publish(Lifecycle("x", "started"))
    assert bus.events_published == events + 1
