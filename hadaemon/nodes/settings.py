"""The ``[nodes]`` config section, declared once in :class:`NodesSettings` (see
docs/nodes.md).

Nodes and their wires are listed as ``[[nodes.node]]`` tables and/or imported from a
Node-BLUE/Node-RED ``flows.json`` (``flows_file`` with a ``types`` map from node type to
Python file).
"""

from __future__ import annotations

import datetime
import pathlib
from dataclasses import dataclass
from typing import Any, ClassVar

from hadaemon.backoff import Backoff
from hadaemon.config import (
    Bool,
    Choice,
    Float,
    Int,
    List,
    Map,
    Path,
    Section,
    Settings,
    Str,
    Table,
    setting,
)
from hadaemon.config.errors import KeyPath, show_value
from hadaemon.config.schema import Context, Field, Invalid

MIB = 1024 * 1024
STOP_MARGIN = 2.0
"""Seconds the plugin's stop may take beyond the grace period (killing and reaping)."""


class AnyValue(Field):
    """Any TOML value that fits hadaemon's value model (dates and times do not)."""

    kind = "any value"

    def convert(self, value: Any, ctx: Context, path: KeyPath) -> Any:
        return _plain(value)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime.date | datetime.time):
        raise Invalid(f"dates and times cannot be passed to a node, got {show_value(value)}; "
                      "use a string")
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


_WIRE_TABLE = Section(
    {
        "id": Str(default="", doc="Target node id."),
        "port": Int(default=0, min=0, doc="Target node input."),
        "address": Str(default="", doc="Any bus address instead of a node."),
        "payload_only": Bool(default=False, doc="Send msg.payload, not the whole msg."),
    }
)


class WireField(Field):
    """A wire: ``"n2"`` (node n2, input 0), ``{id = "n2", port = 1}``, or a bus address
    (``"service:echo/ping"``, ``{address = "device:3", payload_only = true}``)."""

    kind = 'a node id, a bus address, or a table {id, port} / {address}'

    def convert(self, value: Any, ctx: Context, path: KeyPath) -> Any:
        if isinstance(value, str):
            if not value:
                raise Invalid("expected a node id or a bus address, got an empty string")
            return {"address": value} if ":" in value else {"id": value, "port": 0}
        if not isinstance(value, dict):
            raise Invalid(f"expected {self.kind}, got {show_value(value)}")
        table = _WIRE_TABLE.validate(value, ctx, path)
        if bool(table.get("id")) == bool(table.get("address")):
            raise Invalid("a wire table has either 'id' (a node) or 'address' (any bus address)")
        if table.get("address"):
            return {"address": table["address"], "payload_only": table["payload_only"]}
        return {"id": table["id"], "port": table["port"]}


_TYPE_TABLE = Section(
    {
        "file": Path(must_exist=True, kind="file", doc="The Python file of this node type."),
        "inputs": Int(default=-1, min=-1, doc="Inputs (-1: as many as are wired)."),
        "outputs": Int(default=-1, min=-1, doc="Outputs (-1: as many as wires lists)."),
        "interpreter": Str(default="", doc="Python to run it with."),
        "catch": Choice("", "flow", "all", default="", doc="Receive errors (catch node)."),
        "wire": Choice("", "msgpack", "binrpc", default="",
                       doc="Its wire (default: [nodes].wire)."),
    }
)


class NodeTypeField(Field):
    """A flows.json node type: its Python file, or a table with ``file`` and options."""

    kind = "a path or a table {file, inputs, outputs, interpreter, catch}"

    def convert(self, value: Any, ctx: Context, path: KeyPath) -> Any:
        if isinstance(value, str):
            value = {"file": value}
        if not isinstance(value, dict):
            raise Invalid(f"expected {self.kind}, got {show_value(value)}")
        return _TYPE_TABLE.validate(value, ctx, path)


NODE = Section(
    {
        "id": Str(non_empty=True, doc="Node id (unique; no '/', ':' or spaces)."),
        "file": Path(must_exist=True, kind="file", doc="The node's Python file."),
        "flow": Str(default="", doc="Flow (tab) id; default: [nodes].default_flow."),
        "type": Str(default="", doc="Node type (default: the file name without .py)."),
        "name": Str(default="", doc="Display name."),
        "interpreter": Str(default="", doc="Python to run it with (default: [nodes])."),
        "inputs": Int(default=1, min=0, max=1000, doc="Number of inputs."),
        "outputs": Int(default=1, min=0, max=1000, doc="Number of outputs."),
        "wires": List(List(WireField()), default=[], doc="Per output, the wires."),
        "info": Map(AnyValue(), default={}, doc="Settings, seen as nodeInfo['info']."),
        "catch": Choice("", "flow", "all", default="",
                        doc="Receive the errors of its flow or of all flows."),
        "events": List(Str(), default=["variable/#"],
                       doc="Variable events it receives (topic patterns; [] for none)."),
        "env": Map(Str(), default={}, doc="Extra environment variables."),
        "disabled": Bool(default=False, doc="Configured but not run."),
        "wire": Choice("", "msgpack", "binrpc", default="",
                       doc="'msgpack': hadaemon's homegear module; 'binrpc': Homegear's "
                       "binary RPC, for the real homegear module (default: [nodes].wire)."),
    }
)

