"""Flows: the nodes, their inputs and outputs, and the wires between them (plain data).

Built from the ``[nodes]`` config (``[[nodes.node]]`` tables) and, optionally, a
Node-BLUE/Node-RED ``flows.json`` (:mod:`hadaemon.nodes.flowsjson`). A wire goes from a
node's output to a node's input (``{id, port}``) or to any bus address (a service action,
a device); ``nodeInfo`` lists every wire of every port, in and out.
"""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hadaemon.bus import NODE, Address, InvalidAddress
from hadaemon.bus.topics import InvalidTopic, matcher

_NODE_ID = re.compile(r"^[^/:@\s]+$")  # '@' names a host: node:<id>@<host>/<input>

CATCH_NONE = ""
CATCH_FLOW = "flow"
CATCH_ALL = "all"

WIRE_MSGPACK = "msgpack"
"""hadaemon's own wire and ``homegear`` module (the default)."""
WIRE_BINRPC = "binrpc"
"""Homegear's binary RPC, for the real ``homegear`` C++ module (hadaemon's module is not
put on the node's path)."""


class FlowError(ValueError):
    """The flows cannot be built; ``problems`` lists every reason, each naming its node."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)


@dataclass(frozen=True, slots=True)
class Target:
    """Where one wire of an output goes (``node_id`` and ``port`` for a node input)."""

    address: Address
    payload_only: bool = False
    node_id: str | None = field(init=False, default=None)
    port: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        # Looked up for every message: computed once. A node on another host
        # (node:<id>@<host>) is reached over the bus, as any other address.
        if self.address.kind == NODE and self.address.host is None:
            object.__setattr__(self, "node_id", self.address.id)
            object.__setattr__(self, "port", int(self.address.path or 0))

    def describe(self) -> dict[str, Any]:
        """The wire as nodeInfo shows it: ``{id, port}``, or ``{address}`` off the nodes."""
        if self.node_id is not None:
            return {"id": self.address.id, "port": self.port}
        return {"address": str(self.address)}


@dataclass
class NodeSpec:
    """One node as configured: what to run and how it is wired."""

    id: str
    file: pathlib.Path
    flow: str
    type: str
    inputs: int
    outputs: int
    wires: list[list[Target]] = field(default_factory=list)
    name: str = ""
    interpreter: str = ""
    info: dict[str, Any] = field(default_factory=dict)
    catch: str | tuple[str, ...] = CATCH_NONE
    events: tuple[str, ...] = ("variable/#",)
    env: dict[str, str] = field(default_factory=dict)
    origin: str = ""
    wire: str = ""  # WIRE_MSGPACK or WIRE_BINRPC; "" until the section's default applies

    @property
    def address(self) -> Address:
        return Address(NODE, self.id)

    def source_info(self) -> dict[str, Any]:
        """``{id, z, type, name}``: the node as the source of an error."""
        return {"id": self.id, "z": self.flow, "type": self.type, "name": self.name}


class Flows:
    """All nodes by id; reads only (build a new one to change anything)."""

    def __init__(self, nodes: Sequence[NodeSpec]) -> None:
        self.nodes: dict[str, NodeSpec] = {n.id: n for n in nodes}
        self._wires_in: dict[str, list[list[dict[str, Any]]]] = {
            n.id: [[] for _ in range(n.inputs)] for n in nodes
        }
        for node in nodes:
            for output, targets in enumerate(node.wires):
                for target in targets:
                    target_id = target.node_id
                    if target_id in self._wires_in:
                        ports = self._wires_in[target_id]
                        if target.port < len(ports):
                            ports[target.port].append({"id": node.id, "port": output})

    def __len__(self) -> int:
        return len(self.nodes)

    def __contains__(self, node_id: object) -> bool:
        return node_id in self.nodes

    def node_info(self, node_id: str) -> dict[str, Any]:
        """``nodeInfo``: ``{id, flowId, type, name, info, wiresIn, wiresOut, allWiresIn,
        allWiresOut}``.

        ``wiresIn``/``wiresOut`` are Homegear's shape, which node code written for it
        indexes (``nodeInfo["wiresOut"][0]["id"]``): per port the first wire as
        ``{id, port}``, ``{}`` where none. ``allWiresIn``/``allWiresOut`` are hadaemon's
        own: every wire of every port, as a list per port.
        """
        node = self.nodes[node_id]
        wires_in = self._wires_in[node_id]
        wires_out = [[t.describe() for t in targets] for targets in node.wires]
        return {
            "id": node.id,
            "flowId": node.flow,
            "type": node.type,
            "name": node.name,
            "info": node.info,
            "wiresIn": [_homegear_wire(port) for port in wires_in],
            "wiresOut": [_homegear_wire(port) for port in wires_out],
            "allWiresIn": wires_in,
            "allWiresOut": wires_out,
        }

    def catchers_of(self, source: NodeSpec) -> list[NodeSpec]:
        """The catch nodes that receive ``source``'s errors (never ``source`` itself,
        nor errors of other catch nodes: two catch nodes must not feed each other)."""
        if source.catch:
            return []
        found = []
        for node in self.nodes.values():
            scope = node.catch
            if not scope:
                continue
            if (
                scope == CATCH_ALL
                or (scope == CATCH_FLOW and node.flow == source.flow)
                or (isinstance(scope, tuple) and source.id in scope)
            ):
                found.append(node)
        return found


def _homegear_wire(port: list[dict[str, Any]]) -> dict[str, Any]:
    """A port as Homegear's nodeInfo gives it: its first wire, ``{}`` when unconnected;
    a wire to a bus address (no node there) shows the address as its id, port 0."""
    if not port:
        return {}
    first = port[0]
    if "address" in first:
        return {"id": first["address"], "port": 0}
    return dict(first)


def resolve_interpreter(value: str, base_dir: pathlib.Path) -> str | None:
    """An interpreter path: "" is the daemon's Python, a name is looked up on PATH."""
    if not value:
        return sys.executable
    if "/" in value:
        path = pathlib.Path(os.path.expanduser(value))
        if not path.is_absolute():
            path = base_dir / path
        return str(path) if os.access(path, os.X_OK) and path.is_file() else None
    return shutil.which(value)


