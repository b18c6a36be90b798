"""What a reload changes in the nodes: which nodes a new config adds, removes or changes,
and whether a node's saved file can run at all (plain functions, no I/O but reading the
file).

A node *changed* when its own settings changed: its file, interpreter, environment,
wire, inputs, outputs, event filter, catch scope, flow, type, name, ``info`` or its wires
(out; as Node-RED, a wire belongs to the node it leaves). Such a node is restarted. A
node whose settings are the same but whose ``nodeInfo`` is not (a wire to it was added or
removed: nodeInfo lists the wires in too) is *rewired*: it keeps its process and is
handed its new nodeInfo. Every other node is untouched. Moving a node within the config
(its ``origin``) is no change.
"""

from __future__ import annotations

import dataclasses
import pathlib
import sys
from dataclasses import dataclass

from hadaemon.nodes.flows import Flows, NodeSpec, resolve_interpreter
from hadaemon.nodes.settings import NodesSettings
from hadaemon.reload.errors import CodeError, code_error

IN_PLACE = frozenset({"node", "flows_file", "types", "default_flow", "wire", "interpreter"})
"""``[nodes]`` keys a reload applies node by node; any other changed key restarts the
plugin (socket, spawner, limits and policies are fixed while it runs)."""


@dataclass(frozen=True)
class FlowsChange:
    """The nodes a new set of flows adds, removes and changes (ids, in config order)."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]
    rewired: tuple[str, ...]
    unchanged: tuple[str, ...]

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed or self.rewired)

    def describe(self) -> str:
        parts = [f"{what} {', '.join(ids)}" for what, ids in (
            ("added", self.added), ("removed", self.removed), ("restarted", self.changed),
            ("given a new nodeInfo", self.rewired)) if ids]
        return "; ".join(parts) or "no node changed"


def restart_keys(old: NodesSettings, new: NodesSettings) -> list[str]:
    """The changed ``[nodes]`` keys that cannot be applied node by node."""
    return [f.name for f in dataclasses.fields(old)
            if f.name not in IN_PLACE and getattr(old, f.name) != getattr(new, f.name)]


def compare(old: Flows, new: Flows, old_interpreter: str, new_interpreter: str) -> FlowsChange:
    """How ``new`` differs from ``old`` (the interpreters are the section's defaults)."""
    added = tuple(i for i in new.nodes if i not in old.nodes)
    removed = tuple(i for i in old.nodes if i not in new.nodes)
    changed: list[str] = []
    rewired: list[str] = []
    unchanged: list[str] = []
    for node_id, spec in new.nodes.items():
        if node_id not in old.nodes:
            continue
        if _own_view(old.nodes[node_id], old_interpreter) != _own_view(spec, new_interpreter):
            changed.append(node_id)
        elif old.node_info(node_id) != new.node_info(node_id):
            rewired.append(node_id)
        else:
            unchanged.append(node_id)
    return FlowsChange(added, removed, tuple(changed), tuple(rewired), tuple(unchanged))


def _own_view(spec: NodeSpec, interpreter: str) -> tuple[object, ...]:
    """A node's own settings (see the module docstring)."""
    return (
        spec.file.resolve(), spec.interpreter or interpreter, sorted(spec.env.items()),
        spec.wire, spec.inputs, spec.outputs, spec.events, spec.catch, spec.flow, spec.type,
        spec.name, spec.info, spec.wires,
    )


def check_code(spec: NodeSpec, interpreter: str, base_dir: pathlib.Path) -> CodeError | None:
    """Whether a node's file can run: it exists and (when the node runs on the daemon's
    own Python, whose grammar this is) compiles. Its imports are only known once it runs:
    a node that fails there exits, and is restarted with the usual backoff."""
    path = spec.file
    try:
        source = path.read_bytes()
    except OSError as exc:
        return CodeError(str(path), None, f"cannot read the node file: {exc.strerror or exc}")
    own = resolve_interpreter(spec.interpreter or interpreter, base_dir) == sys.executable
    if not own or path.suffix != ".py":
        return None
    try:
        compile(source, str(path), "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as exc:  # ValueError: NUL bytes in the source
        return code_error(exc, path)
    return None


__all__ = ["IN_PLACE", "FlowsChange", "check_code", "compare", "restart_keys"]
