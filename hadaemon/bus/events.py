"""The events every world publishes and receives, as typed dataclasses with topics.

Topics (field values escaped with :func:`hadaemon.bus.topics.segment`):

=====================  ==============================================================
``variable/<source>/<peer id>/<channel>/<name>``  a variable changed (or an event fired)
``lifecycle/<component>/<state>``                 started, stopping, connected, ...
``error/<source>/<level>``                        an error, warning or critical report
``status/<source>/<id>``                          a status update (e.g. a node's status)
``device/<source>/<peer id>/<change>``            a device added, removed, renamed
=====================  ==============================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, ClassVar

from hadaemon.bus.topics import segment
from hadaemon.sentinels import UNKNOWN


class Level(IntEnum):
    """Severity, numbered as Homegear's ``nodeLog`` levels (1 critical ... 5 debug)."""

    CRITICAL = 1
    ERROR = 2
    WARNING = 3
    INFO = 4
    DEBUG = 5


class Event:
    """Base of all bus events; ``topic`` says where it is published."""

    __slots__ = ()

    @property
    def topic(self) -> str:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class VariableChanged(Event):
    """A variable's value changed; for event variables (``is_event``), one per occurrence."""

    source: str
    peer_id: int
    channel: int
    name: str
    value: Any
    timestamp: float
    previous: Any = UNKNOWN
    is_event: bool = False

    @property
    def topic(self) -> str:
        return variable_topic(self.source, self.peer_id, self.channel, self.name)


def variable_topic(source: str, peer_id: int, channel: int, name: str) -> str:
    """The topic of a variable's :class:`VariableChanged` events (the registry keeps it
    per variable, so a report need not build it again)."""
    return f"variable/{segment(source)}/{peer_id}/{channel}/{segment(name)}"


@dataclass(frozen=True, slots=True)
class Lifecycle(Event):
    """A component changed state: the daemon's ``started``/``stopping``, a broker link..."""

    STARTED: ClassVar[str] = "started"
    STOPPING: ClassVar[str] = "stopping"
    STOPPED: ClassVar[str] = "stopped"
    CONNECTED: ClassVar[str] = "connected"
    RECONNECTED: ClassVar[str] = "reconnected"
    DISCONNECTED: ClassVar[str] = "disconnected"
    FAILED: ClassVar[str] = "failed"

    component: str
    state: str
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def topic(self) -> str:
        return f"lifecycle/{segment(self.component)}/{segment(self.state)}"


@dataclass(frozen=True, slots=True)
class ErrorEvent(Event):
    """Something went wrong in ``source``; flows' catch nodes and services watch these."""

    source: str
    message: str
    level: Level = Level.ERROR
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def topic(self) -> str:
        return f"error/{segment(self.source)}/{self.level.name.lower()}"


@dataclass(frozen=True, slots=True)
class StatusUpdate(Event):
    """A component's displayable status (a node's ``{"text", "shape", "fill"}``)."""

    source: str
    id: str
    status: Mapping[str, Any]

    @property
    def topic(self) -> str:
        return f"status/{segment(self.source)}/{segment(self.id)}"


@dataclass(frozen=True, slots=True)
class DeviceChanged(Event):
    """A device was added, removed, renamed or had its description updated."""

    ADDED: ClassVar[str] = "added"
    REMOVED: ClassVar[str] = "removed"
    RENAMED: ClassVar[str] = "renamed"
    UPDATED: ClassVar[str] = "updated"

    source: str
    peer_id: int
    change: str
    name: str

    @property
    def topic(self) -> str:
        return f"device/{segment(self.source)}/{self.peer_id}/{segment(self.change)}"
