"""``nodeOutput`` to bus addresses: each destination may change its message freely.

The router copies with the value model's ``copy`` (new lists and dicts) only where a
message has more than one destination; the only destination takes it as it is.
"""

from __future__ import annotations

import pathlib
from typing import Any

from twisted.internet.task import Clock

from hadaemon.bus import Address, Bus
from hadaemon.nodes.delivery import NodeInputs
from hadaemon.nodes.flows import NodeSpec, Target
from hadaemon.nodes.routing import Router
from hadaemon.values import unpack


def sender(*outputs: list[Target]) -> NodeSpec:
    return NodeSpec("p", pathlib.Path("p.py"), "flow", "p", 1, len(outputs),
                    wires=[list(targets) for targets in outputs])


def setup() -> tuple[Clock, Bus, Router, dict[str, NodeInputs], list[str]]:
    clock = Clock()
    bus = Bus(clock)
    reports: list[str] = []
    inputs = {"p": NodeInputs("p", 10, clock), "q": NodeInputs("q", 10, clock)}
    router = Router(inputs, bus, clock, lambda node_id, text, level: reports.append(text))
    return clock, bus, router, inputs, reports


def message() -> dict[str, Any]:
    return {"payload": {"t": [1, 2, {"deep": 3.5}], "on": True}, "topic": "x"}


def test_every_destination_of_a_fan_out_gets_a_copy_of_its_own() -> None:
    clock, bus, router, inputs, reports = setup()
    got: dict[str, Any] = {}

    def vandal(address: Address, msg: Any) -> None:
        got["a"] = msg
        msg["payload"]["t"][2]["deep"] = "changed"  # deep inside: a shallow copy fails
        msg["payload"]["t"].append(99)
        msg["topic"] = "changed"

    bus.register("test:a", vandal)
    bus.register("test:b", lambda address, msg: got.setdefault("b", msg))
    bus.register("test:c", lambda address, msg: got.setdefault("c", msg))
    spec = sender([Target(Address.parse("test:a")), Target(Address.parse("test:b")),
                   Target(Address.parse("test:c"), payload_only=True),
                   Target(Address.parse("node:q/0"))])
    sent = message()
    assert router.output(spec, 0, sent) is None
    clock.advance(0)
    want = {**message(), "source": "p"}
    assert got["b"] == want
    assert got["c"] == want["payload"]
    assert got["a"]["topic"] == "changed"
    # The node input's message is still the one sent (it is encoded when it goes out).
    (port, queued, _done) = inputs["q"].queue[0]
    assert port == 0 and queued.msg == want and unpack(queued.packed) == want
    assert reports == []


def test_the_only_destination_takes_the_message_as_it_is() -> None:
    clock, bus, router, _inputs, _reports = setup()
    got: list[Any] = []
    bus.register("test:a", lambda address, msg: got.append(msg))
    bus.register("test:b", lambda address, msg: got.append(msg))
    spec = sender([Target(Address.parse("test:a"))],
                  [Target(Address.parse("test:b"), payload_only=True)])
    first, second = message(), message()
    router.output(spec, 0, first)
    router.output(spec, 1, second)
    clock.advance(0)
    # Decoded from the node for this output alone: no copy is needed, none is made.
    assert got[0] is first and got[0]["source"] == "p"
    assert got[1] is second["payload"]