def check_node_id(node_id: str) -> str | None:
    """A problem with a node id, or None."""
    if not _NODE_ID.match(node_id):
        return f"invalid node id {node_id!r}: no '/', ':', '@' or whitespace"
    return None


def make_target(wire: Mapping[str, Any]) -> Target:
    """A normalized wire (see :class:`hadaemon.nodes.settings.WireField`) as a Target."""
    if wire.get("address"):
        address = Address.parse(str(wire["address"]))
        return Target(address, bool(wire.get("payload_only", False)))
    return Target(Address(NODE, str(wire["id"]), str(int(wire.get("port", 0)))))


def node_from_config(
    entry: Mapping[str, Any], where: str, default_flow: str, problems: list[str]
) -> NodeSpec | None:
    """A NodeSpec from a validated ``[[nodes.node]]`` table; problems are appended."""
    node_id = str(entry["id"])
    problem = check_node_id(node_id)
    if problem:
        problems.append(f"{where}: {problem}")
        return None
    wires: list[list[Target]] = []
    for output, wire_list in enumerate(entry.get("wires", [])):
        targets = []
        for index, wire in enumerate(wire_list):
            try:
                targets.append(make_target(wire))
            except InvalidAddress as exc:
                problems.append(f"{where}.wires[{output}][{index}]: {exc}")
        wires.append(targets)
    file = pathlib.Path(entry["file"])
    info = {
        "id": node_id,
        "type": entry.get("type") or file.stem,
        "z": entry.get("flow") or default_flow,
        "name": entry.get("name", ""),
        "wires": [[t.describe() for t in targets] for targets in wires],
        **dict(entry.get("info", {})),
    }
    return NodeSpec(
        id=node_id,
        file=file,
        flow=entry.get("flow") or default_flow,
        type=entry.get("type") or file.stem,
        name=entry.get("name", ""),
        interpreter=entry.get("interpreter", ""),
        inputs=int(entry.get("inputs", 1)),
        outputs=int(entry.get("outputs", 1)),
        wires=wires,
        info=info,
        catch=entry.get("catch", ""),
        events=tuple(entry.get("events", ("variable/#",))),
        env=dict(entry.get("env", {})),
        origin=where,
        wire=entry.get("wire", ""),
    )


def check(nodes: Sequence[NodeSpec], base_dir: pathlib.Path, default_interpreter: str) -> list[str]:
    """Every problem of a set of nodes: ids, wires, ports, files, interpreters, patterns."""
    problems: list[str] = []
    seen: dict[str, str] = {}
    for node in nodes:
        if node.id in seen:
            problems.append(f"{node.origin}: node id {node.id!r} is also used by {seen[node.id]}")
        seen[node.id] = node.origin
    by_id = {n.id: n for n in nodes}
    for node in nodes:
        if len(node.wires) > node.outputs:
            problems.append(
                f"{node.origin}: {len(node.wires)} wire lists for {node.outputs} output(s)"
            )
        for output, targets in enumerate(node.wires):
            for index, target in enumerate(targets):
                where = f"{node.origin}.wires[{output}][{index}]"
                target_id = target.node_id
                if target_id is None:
                    continue
                other = by_id.get(target_id)
                if other is None:
                    problems.append(f"{where}: no node {target_id!r}")
                elif target.port >= other.inputs:
                    problems.append(
                        f"{where}: node {target_id!r} has {other.inputs} input(s), "
                        f"no input {target.port}"
                    )
        if not node.file.is_file():
            problems.append(f"{node.origin}: node file {node.file} does not exist")
        interpreter = node.interpreter or default_interpreter
        if resolve_interpreter(interpreter, base_dir) is None:
            problems.append(f"{node.origin}: interpreter {interpreter!r} not found or not "
                            "executable")
        for pattern in node.events:
            try:
                matcher(pattern)
            except InvalidTopic as exc:
                problems.append(f"{node.origin}.events: {exc}")
    return problems
