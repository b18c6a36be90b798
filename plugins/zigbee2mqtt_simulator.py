"""Example plugin: the zigbee2mqtt simulator with a little story of its own.

hadaemon ships the simulator as the ``zigbee2mqtt_simulator`` plugin (its code lives in
``hadaemon.zigbee.simulator``); this file shows how to give it a script. Every ``every``
seconds someone walks through the hall (the motion sensor reports occupancy, and no
occupancy ``stay`` seconds later) and presses the remote's toggle button, so automations
have something to react to. Enable it instead of the plain simulator::

    [daemon]
    plugins = ["mqtt", "zigbee2mqtt_story", "zigbee2mqtt"]

    [zigbee2mqtt_story]
    every = 20.0
"""

from __future__ import annotations

from typing import ClassVar

from twisted.internet.task import LoopingCall

from hadaemon.config import Float, Section
from hadaemon.zigbee.simulator_plugin import SCHEMA, SimulatorPlugin


class StorySimulator(SimulatorPlugin):
    """The sample network, plus someone walking through the hall now and then."""

    name = "zigbee2mqtt_story"
    description = "simulated zigbee2mqtt with a scripted motion sensor and remote"
    schema: ClassVar[Section] = Section({
        **SCHEMA.fields,
        "every": Float(default=20.0, min=1.0, doc="Seconds between two walks."),
        "stay": Float(default=5.0, min=0.1, doc="Seconds the sensor sees someone."),
    })

    _story: LoopingCall | None = None

    def start(self) -> None:
        super().start()
        self._story = LoopingCall(self.walk_by)
        self._story.clock = self.reactor
        self._story.start(self.config["every"], now=False)

    def walk_by(self) -> None:
        simulator = self.simulator
        if simulator is None or "Hall motion" not in simulator.devices:
            return
        simulator.report("Hall motion", {"occupancy": True})
        simulator.report("Tradfri remote", {"action": "toggle"})
        self.reactor.callLater(self.config["stay"], simulator.report, "Hall motion",
                               {"occupancy": False})

    def stop(self) -> object:
        if self._story is not None and self._story.running:
            self._story.stop()
        return super().stop()
