"""Example plugin: warn when a variable crosses a threshold.

Copy this file to start your own plugin. A plugin is a Twisted service (``Plugin`` is a
``twisted.application.service.Service``) with a name, a config schema, and ``start`` /
``stop`` hooks (which may be ``async def``). Enable it with
``[daemon] plugins = [..., "threshold_alert"]`` and configure it in ``[threshold_alert]``.
"""

from __future__ import annotations

from hadaemon.bus import ErrorEvent, Level, Subscription, VariableChanged
from hadaemon.config import Float, Section, Str
from hadaemon.plugin import Plugin


class ThresholdAlert(Plugin):
    """Publishes a warning on the bus when a numeric variable goes above a limit."""

    name = "threshold_alert"
    description = "warns when a variable crosses a threshold"
    schema = Section(
        {
            "variable": Str(default="temperature", doc="Variable name to watch."),
            "above": Float(default=30.0, doc="Warn when the value rises above this."),
        }
    )

    _sub: Subscription | None = None

    def start(self) -> None:
        self._alerting: set[tuple[int, int]] = set()
        self._sub = self.registry.subscribe(self._check, name=self.config["variable"],
                                            subscriber="threshold_alert")

    def stop(self) -> None:
        if self._sub is not None:
            self._sub.cancel()

    def _check(self, event: VariableChanged) -> None:
        if not isinstance(event.value, int | float) or isinstance(event.value, bool):
            return
        where = (event.peer_id, event.channel)
        if event.value > self.config["above"] and where not in self._alerting:
            self._alerting.add(where)
            message = (
                f"{event.name} of device {event.peer_id} is {event.value}, above "
                f"{self.config['above']}"
            )
            self.log.warn("{message}", message=message)
            self.bus.publish(ErrorEvent(f"plugin:{self.name}", message, Level.WARNING))
        elif event.value <= self.config["above"]:
            self._alerting.discard(where)
