"""The bus's typed message: made once by its sender, handed on as it is, answered."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from hadaemon.bus import (
    Address,
    Bus,
    BusMessage,
    DestinationGone,
    QueueFull,
    UnknownDestination,
    answer_address,
)


def payload() -> dict[str, Any]:
    return {"payload": {"t": [1, 2, {"deep": 3.5}], "on": True}, "topic": "x"}


def test_a_typed_handler_gets_the_very_message_handed_on_and_its_payload_uncopied() -> None:
    clock = Clock()
    bus = Bus(clock)
    got: list[BusMessage] = []
    bus.register("test:a", got.append, typed=True)
    outcomes: list[object] = []
    sent = payload()
    message = BusMessage(Address("test", "a", "in"), sent, Address("node", "n1"),
                         outcomes.append)
    bus.hand_on(message)
    assert got == []  # never in the sender's stack
    clock.advance(0)
    assert got == [message] and got[0] is message and got[0].payload is sent
    assert got[0].sender == Address("node", "n1")
    assert outcomes == [None]  # the handler's result, to the message's reply


def test_a_plain_handler_gets_address_and_payload_of_a_message_handed_on() -> None:
    clock = Clock()
    bus = Bus(clock)
    got: list[tuple[Address, Any]] = []
    bus.register("test:a", lambda address, value: got.append((address, value)) or "done")
    sent = payload()
    d: Deferred[Any] = Deferred()
    bus.hand_on(BusMessage(Address.parse("test:a/1"), sent, None, d))
    clock.advance(0)
    assert got == [(Address("test", "a", "1"), sent)] and got[0][1] is sent
    assert d.result == "done"


def test_send_post_and_deliver_take_a_sender_that_a_typed_handler_sees() -> None:
    clock = Clock()
    bus = Bus(clock)
    got: list[BusMessage] = []
    bus.register("test:a", got.append, typed=True)
    bus.send("test:a/x", 1, sender="node:n1")
    bus.post("test:a", 2, sender=Address("service", "echo_py"))
    bus.deliver("test:a", 3, None, sender="plugin:web/answers")
    bus.send("test:a", 4)
    clock.advance(0)
    assert [(m.payload, m.sender) for m in got] == [
        (1, Address("node", "n1")), (2, Address("service", "echo_py")),
        (3, Address("plugin", "web", "answers")), (4, None),
    ]
    # What a receiver answers to, as text (the services' msg.source).
    assert [answer_address(m.sender) for m in got] == [
        "node:n1", "service:echo_py", "plugin:web/answers", "bus"]


def test_hand_on_refuses_at_once_and_a_queued_message_learns_its_destination_went() -> None:
    clock = Clock()
    bus = Bus(clock)
    with pytest.raises(UnknownDestination, match="test:nobody/x"):
        bus.hand_on(BusMessage(Address("test", "nobody", "x"), 1))
    registration = bus.register("test:a", lambda address, value: None, queue_size=1)
    outcomes: list[object] = []
    bus.hand_on(BusMessage(Address("test", "a"), 1, None, outcomes.append))
    with pytest.raises(QueueFull):
        bus.hand_on(BusMessage(Address("test", "a"), 2, None, outcomes.append))
    registration.unregister()
    assert len(outcomes) == 1 and isinstance(outcomes[0], Failure)
    assert outcomes[0].check(DestinationGone)


def test_a_copy_for_another_destination_cannot_be_changed_under_the_first() -> None:
    clock = Clock()
    bus = Bus(clock)
    got: dict[str, Any] = {}

    def vandal(message: BusMessage) -> None:
        got["a"] = message.payload
        message.payload["payload"]["t"][2]["deep"] = "changed"  # deep: shallow fails
        message.payload["payload"]["t"].append(99)

    bus.register("test:a", vandal, typed=True)
    bus.register("test:b", lambda message: got.setdefault("b", message), typed=True)
    sent = payload()
    first = BusMessage(Address("test", "a"), sent, Address("node", "n1"))
    second = first.copy_for(Address("test", "b"))
    bus.hand_on(first)
    bus.hand_on(second)
    clock.advance(0)
    assert got["a"] is sent and got["a"]["payload"]["t"][2]["deep"] == "changed"
    assert got["b"].payload == payload() and got["b"].payload is not sent
    assert got["b"].sender == first.sender and got["b"].address == Address("test", "b")


def test_a_message_handed_on_again_by_its_handler_keeps_each_outcome_apart() -> None:
    # A typed handler may forward the message itself, with a new address and reply: the
    # first delivery's outcome still goes where it was meant to.
    clock = Clock()
    bus = Bus(clock)
    first: list[object] = []
    second: list[object] = []

    def forward(message: BusMessage) -> str:
        message.address = Address("test", "b")
        message.reply = second.append
        bus.hand_on(message)
        return "forwarded"

    bus.register("test:a", forward, typed=True)
    bus.register("test:b", lambda message: f"took {message.payload}", typed=True)
    bus.hand_on(BusMessage(Address("test", "a"), 7, None, first.append))
    clock.advance(0)
    clock.advance(0)
    assert first == ["forwarded"] and second == ["took 7"]