@dataclass(frozen=True, kw_only=True)
class NodesSettings(Settings):
    """The validated ``[nodes]`` section; also each node connection's limits."""

    section_doc: ClassVar[str] = "Homegear Node-BLUE Python nodes."

    socket_dir: pathlib.Path | None = setting(Path(
        default=None, doc="Directory of the node socket (made 0700); default: a 'run' "
        "directory in the plugin's state directory."))
    grace: float = setting(Float(
        default=30.0, min=0.0, doc="Seconds between SIGTERM and SIGKILL when stopping a node."))
    start_deadline: float = setting(Float(
        default=10.0, min=0.1, doc="startUpComplete is sent once every node started, or this "
        "many seconds after the start, whichever is first."))
    restart_delay: float = setting(Float(
        default=0.5, min=0.01, doc="First delay before restarting a node that exited."))
    restart_delay_max: float = setting(Float(
        default=60.0, min=0.01, doc="Cap of the restart backoff."))
    stable_after: float = setting(Float(
        default=10.0, min=0.1, doc="Seconds running after which the backoff starts over."))
    crash_loop_restarts: int = setting(Int(
        default=5, min=1, doc="Exits within crash_loop_window that mark a node as "
        "crash-looping."))
    crash_loop_window: float = setting(Float(
        default=60.0, min=0.1, doc="See crash_loop_restarts."))
    max_frame: int = setting(Int(
        default=16 * MIB, min=1024, doc="Largest message accepted from a node, in bytes."))
    auth_timeout: float = setting(Float(
        default=5.0, min=0.01, doc="Seconds a connection to the node socket has to "
        "authenticate (from its connect) before it is closed."))
    max_unauthenticated: int = setting(Int(
        default=64, min=1, doc="Connections that have not authenticated yet, at most, at "
        "once; one more is closed at connect (a node process the daemon started is always "
        "let in)."))
    max_buffer: int = setting(Int(
        default=4 * MIB, min=1024, doc="Bytes waiting to be sent to one node before events "
        "to it are dropped (or it is disconnected)."))
    overflow: str = setting(Choice(
        "drop", "disconnect", default="drop", doc="When max_buffer is exceeded: drop events "
        "to that node (counted), or disconnect it."))
    window: int = setting(Int(
        default=256, min=1, max=100000,
        doc="Inputs in flight to one node (sent, not yet answered)."))
    queue_size: int = setting(Int(
        default=1000, min=1, doc="Inputs waiting for one node before its senders are held "
        "back (four times this many, plus 512 per sending node: further messages are "
        "dropped, reported)."))
    stall_timeout: float = setting(Float(
        default=10.0, min=0.1, doc="A node answering no input this long while senders wait "
        "for it no longer holds them back."))
    call_timeout: float = setting(Float(
        default=30.0, min=0.1, doc="Seconds a node's call waits for an answer (and, on the "
        "binary wire, the daemon's calls to a node)."))
    interpreter: str = setting(Str(
        default="", doc="Python for all nodes (default: the daemon's)."))
    spawn: str = setting(Choice(
        "fork", "exec", default="fork", doc="How nodes are started: 'fork' from a spawner "
        "that has the interpreter started and the node client imported (falls back to exec "
        "for a node it cannot start as a fresh interpreter would, see docs/nodes.md), or "
        "'exec' a fresh interpreter for each."))
    wire: str = setting(Choice(
        "msgpack", "binrpc", default="msgpack", doc="The wire of nodes that name none: "
        "'msgpack' (hadaemon's homegear module, put first on their path) or 'binrpc' "
        "(Homegear's binary RPC, for the real homegear module they import themselves)."))
    default_flow: str = setting(Str(
        default="flow", non_empty=True, doc="Flow id of configured nodes that name none."))
    flows_file: pathlib.Path | None = setting(Path(
        default=None, doc="A Node-BLUE/Node-RED flows.json to import."))
    types: dict[str, dict[str, Any]] = setting(Map(
        NodeTypeField(), default={}, doc="flows.json node type -> Python file (or {file, ...})."))
    node: list[dict[str, Any]] = setting(List(
        Table(NODE), default=[], doc="The nodes ([[nodes.node]] tables)."))

    @property
    def stop_timeout(self) -> float:
        """What the plugin's stop may take: the grace period, then killing and reaping."""
        return self.grace + STOP_MARGIN

    def restart_backoff(self) -> Backoff:
        """A node's restart delays: doubling per quick exit (the supervisor resets it once
        the node ran stable_after)."""
        return Backoff(self.restart_delay, self.restart_delay_max)


SCHEMA = NodesSettings.schema()


__all__ = ["NODE", "SCHEMA", "AnyValue", "NodeTypeField", "NodesSettings", "WireField"]
