"""What the daemon knows about one configured node while the plugin runs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from twisted.logger import Logger

from hadaemon.bus.topics import Matcher, matcher
from hadaemon.nodes.delivery import NodeInputs
from hadaemon.nodes.flows import NodeSpec
from hadaemon.nodes.link import NodeLink

ALL_EVENTS = "variable/#"


def compile_filter(patterns: Sequence[str]) -> list[Matcher] | None:
    """Topic predicates for a node's event filter; None means every event (the default)."""
    if ALL_EVENTS in patterns:
        return None
    return [matcher(p) for p in patterns]


class NodeRuntime:
    """One node: its spec, its input queue, its current connection and its status.

    The supervisor keeps the process side (``process``, ``pid``); the dispatcher the
    connection side (``link``, ``ready``). Reactor thread only.
    """

    def __init__(self, spec: NodeSpec, inputs: NodeInputs, log: Logger) -> None:
        self.spec = spec
        self.inputs = inputs
        self.log = log
        self.link: NodeLink | None = None
        self.ready = False  # connected, authenticated and answered ping
        self.startup_sent = False  # startUpComplete sent to the current process
        self.status: dict[str, Any] = {}  # as the node set it with nodeEvent("status/...")
        self.filters = compile_filter(spec.events)
        self.events_dropped = 0
        self.process = "stopped"
        self.pid: int | None = None

    @property
    def id(self) -> str:
        return self.spec.id

    def snapshot(self) -> dict[str, Any]:
        """The node's state for status displays and tests (plain values)."""
        return {
            "id": self.spec.id,
            "flowId": self.spec.flow,
            "type": self.spec.type,
            "process": self.process,
            "pid": self.pid,
            "connected": self.link is not None,
            "ready": self.ready,
            "status": dict(self.status),
            "queued": len(self.inputs.queue),
            "in_flight": self.inputs.in_flight,
            "delivered": self.inputs.delivered,
            "failed": self.inputs.failed,
            "dropped": self.inputs.dropped,
            "lost": self.inputs.lost,
            "events_dropped": self.events_dropped,
        }
