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

import ast
import dataclasses
import importlib.machinery
import os
import pathlib
import sys
from dataclasses import dataclass

from hadaemon.nodes.client import CLIENT_DIR
from hadaemon.nodes.flows import WIRE_BINRPC, Flows, NodeSpec, resolve_interpreter
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
    """Whether a node's file can run, as far as can be told without running it (which
    would act on the home): it can be read and, when the node runs on the daemon's own
    Python (whose grammar and modules these are), it compiles and the modules it imports
    unconditionally at its top level exist on the node's path (:func:`missing_import`).
    What fails later (an import inside ``try`` or a function, an exception at start-up)
    makes the new process exit: it is restarted with the usual backoff."""
    path = spec.file
    try:
        source = path.read_bytes()
    except OSError as exc:
        return CodeError(str(path), None, f"cannot read the node file: {exc.strerror or exc}")
    own = resolve_interpreter(spec.interpreter or interpreter, base_dir) == sys.executable
    if not own or path.suffix != ".py":
        return None
    try:
        tree = ast.parse(source, str(path))
        compile(tree, str(path), "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as exc:  # ValueError: NUL bytes in the source
        return code_error(exc, path)
    if b"sys.path" in source or b"addsitedir" in source:
        return None  # it changes its own path: only running it tells
    return missing_import(tree, str(path), node_path(spec))


def node_path(spec: NodeSpec) -> list[str]:
    """Where the node's imports are looked for (as a fresh interpreter started by the
    supervisor sets ``sys.path``): the file's directory, hadaemon's client (on the msgpack
    wire), the node's ``PYTHONPATH``, then the interpreter's own (the daemon's, but for
    its script directory)."""
    folder = str(spec.file.parent)
    env = dict(os.environ)
    env.update(spec.env)
    extra = [p if os.path.isabs(p) else os.path.join(folder, p)
             for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    client = [CLIENT_DIR] if spec.wire != WIRE_BINRPC else []
    return [folder, *client, *extra, *(p for p in sys.path[1:] if p)]


def missing_import(tree: ast.Module, file: str, path: list[str]) -> CodeError | None:
    """The first top-level, unconditional ``import x`` / ``from x import ...`` whose
    top-level module is nowhere on ``path`` (found without running anything)."""
    for statement in tree.body:
        if isinstance(statement, ast.Import):
            names = [alias.name for alias in statement.names]
        elif isinstance(statement, ast.ImportFrom) and statement.level == 0 and statement.module:
            names = [statement.module]
        else:
            continue
        for name in names:
            top = name.partition(".")[0]
            if not _findable(top, path):
                return CodeError(file, statement.lineno,
                                 f"ModuleNotFoundError: No module named {top!r}")
    return None


def _findable(name: str, path: list[str]) -> bool:
    if name in sys.builtin_module_names:
        return True
    if importlib.machinery.FrozenImporter.find_spec(name) is not None:
        return True
    try:
        return importlib.machinery.PathFinder.find_spec(name, path) is not None
    except (ImportError, ValueError):
        return True  # not for this check to say


__all__ = ["IN_PLACE", "FlowsChange", "check_code", "compare", "missing_import", "node_path",
           "restart_keys"]
