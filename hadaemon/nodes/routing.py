"""``nodeOutput``: a node's message to every wire of one of its outputs, in wire order.

A wire to a node input queues the message at that node (:class:`NodeInputs`); a wire to
any other bus address (a service action, a device) sends it on the bus. Every
destination gets its own copy. Problems (an output without wires, a full queue, a bus
destination that fails) are reported as the sending node's errors, throttled so a flood
stays readable. A destination that is full holds the sender's answer until it has room
(flow control, see :mod:`hadaemon.nodes.delivery`).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from hadaemon.bus import Bus, Level
from hadaemon.nodes.delivery import NodeInputs, Reporter, Throttle, suppressed
from hadaemon.nodes.faults import INVALID_PARAMS, Fault
from hadaemon.nodes.flows import NodeSpec, Target
from hadaemon.nodes.link import OutgoingMessage
from hadaemon.store.values import unpack


def as_message(value: Any, source: str | None = None) -> dict[str, Any]:
    """A node message: a dict with ``payload`` (None if missing) and, when ``source`` is
    given, ``source`` unless the message already names one. Non-dicts become payloads."""
    msg = value if type(value) is dict else {"payload": value}
    if "payload" not in msg:
        msg["payload"] = None
    if source is not None and "source" not in msg:
        msg["source"] = source
    return msg


Route = list[tuple[NodeInputs | None, Target]]
"""One output's wires, each with the input queue of its node (None: a bus address, or a
node that does not exist)."""


class Router:
    """Routes node outputs along the wires (reactor thread only)."""

    def __init__(
        self,
        inputs: Mapping[str, NodeInputs],
        bus: Bus,
        reactor: IReactorTime,
        report: Reporter,
    ) -> None:
        self._inputs = inputs
        self._bus = bus
        self._report = report
        self._throttle = Throttle(reactor)
        self._routes: dict[str, list[Route]] = {}
        self.routed = 0

    def _resolve(self, source: NodeSpec) -> list[Route]:
        """Every output's wires with their queues, looked up once per node."""
        routes = [[(self._inputs.get(t.node_id) if t.node_id is not None else None, t)
                   for t in targets] for targets in source.wires]
        self._routes[source.id] = routes
        return routes

    def output(self, source: NodeSpec, index: Any, msg: Any) -> Deferred[None] | None:
        """Send ``msg`` (decoded from a node's call) on output ``index`` of ``source``.

        Returns None when the sender may go on at once, or a Deferred that fires once
        every full destination has room again (see :mod:`hadaemon.nodes.delivery`); the
        answers held for the same destination share one.
        """
        if type(index) is not int:  # the wire decodes exact types: bool is not int here
            if isinstance(index, bool) or not isinstance(index, int):
                raise Fault(INVALID_PARAMS, f"nodeOutput: the output index must be an "
                            f"integer, got {type(index).__name__}")
            index = int(index)
        routes = self._routes.get(source.id)
        if routes is None:
            routes = self._resolve(source)
        route = routes[index] if 0 <= index < len(routes) else None
        if not route:
            if index < 0 or index >= source.outputs:
                problem = f"nodeOutput: output {index} does not exist ({source.outputs} output(s))"
            else:
                problem = f"nodeOutput: output {index} has no wires"
            self._throttled(("unwired", source.id, index), source.id, problem, Level.ERROR)
            return None
        message = OutgoingMessage(as_message(msg, source.id), decoded=True)
        self.routed += 1
        full: list[NodeInputs] | None = None
        for inputs, target in route:
            if inputs is None:
                if target.node_id is None:
                    self._to_bus(source, target, message)
                else:
                    self._throttled(("gone", source.id, target.node_id), source.id,
                                    f"no node {target.node_id!r} to deliver to", Level.ERROR)
            elif not inputs.offer(target.port, message):
                self._throttled(
                    ("full", source.id, inputs.node_id), source.id,
                    f"message to node {inputs.node_id} input {target.port} dropped: "
                    f"{len(inputs.queue)} messages are already waiting for it",
                    Level.ERROR,
                )
            elif inputs.full:
                if full is None:
                    full = []
                if inputs not in full:
                    full.append(inputs)
        if full is None:
            return None
        sender = self._inputs[source.id]
        if len(full) == 1:
            pending = sender.waiting_senders.get(full[0])
            if pending is not None:
                return pending  # already waiting for it alone: known to be safe
        full = [inputs for inputs in full if inputs.can_hold_for(sender)]
        if not full:
            return None
        return self._hold(sender, full)

    @staticmethod
    def _hold(sender: NodeInputs, full: list[NodeInputs]) -> Deferred[None]:
        """The sender's answer, once every full destination has room: one Deferred for
        every answer held for the same single destination. While it waits, the sender
        has an edge to each of them in the wait-for graph (``waits_for``)."""
        answer: Deferred[None] = Deferred()
        remaining = [len(full)]
        waits_for = sender.waits_for

        def room(inputs: NodeInputs) -> None:
            count = waits_for[inputs] - 1
            if count:
                waits_for[inputs] = count
            else:
                del waits_for[inputs]
            remaining[0] -= 1
            if remaining[0] == 0:
                if len(full) == 1 and sender.waiting_senders.get(inputs) is answer:
                    del sender.waiting_senders[inputs]
                answer.callback(None)

        if len(full) == 1:
            sender.waiting_senders[full[0]] = answer
        for inputs in full:
            waits_for[inputs] = waits_for.get(inputs, 0) + 1
            inputs.wait_for_room(functools.partial(room, inputs))
        return answer

    def _to_bus(self, source: NodeSpec, target: Target, message: OutgoingMessage) -> None:
        value = unpack(message.packed)  # a copy of its own for every destination
        if target.payload_only:
            value = value.get("payload")
        self._bus.send(target.address, value).addErrback(self._bus_failed, source, target)

    def _bus_failed(self, failure: Failure, source: NodeSpec, target: Target) -> None:
        self._throttled(
            ("bus", source.id, str(target.address), failure.type), source.id,
            f"message to {target.address} failed: {failure.getErrorMessage()}", Level.ERROR,
        )

    def _throttled(self, key: Any, node_id: str, message: str, level: Level) -> None:
        count = self._throttle.hit(key)
        if count is not None:
            self._report(node_id, message + suppressed(count), int(level))
