"""Importing a Node-BLUE / Node-RED ``flows.json``: its Python nodes and their wires.

- Tabs (``"type": "tab"``) are flows; a node's ``z`` names its flow. Disabled tabs and
  disabled nodes (``"d": true``) are skipped, so are subflows.
- Only nodes whose type the ``types`` map knows become processes; the others (Node-RED's
  inject, debug, function...) are skipped with a warning, and wires to them dropped.
- Wires: Node-BLUE's ``[[{"id": "n2", "port": 1}], ...]`` and Node-RED's plain
  ``[["n2"]]`` (port 0), one list per output, mixed freely.
- ``nodeInfo["info"]`` is the node's whole JSON object. A node of type ``catch`` mapped
  to a file is a catch node: its ``scope`` (null: its flow; a list: those nodes).
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hadaemon.bus import NODE, Address, InvalidAddress
from hadaemon.nodes.flows import CATCH_FLOW, NodeSpec, Target, check_node_id


@dataclass
class Imported:
    """What a flows.json gave: nodes to run, and problems (errors) and warnings."""

    nodes: list[NodeSpec] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _wire_ends(raw: Any, where: str, problems: list[str]) -> list[tuple[str, int]]:
    ends: list[tuple[str, int]] = []
    if not isinstance(raw, list):
        problems.append(f"{where}: expected a list of wires, got {type(raw).__name__}")
        return ends
    for index, wire in enumerate(raw):
        if isinstance(wire, str):
            ends.append((wire, 0))
        elif isinstance(wire, dict) and isinstance(wire.get("id"), str):
            port = wire.get("port", 0)
            if isinstance(port, str) and port.isdigit():
                port = int(port)
            if not isinstance(port, int) or isinstance(port, bool) or port < 0:
                problems.append(f"{where}[{index}]: invalid port {port!r}")
                continue
            ends.append((wire["id"], port))
        else:
            problems.append(f"{where}[{index}]: expected a node id or {{id, port}}")
    return ends


def _read(path: pathlib.Path, out: Imported) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        out.problems.append(f"{path}: cannot read flows: {exc}")
        return []
    if isinstance(data, dict) and isinstance(data.get("flows"), list):
        data = data["flows"]  # the editor's {"rev", "flows"} form
    if not isinstance(data, list):
        out.problems.append(f"{path}: expected a JSON array of flow objects")
        return []
    return [o for o in data if isinstance(o, dict) and isinstance(o.get("id"), str)]


def _select(
    path: pathlib.Path, objects: list[dict[str, Any]], types: Mapping[str, Any], out: Imported
) -> dict[str, dict[str, Any]]:
    """The enabled nodes of a type that has a Python file, by id."""
    disabled_tabs = {
        o["id"] for o in objects if o.get("type") == "tab" and o.get("disabled") is True
    }
    wanted: dict[str, dict[str, Any]] = {}
    skipped_types: dict[str, int] = {}
    for obj in objects:
        kind = obj.get("type")
        if not isinstance(kind, str) or kind == "tab" or kind.startswith("subflow"):
            continue
        if obj.get("d") is True or obj.get("z") in disabled_tabs or "z" not in obj:
            continue  # disabled, or a config node (no flow): settings, not a process
        if kind not in types:
            skipped_types[kind] = skipped_types.get(kind, 0) + 1
            continue
        wanted[obj["id"]] = obj
    for kind, count in sorted(skipped_types.items()):
        out.warnings.append(
            f"{path}: {count} node(s) of type {kind!r} skipped (no Python file in "
            f"[nodes].types)"
        )
    return wanted


def _targets(
    where: str, ends: list[tuple[str, int]], wanted: Mapping[str, Any], out: Imported
) -> list[Target]:
    targets = []
    for target, port in ends:
        if target not in wanted:
            out.warnings.append(
                f"{where}: wire to {target!r} dropped (not a Python node that runs here)"
            )
            continue
        try:
            targets.append(Target(Address(NODE, target, str(port))))
        except InvalidAddress as exc:
            out.problems.append(f"{where}: {exc}")
    return targets


def import_flows(path: pathlib.Path, types: Mapping[str, Mapping[str, Any]]) -> Imported:
    """Read ``path`` and build the nodes whose type ``types`` maps to a Python file."""
    out = Imported()
    wanted = _select(path, _read(path, out), types, out)
    incoming_ports: dict[str, int] = {}
    ends_by_node: dict[str, list[list[tuple[str, int]]]] = {}
    for node_id, obj in wanted.items():
        where = f"{path}: node {node_id}"
        raw_wires = obj.get("wires", [])
        if not isinstance(raw_wires, list):
            out.problems.append(f"{where}.wires: expected a list per output")
            raw_wires = []
        per_output = [
            _wire_ends(w, f"{where}.wires[{i}]", out.problems) for i, w in enumerate(raw_wires)
        ]
        ends_by_node[node_id] = per_output
        for ends in per_output:
            for target, port in ends:
                incoming_ports[target] = max(incoming_ports.get(target, 0), port + 1)
    for node_id, obj in wanted.items():
        where = f"{path}: node {node_id}"
        problem = check_node_id(node_id)
        if problem:
            out.problems.append(f"{where}: {problem}")
            continue
        options = types[obj["type"]]
        wires = [
            _targets(f"{where}.wires[{output}]", ends, wanted, out)
            for output, ends in enumerate(ends_by_node[node_id])
        ]
        inputs = options.get("inputs", -1)
        outputs = options.get("outputs", -1)
        catch: str | tuple[str, ...] = options.get("catch", "")
        if obj["type"] == "catch" and not catch:
            scope = obj.get("scope")
            catch = (
                tuple(s for s in scope if isinstance(s, str))
                if isinstance(scope, list) else CATCH_FLOW
            )
        out.nodes.append(
            NodeSpec(
                id=node_id,
                file=pathlib.Path(options["file"]),
                flow=str(obj.get("z") or ""),
                type=obj["type"],
                name=str(obj.get("name") or ""),
                interpreter=str(options.get("interpreter", "")),
                inputs=inputs if inputs >= 0 else max(1, incoming_ports.get(node_id, 0)),
                outputs=outputs if outputs >= 0 else len(wires),
                wires=wires,
                info=obj,
                catch=catch,
                origin=where,
                wire=str(options.get("wire", "")),
            )
        )
    return out
