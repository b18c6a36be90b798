"""changelog: logs every variable change and bus error, so a running daemon is visible."""

from __future__ import annotations

from twisted.logger import LogLevel

from hadaemon.bus import ErrorEvent, Event, Subscription, VariableChanged
from hadaemon.config import Bool, Choice, Section, Str
from hadaemon.logs import LEVEL_NAMES
from hadaemon.plugin import Plugin


class ChangeLog(Plugin):
    """Writes one log line per variable change (and per error event, if asked)."""

    name = "changelog"
    description = "logs every variable change"
    schema = Section(
        {
            "pattern": Str(default="variable/#", doc="Topic pattern of the events to log."),
            "level": Choice(*LEVEL_NAMES, default="info", doc="Level of the log lines."),
            "errors": Bool(default=True, doc="Also log error events from the bus."),
        }
    )

    def start(self) -> None:
        self._level = LEVEL_NAMES[self.config["level"]]
        self._subs: list[Subscription] = [
            self.bus.subscribe(self.config["pattern"], self._on_event, name="changelog")
        ]
        if self.config["errors"]:
            self._subs.append(
                self.bus.subscribe("error/#", self._on_event, name="changelog errors")
            )

    def stop(self) -> None:
        for sub in self._subs:
            sub.cancel()

    def _on_event(self, event: Event) -> None:
        if isinstance(event, VariableChanged):
            device = (
                "system" if event.peer_id == 0 else self._device_name(event.peer_id)
            )
            verb = "fired" if event.is_event else "="
            self.log.emit(
                self._level,
                "{device} [{peer_id}/{channel}] {variable} {verb} {value!r}",
                device=device,
                peer_id=event.peer_id,
                channel=event.channel,
                variable=event.name,
                verb=verb,
                value=event.value,
            )
        elif isinstance(event, ErrorEvent):
            # The source already logged the details; this is the bus's view of it.
            if event.source.startswith("plugin:changelog"):
                return
            self.log.emit(
                LogLevel.warn if event.level >= 3 else LogLevel.error,
                "{source}: {message}",
                source=event.source,
                message=event.message,
            )
        else:
            self.log.emit(self._level, "{topic}: {event!r}", topic=event.topic, event=event)

    def _device_name(self, peer_id: int) -> str:
        try:
            return self.registry.device(peer_id).name
        except Exception:
            return f"device {peer_id}"
