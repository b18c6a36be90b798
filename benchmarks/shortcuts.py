"""Each hot-path shortcut of the node path and the bus, against the plain way it replaces.

A shortcut stays only where it matters (issue 12: "its comment names the benchmark and
the figure"). Per message, in ns, for the shortcut and for the plain way, and what it
saves as a share of a message's CPU in ``benchmarks/node_routing.py`` (about 4 us in the
daemon, 5 us in the two nodes; pass ``--daemon-us`` and ``--nodes-us`` from a run of
it on this machine). The variants run interleaved, round after round (the machine may
be shared: compare within a run); each figure is the range (min .. max) over the rounds.

Daemon, node wire:

- ``nodeOutput`` notification through the msgpack protocol (reader, protocol, route):
  straight to the router (``MsgpackNodeProtocol._node_output``) against the general way
  of a notification (``Dispatcher.call``, its lookups, ``_quietly``);
- ``nodeInput`` to a node: the message packed once and spliced after a prepared head
  (``wire.encode_input_notification``) against packing the whole call;
- the common answer ``[1, msgid, nil, nil]`` (``wire.encode_response``) against packing it;
- a message decoded from a node packed for its destinations: ``link.fast_pack`` (the C
  packer) against :func:`hadaemon.values.pack` (the value model's checks);
- an input offered to a node whose window has room: straight to the link
  (``NodeInputs.offer``) against queueing it and pumping the queue.

Node client: ``nodeOutput`` with its constant head packed once (``post_output``) against
packing the whole call; the empty answer
(``pack_ok``); the C packer for plain values in ``pack``; nodeInfo's copier against
decoding its bytes again.

Bus: ``Bus.deliver`` with a callable reply against ``Bus.send`` (a Deferred per message),
one message through a plain handler; in ``Bus._deliver``, a handler's ``Completion`` (the
services' outcome) checked for first, against after ``Deferred`` (an ABC: a slow
isinstance).

Run it by hand: ``.venv/bin/python benchmarks/shortcuts.py [--rounds 5]``.
"""

from __future__ import annotations

import argparse
import sys
import timeit
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import Logger

from hadaemon.bus import Bus
from hadaemon.bus.bus import Completion
from hadaemon.nodes import wire
from hadaemon.nodes.client import CLIENT_DIR
from hadaemon.nodes.connection import Limits, State
from hadaemon.nodes.delivery import NodeInputs
from hadaemon.nodes.dispatcher import Dispatcher
from hadaemon.nodes.link import OutgoingMessage, fast_pack, input_ended
from hadaemon.nodes.protocol import MsgpackNodeProtocol
from hadaemon.values import pack

MESSAGE = {"payload": 42, "topic": "sensor/1", "_msgid": "4c2d1a0e.9b7f3"}
NODE_INFO = {"id": "n1", "type": "function", "flow": "f1", "name": "relay",
             "wiresIn": [{"id": "n0", "port": 0}], "wiresOut": [{"id": "n2", "port": 0}],
             "info": {"wiresIn": [[{"id": "n0", "port": 0}]],
                      "wiresOut": [[{"id": "n2", "port": 0}]]}}

Case = tuple[str, Callable[[], Any], Callable[[], Any], str]
"""(name, the shortcut, the plain way, whose CPU it is: "daemon" or "nodes")."""


class _Router:
    def output(self, spec: Any, index: Any, msg: Any) -> None:
        return None


def _protocol() -> tuple[MsgpackNodeProtocol, Callable[..., Any]]:
    """A bound msgpack connection of node ``n1`` to a dispatcher whose router takes
    everything at once (its nodeOutput straight to the router), and that route."""
    router = _Router()
    runtime = SimpleNamespace(id="n1", spec=object(), log=Logger())
    dispatcher = Dispatcher(
        flows=None, runtimes={"n1": runtime}, tokens=None,  # type: ignore[arg-type]
        rpc=SimpleNamespace(methods={}), scopes=None, credentials=None,  # type: ignore[arg-type]
        router=router, bus=None, log=Logger(), throttle=None,  # type: ignore[arg-type]
        on_ready=lambda runtime: None,
    )
    link = MsgpackNodeProtocol(dispatcher, Limits(), Clock(), Logger())
    link.makeConnection(StringTransport())
    link.state = State.BOUND
    link.node_id = "n1"
    link._reader.limit = Limits().max_frame
    link._authenticated()
    route = dispatcher.output_route("n1")
    link._route = route
    return link, route


