"""Plugins for the containment tests: a line protocol to drive the daemon from the test,
and plugin code that raises KeyboardInterrupt in a bus handler, a subscriber and a hook.

The test connects to ``[trigger].socket`` and sends a line ``<address> <json>``; the
trigger sends it on the bus and answers ``ok <result>`` or ``failed <error message>``.
"""

from __future__ import annotations

import json
import os
from typing import Any

from twisted.internet import protocol
from twisted.internet.endpoints import UNIXServerEndpoint
from twisted.protocols.basic import LineOnlyReceiver

from hadaemon.bus import ErrorEvent, Level
from hadaemon.config import Section, Str
from hadaemon.plugin import Plugin


class _Lines(LineOnlyReceiver):
    delimiter = b"\n"

    def __init__(self, plugin: Trigger) -> None:
        self.plugin = plugin

    def lineReceived(self, line: bytes) -> None:
        address, _, message = line.decode().partition(" ")
        d = self.plugin.bus.send(address, json.loads(message or "null"))
        d.addCallbacks(lambda result: f"ok {result}",
                       lambda failure: f"failed {failure.getErrorMessage()}")
        d.addCallback(lambda text: self.sendLine(text.replace("\n", " ").encode()))


class Trigger(Plugin):
    name = "trigger"
    schema = Section({"socket": Str()})

    def start(self) -> Any:
        self.endpoints = [
            self.bus.register("test:bare", self.bare),
            self.bus.register("test:publish", self.publish),
        ]
        self.subscription = self.bus.subscribe("error/test/+", self.subscriber)
        factory = protocol.Factory.forProtocol(lambda: _Lines(self))
        path = self.config["socket"]
        d = UNIXServerEndpoint(self.reactor, path).listen(factory)
        d.addCallback(lambda port: setattr(self, "port", port))
        return d

    def bare(self, address: Any, message: Any) -> Any:
        raise KeyboardInterrupt("from a bare bus handler")

    def publish(self, address: Any, message: Any) -> str:
        self.bus.publish(ErrorEvent("test", str(message), Level.INFO))
        return "published"

    def subscriber(self, event: Any) -> None:
        raise KeyboardInterrupt("from a bus subscriber")

    def stop(self) -> Any:
        for endpoint in self.endpoints:
            endpoint.unregister()
        self.subscription.cancel()
        return self.port.stopListening()


class InterruptsCreate(Plugin):
    name = "interruptscreate"

    def __init__(self, context: Any) -> None:
        raise KeyboardInterrupt("from a plugin's constructor")


class InterruptsStart(Plugin):
    name = "interruptsstart"

    def start(self) -> None:
        raise KeyboardInterrupt("from a plugin's start")


class InterruptsStop(Plugin):
    name = "interruptsstop"
    schema = Section({"dir": Str()})

    def stop(self) -> None:
        with open(os.path.join(self.config["dir"], "stop-called"), "w"):
            pass
        raise KeyboardInterrupt("from a plugin's stop")
