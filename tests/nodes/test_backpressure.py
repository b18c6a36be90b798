"""Flow control end to end: a producer calling ``nodeOutput`` as fast as it can is held
back through any chain of nodes, through fan-out, through a service in between and
around a loop; every message arrives, in order, and none is dropped.

Real node processes (tests/nodes/nodes/chain.py) with the default settings: the
producer outputs ``COUNT`` messages flat out from one ``nodeInput`` call; each sink
checks the order itself and outputs one summary at the last message.
"""

from __future__ import annotations

import pathlib
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from hadaemon.bus import Address, Bus
from hadaemon.nodes.delivery import NodeInputs
from hadaemon.nodes.flows import NodeSpec, Target
from hadaemon.nodes.routing import Router
from hadaemon.testing import capture_logs, run_in_reactor
from tests.nodes.helpers import make_config, node, running

COUNT = 200_000
"""Messages the producer sends: far beyond every queue and window on the way."""

LAST = {"mode": "check", "last": COUNT - 1}


def producer(*wires: Any) -> dict[str, Any]:
    return node("p", "chain.py", info={"mode": "produce"}, wires=[list(wires)])


def relay(node_id: str, *outputs: list[Any], mode: str = "relay") -> dict[str, Any]:
    return node(node_id, "chain.py", info={"mode": mode, "outputs": len(outputs)},
                outputs=len(outputs), wires=list(outputs))


def sink(node_id: str) -> dict[str, Any]:
    return node(node_id, "chain.py", info=LAST, wires=[[f"test:sink/{node_id}"]])


def chain(length: int) -> list[dict[str, Any]]:
    """producer -> r1 -> ... -> sink: ``length`` nodes."""
    ids = ["p", *(f"r{i}" for i in range(1, length - 1)), "s"]
    nodes = [producer(ids[1])]
    nodes += [relay(ids[i], [ids[i + 1]]) for i in range(1, length - 1)]
    return [*nodes, sink("s")]


def run_flow(tmp_path: pathlib.Path, nodes: list[dict[str, Any]], sinks: list[str],
             **settings: Any) -> None:
    config = make_config(tmp_path, nodes, **settings)

    async def scenario(reactor: Any) -> None:
        with capture_logs() as logs:
            async with running(reactor, config) as run:
                run.daemon.bus.post("node:p/0", {"payload": COUNT})
                for name in sinks:
                    [summary] = await run.sink.wait(reactor, 1, name, timeout=240.0)
                    assert summary == {"count": COUNT, "disorder": []}, (name, summary)
                states = run.plugin.nodes()
                assert all(s["dropped"] == 0 and s["lost"] == 0 and s["failed"] == 0
                           for s in states.values()), states
        dropped = [line for line in (event.get("log_format") and str(event) for event in logs)
                   if line and "dropped" in line]
        assert not dropped, dropped[:3]

    run_in_reactor(scenario, timeout=900)


def test_chain_of_two_delivers_all_in_order_dropping_nothing(tmp_path: pathlib.Path) -> None:
    run_flow(tmp_path, chain(2), ["s"])


def test_chain_of_four_delivers_all_in_order_dropping_nothing(tmp_path: pathlib.Path) -> None:
    run_flow(tmp_path, chain(4), ["s"])


def test_chain_of_eight_delivers_all_in_order_dropping_nothing(tmp_path: pathlib.Path) -> None:
    run_flow(tmp_path, chain(8), ["s"])


def test_fan_out_is_held_back_by_its_slowest_branch_dropping_nothing(
    tmp_path: pathlib.Path,
) -> None:
    """p -> f, whose one output is wired to a relay and a sink; the relay feeds a second
    sink: the slowest branch holds the producer back."""
    nodes = [producer("f"), relay("f", ["a", "b"]), relay("a", ["sa"]),
             sink("sa"), sink("b")]
    run_flow(tmp_path, nodes, ["sa", "b"])


FORWARDER = """
from base_service import CustomService


class Forwarder(CustomService):
    async def forward(self, msg):
        await self.SubmitAction("node:s", "0", msg.message[0])
"""


def test_through_a_service_in_order_dropping_nothing(tmp_path: pathlib.Path) -> None:
    """p -> service:forwarder_py/forward -> s: the service's mailbox and its sends to the
    sink node hold the producer back like a node's queue does."""
    directory = tmp_path / "services"
    directory.mkdir()
    (directory / "Forwarder.py").write_text(FORWARDER)
    nodes = [producer("service:forwarder_py/forward"), sink("s")]
    run_flow(tmp_path, nodes, ["s"],
             services={"directories": [str(directory)], "service": {"Forwarder": {}}})


def test_a_loop_does_not_deadlock_and_drops_nothing(tmp_path: pathlib.Path) -> None:
    """p -> a -> b, and b's output 1 wired back to a: every message goes round once,
    then on to the sink. Holding a for b and b for a would deadlock."""
    nodes = [producer("a"), relay("a", ["b"]), relay("b", ["s"], ["a"], mode="loop"),
             sink("s")]
    run_flow(tmp_path, nodes, ["s"])


def test_a_full_bus_endpoint_holds_the_sender_in_order_and_a_stuck_one_lets_go() -> None:
    """The rules of :mod:`hadaemon.nodes.busline`, on a clock: a refused message waits
    in a line with every later one, the sender is held until the line is empty, and an
    endpoint that takes nothing for ``stall_timeout`` ends the line with a report."""
    clock = Clock()
    bus = Bus(clock)
    taken: list[Any] = []
    answers: list[Deferred[None]] = []

    def slow(address: Address, message: Any) -> Deferred[None]:
        taken.append(message["payload"])
        answers.append(Deferred())
        return answers[-1]

    bus.register("test:slow", slow, queue_size=2, concurrency=1)
    reports: list[str] = []
    sender = NodeSpec("p", pathlib.Path("p.py"), "flow", "p", 1, 1,
                      wires=[[Target(Address.parse("test:slow"))]])
    inputs = NodeInputs("p", 10, clock)
    router = Router({"p": inputs}, bus, clock,
                    lambda node_id, text, level: reports.append(text), stall_timeout=5.0)
    # Two wait in the endpoint's queue; the third is refused: the line opens.
    assert [router.output(sender, 0, {"payload": i}) for i in range(2)] == [None] * 2
    held = router.output(sender, 0, {"payload": 2})
    assert isinstance(held, Deferred) and router.output(sender, 0, {"payload": 3}) is held
    assert inputs.bus_lines == 1  # held: never declared stalled meanwhile
    clock.advance(0)
    assert taken == [0]
    clock.advance(0.001)  # the retry: 2 fits, 3 not yet
    assert not held.called
    for _ in range(4):  # the endpoint goes on taking them: the line empties, in order
        answers[-1].callback(None)
        clock.advance(0.05)
    assert held.called and taken == [0, 1, 2, 3] and inputs.bus_lines == 0
    assert router.output(sender, 0, {"payload": 4}) is None  # no line left: straight on
    # Stuck: the handler never answers 4; a line opens and gives up after 5 s.
    clock.advance(0)
    assert taken[-1] == 4
    assert [router.output(sender, 0, {"payload": i}) for i in (5, 6)] == [None] * 2
    stuck = router.output(sender, 0, {"payload": 7})
    assert isinstance(stuck, Deferred)
    clock.advance(4.9)
    assert not stuck.called
    clock.pump([0.05] * 10)
    assert stuck.called
    assert reports == ["1 message(s) to test:slow dropped: it took none for 5 s"]
