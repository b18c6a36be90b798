"""heartbeat: a system variable that counts up while the daemon is alive."""

from __future__ import annotations

from twisted.internet.task import LoopingCall

from hadaemon.config import Float, Section, Str
from hadaemon.plugin import Plugin


class Heartbeat(Plugin):
    """Sets a system variable every few seconds, so anything can see the daemon is alive."""

    name = "heartbeat"
    description = "counts up a system variable while the daemon is alive"
    schema = Section(
        {
            "interval": Float(default=10.0, min=0.1, doc="Seconds between beats."),
            "variable": Str(default="heartbeat", non_empty=True, doc="System variable name."),
        }
    )

    _loop: LoopingCall | None = None

    def start(self) -> None:
        self._count = 0
        self._loop = LoopingCall(self._beat)
        self._loop.clock = self.reactor
        self._loop.start(self.config["interval"], now=True)

    def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()

    def _beat(self) -> None:
        self._count += 1
        self.registry.set_system_variable(self.config["variable"], self._count)
