"""``nodeOutput``: a node's message to every wire of one of its outputs, in wire order.

A wire to a node input queues the message at that node (:class:`NodeInputs`); a wire to
any other bus address (a service action, a device) hands it to the bus as one
:class:`hadaemon.bus.BusMessage` (the node's address as its sender: an answer may come
back to ``node:<id>``). Every destination gets its own copy
(:func:`hadaemon.values.copy`), except the only one, which takes the message as it was
decoded. Problems (an output without wires, a full queue, a
bus destination that fails) are reported as the sending node's errors, throttled so a
flood stays readable. A destination that is full holds the sender's answer until it has room
(flow control, see :mod:`hadaemon.nodes.delivery`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from hadaemon.bus import NODE, Address, Bus, BusError, BusMessage, Level, QueueFull
from hadaemon.nodes.busline import BusLine
from hadaemon.nodes.delivery import NodeInputs, Reporter, Throttle, suppressed
from hadaemon.nodes.faults import INVALID_PARAMS, Fault
from hadaemon.nodes.flows import NodeSpec, Target
from hadaemon.nodes.link import OutgoingMessage
from hadaemon.values import copy


def as_message(value: Any, source: str | None = None) -> dict[str, Any]:
    """A node message: a dict with ``payload`` (None if missing) and, when ``source`` is
    given, ``source`` unless the message already names one. Non-dicts become payloads."""
    msg = value if type(value) is dict else {"payload": value}
    if "payload" not in msg:
        msg["payload"] = None
    if source is not None and "source" not in msg:
        msg["source"] = source
    return msg


Outcome = Callable[[object], None]

Route = list[tuple[NodeInputs | None, Target, Outcome | None]]
"""One output's wires, each with the input queue of its node (None: a bus address, or a
node that does not exist) and, for a bus address, the outcome handler of its messages
(made once per wire, not per message)."""


class Router:
    """Routes node outputs along the wires (reactor thread only)."""

    def __init__(
        self,
        inputs: Mapping[str, NodeInputs],
        bus: Bus,
        reactor: IReactorTime,
        report: Reporter,
        *,
        stall_timeout: float = 10.0,
    ) -> None:
        self._inputs = inputs
        self._clock = reactor
        self._stall_timeout = stall_timeout
        # A sender's messages waiting for room at a bus endpoint, by (node id, endpoint).
        self._lines: dict[tuple[str, str], BusLine] = {}
        self._bus = bus
        self._report = report
        self._throttle = Throttle(reactor)
        self._routes: dict[str, list[Route]] = {}
        self._senders: dict[str, Address] = {}
        self.routed = 0
        # Watchers of one output's messages (the HTTP API's wire tap), see add_tap.
        self.taps: dict[tuple[str, int], list[Callable[[Any], object]]] = {}

    def _resolve(self, source: NodeSpec) -> list[Route]:
        """Every output's wires with their queues, looked up once per node."""
        routes: list[Route] = [
            [(self._inputs.get(t.node_id), t, None) if t.node_id is not None
             else (None, t, self._reply(source.id, t.address)) for t in targets]
            for targets in source.wires
        ]
        self._routes[source.id] = routes
        self._senders[source.id] = Address(NODE, source.id)
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
        if self.taps:
            self._tap(source.id, index, message.msg)
        full: list[NodeInputs] | None = None
        bus_held: Deferred[None] | None = None
        for inputs, target, outcome in route:
            if inputs is None:
                if outcome is not None:
                    held = self._to_bus(source, target, outcome, message,
                                        alone=len(route) == 1)
                    if held is not None:
                        bus_held = held
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
            return bus_held
        sender = self._inputs[source.id]
        if len(full) == 1:
            pending = sender.waiting_senders.get(full[0])
            if pending is not None:  # already waiting for it alone: known to be safe
                return pending if bus_held is None else _both(pending, bus_held)
        full = [inputs for inputs in full if inputs.can_hold_for(sender)]
        if not full:
            return bus_held
        held = self._hold(sender, full)
        return held if bus_held is None else _both(held, bus_held)

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

    def _to_bus(
        self, source: NodeSpec, target: Target, outcome: Outcome, message: OutgoingMessage,
        *, alone: bool,
    ) -> Deferred[None] | None:
        """Send on the bus; a Deferred while the sender's messages to that endpoint wait
        for room (see :mod:`hadaemon.nodes.busline`).

        The message was just decoded from the node, so nobody else holds it: the only
        destination (``alone``) takes it as it is, others each get a copy of their own
        (``benchmarks/node_to_bus.py``: daemon CPU per message to one endpoint 10-16 us,
        was 12-21 us unpacking the packed message; to two 18-27 us, was 24-37 us).
        """
        value = message.msg.get("payload") if target.payload_only else message.msg
        if not alone:
            value = copy(value)
        address = target.address
        bus_message = BusMessage(address, value, self._senders[source.id], outcome)
        key = (source.id, address.endpoint)
        line = self._lines.get(key)
        if line is not None:  # earlier messages wait: this one waits behind them
            line.append(bus_message)
            return line.held
        try:
            self._bus.hand_on(bus_message)
        except QueueFull:
            line = BusLine(self._bus, self._clock, self._stall_timeout,
                           functools.partial(self._line_ended, source.id, key))
            line.append(bus_message)
            self._lines[key] = line
            self._inputs[source.id].bus_lines += 1
            return line.held
        except BusError as exc:
            self._bus_failed(source.id, address, Failure(exc))
        return None

    def _reply(self, node_id: str, address: Address) -> Outcome:
        """The outcome handler of a node's message to ``address``: failures reported."""
        def outcome(result: object) -> None:
            if isinstance(result, Failure):
                self._bus_failed(node_id, address, result)
        return outcome

    def _line_ended(self, node_id: str, key: tuple[str, str], line: BusLine,
                    dropped: int) -> None:
        if self._lines.get(key) is line:
            del self._lines[key]
        inputs = self._inputs.get(node_id)
        if inputs is not None:  # (None: the node was removed by a reload)
            inputs.bus_lines -= 1
        if dropped:
            self._throttled(
                ("stalled", node_id, key[1]), node_id,
                f"{dropped} message(s) to {key[1]} dropped: it took none for "
                f"{self._stall_timeout:g} s", Level.ERROR,
            )

    def _bus_failed(self, node_id: str, address: Address, failure: Failure) -> None:
        self._throttled(
            ("bus", node_id, str(address), failure.type), node_id,
            f"message to {address} failed: {failure.getErrorMessage()}", Level.ERROR,
        )

    def set_inputs(self, inputs: dict[str, NodeInputs]) -> None:
        """The nodes' input queues after a reload: every output's wires are looked up
        again (a wire may now reach a node that was added, changed or removed), and the
        bus lines of removed nodes stop."""
        self._inputs = inputs
        self._routes.clear()
        for key in [k for k in self._lines if k[0] not in inputs]:
            self._lines.pop(key).cancel()

    def add_tap(self, node_id: str, index: int,
                watcher: Callable[[Any], object]) -> Callable[[], None]:
        """Call ``watcher(msg)`` with each message node ``node_id`` sends on output
        ``index``, before it is delivered (so it must not keep or change it); returns the
        function that removes it."""
        watchers = self.taps.setdefault((node_id, index), [])
        watchers.append(watcher)

        def remove() -> None:
            if watcher in watchers:
                watchers.remove(watcher)
            if not watchers and self.taps.get((node_id, index)) is watchers:
                del self.taps[(node_id, index)]
        return remove

    def _tap(self, node_id: str, index: int, msg: Any) -> None:
        for watcher in self.taps.get((node_id, index), ()):
            try:
                watcher(msg)
            except Exception:  # a watcher's failure is its own, never the sender's
                self._throttled(("tap", node_id, index), node_id,
                                f"a wire tap on output {index} failed", Level.WARNING)

    def stop(self) -> None:
        """Stop retrying every bus line (the daemon stops)."""
        lines, self._lines = self._lines, {}
        for line in lines.values():
            line.cancel()

    def _throttled(self, key: Any, node_id: str, message: str, level: Level) -> None:
        count = self._throttle.hit(key)
        if count is not None:
            self._report(node_id, message + suppressed(count), int(level))


def _both(first: Deferred[None], second: Deferred[None]) -> Deferred[None]:
    """Fires once both have (a fan-out held by a node and by a bus endpoint at once)."""
    both: Deferred[None] = Deferred()
    gatherResults([first, second]).addCallback(lambda _: both.callback(None))
    return both