def daemon_cases() -> list[Case]:
    batch = 100
    outputs = b"".join(
        wire.encode_notification("nodeOutput", ["n1", 0, MESSAGE]) for _ in range(batch))
    fast, _ = _protocol()
    general, _ = _protocol()
    general._route = None  # every nodeOutput takes the general way of a notification

    def through(link: MsgpackNodeProtocol) -> Callable[[], None]:
        def feed() -> None:
            link.dataReceived(outputs)
            link._credits.due = 0
        return feed

    packed = fast_pack(MESSAGE)
    inputs, pumped = _inputs(), _inputs()
    message = OutgoingMessage(MESSAGE)

    def queued() -> None:
        pumped.queue.append((0, message, None))
        pumped._pump()

    return [
        (f"nodeOutput in, straight to the router (x{batch})", through(fast),
         through(general), "daemon"),
        ("nodeInput out: packed message spliced", lambda: wire.encode_input_notification(
            0, packed), lambda: pack([2, "nodeInput", [0, MESSAGE]]), "daemon"),
        ("answer [1, id, nil, nil]", lambda: wire.encode_response(77, None, None),
         lambda: pack([1, 77, None, None]), "daemon"),
        ("fast_pack vs values.pack", lambda: fast_pack(MESSAGE), lambda: pack(MESSAGE),
         "daemon"),
        ("input offered: straight to the link", lambda: inputs.offer(0, message), queued,
         "daemon"),
    ]


class _Link:
    """A link that takes every input and ends it at once (the window never fills)."""

    wire = "bench"
    window = 1 << 30
    node_id = "n1"

    def send_input(self, port: int, message: Any, done: Any, sink: Any) -> None:
        input_ended(done, sink, None, None)


def _inputs() -> NodeInputs:
    inputs = NodeInputs("n1", 1000, Clock())
    inputs.open(_Link())  # type: ignore[arg-type]
    return inputs


def client_cases() -> list[Case]:
    sys.path.insert(0, CLIENT_DIR)
    import _homegear_rpc as rpc  # type: ignore[import-not-found]
    import _homegear_values as values  # type: ignore[import-not-found]

    prefix = rpc._OUTPUT_HEAD + values.pack("n1")
    copy = values.copier(NODE_INFO)
    info = values.pack(NODE_INFO)
    return [
        ("client nodeOutput: head packed once",
         lambda: prefix + values.pack(0) + values.pack(MESSAGE),
         lambda: values.pack([2, "nodeOutput", ["n1", 0, MESSAGE]]), "nodes"),
        ("client pack_ok vs pack", lambda: values.pack_ok(77),
         lambda: values.pack([1, 77, None, None]), "nodes"),
        ("client pack: C packer vs the model's way", lambda: values.pack(MESSAGE),
         lambda: values._msgpack.packb(values._prepare(MESSAGE, 0), use_bin_type=True),
         "nodes"),
        ("client nodeInfo copy: copier vs unpack", copy, lambda: values.unpack(info),
         "nodes"),
    ]


def bus_cases() -> list[Case]:
    clock = Clock()
    bus = Bus(clock)
    bus.register("bench:sink", lambda address, message: None, queue_size=1 << 20)
    done = []

    def deliver() -> None:
        bus.deliver("bench:sink", 1, done.append)
        clock.advance(0)
        done.clear()

    def send() -> None:
        bus.send("bench:sink", 1).addBoth(done.append)
        clock.advance(0)
        done.clear()

    class Outcome(Completion):
        __slots__ = ()

    result = Outcome()
    return [
        ("bus: deliver(reply) vs send (Deferred)", deliver, send, "daemon"),
        ("bus: a Completion, checked for first",
         lambda: isinstance(result, Completion),
         lambda: isinstance(result, Deferred) or isinstance(result, Completion),  # noqa: SIM101
         "daemon"),
    ]


def measure(cases: list[Case], rounds: int, per_case: float) -> dict[str, list[list[float]]]:
    """ns per call of each case's two ways, per round, interleaved."""
    figures: dict[str, list[list[float]]] = {name: [[], []] for name, *_ in cases}
    numbers = {}
    for name, fast, _, _ in cases:  # calls per round, from a first short timing
        timer = timeit.Timer(fast)
        count, took = timer.autorange()
        numbers[name] = max(1, int(count * per_case / max(took, 1e-9)))
    for _ in range(rounds):
        for name, fast, plain, _ in cases:
            for which, call in enumerate((fast, plain)):
                took = timeit.Timer(call).timeit(numbers[name])
                figures[name][which].append(took / numbers[name] * 1e9)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.1, help="per case and round")
    parser.add_argument("--daemon-us", type=float, default=4.0,
                        help="the daemon's CPU per message (node_routing.py)")
    parser.add_argument("--nodes-us", type=float, default=5.0,
                        help="the two nodes' CPU per message (node_routing.py)")
    args = parser.parse_args()
    cases = daemon_cases() + client_cases() + bus_cases()
    figures = measure(cases, args.rounds, args.seconds)
    budget = {"daemon": args.daemon_us * 1000, "nodes": args.nodes_us * 1000}
    print(f"hot-path shortcuts, ns per call (min..max of {args.rounds} interleaved rounds); "
          f"saved as a share of a message's CPU ({args.daemon_us:g} us daemon, "
          f"{args.nodes_us:g} us nodes)")
    for name, _, _, whose in cases:
        fast, plain = figures[name]
        per = 100 if name.endswith("(x100)") else 1
        saved = (min(plain) - min(fast)) / per
        print(f"  {name:46} {min(fast):9.0f}..{max(fast):<9.0f} against "
              f"{min(plain):9.0f}..{max(plain):<9.0f} saves {saved:7.0f} ns/message, "
              f"{saved / budget[whose] * 100:5.1f}% of the {whose}'s")


if __name__ == "__main__":
    main()
