"""The bus events the services world publishes besides the core ones, and how services
receive events: as plain dicts.

``ServiceMessage`` is published on ``service/<id>/message`` for every ``SubmitMessage`` (the
``com`` service) and on ``service/<id>/track`` for every ``Track``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from hadaemon.bus import Event, segment
from hadaemon.sentinels import UNKNOWN


@dataclass(frozen=True, slots=True)
class ServiceMessage(Event):
    """Telemetry from a service: ``kind`` is ``message`` (SubmitMessage) or ``track``."""

    MESSAGE: ClassVar[str] = "message"
    TRACK: ClassVar[str] = "track"

    service: str
    kind: str
    payload: Any
    description: str | None = None

    @property
    def topic(self) -> str:
        return f"service/{segment(self.service)}/{segment(self.kind)}"


def event_to_dict(event: Event) -> dict[str, Any]:
    """A bus event as the plain dict a subscribed service receives in ``msg.message[0]``.

    ``type`` is the event class name and ``topic`` its topic; fields follow. Values not yet
    known (``UNKNOWN``) become None, mappings become dicts: service code reads plain data.
    """
    out: dict[str, Any] = {"type": type(event).__name__, "topic": event.topic}
    fields: tuple[dataclasses.Field[Any], ...] = (
        dataclasses.fields(event) if dataclasses.is_dataclass(event) else ()
    )
    for f in fields:
        out[f.name] = _plain(getattr(event, f.name))
    return out


def _plain(value: Any) -> Any:
    if value is UNKNOWN:
        return None
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


__all__ = ["ServiceMessage", "event_to_dict"]
