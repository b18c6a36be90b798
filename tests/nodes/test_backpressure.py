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
                    [summary] = await run.sink.wait(reactor, 1, name, timeout=600.0)
                    assert summary == {"count": COUNT, "disorder": []}, (name, summary)
                states = run.plugin.nodes()
                assert all(s["dropped"] == 0 and s["lost"] == 0 and s["failed"] == 0
                           for s in states.values()), states
        dropped = [line for line in (event.get("log_format") and str(event) for event in logs)
                   if line and "dropped" in line]
        assert not dropped, dropped[:3]

    run_in_reactor(scenario, timeout=900)


def test_chain_of_two(tmp_path: pathlib.Path) -> None:
    run_flow(tmp_path, chain(2), ["s"])


def test_chain_of_four(tmp_path: pathlib.Path) -> None:
    run_flow(tmp_path, chain(4), ["s"])


def test_chain_of_eight(tmp_path: pathlib.Path) -> None:
    run_flow(tmp_path, chain(8), ["s"])


def test_fan_out(tmp_path: pathlib.Path) -> None:
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


def test_through_a_service(tmp_path: pathlib.Path) -> None:
    """p -> service:forwarder_py/forward -> s: the service's mailbox and its sends to the
    sink node hold the producer back like a node's queue does."""
    directory = tmp_path / "services"
    directory.mkdir()
    (directory / "Forwarder.py").write_text(FORWARDER)
    nodes = [producer("service:forwarder_py/forward"), sink("s")]
    run_flow(tmp_path, nodes, ["s"],
             services={"directories": [str(directory)], "service": {"Forwarder": {}}})


def test_loop(tmp_path: pathlib.Path) -> None:
    """p -> a -> b, and b's output 1 wired back to a: every message goes round once,
    then on to the sink. Holding a for b and b for a would deadlock."""
    nodes = [producer("a"), relay("a", ["b"]), relay("b", ["s"], ["a"], mode="loop"),
             sink("s")]
    run_flow(tmp_path, nodes, ["s"])
