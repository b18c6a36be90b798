"""A plugin for the embedding tests: bus endpoints, a child process, lifecycle markers."""

from __future__ import annotations

import os
import pathlib
from typing import Any

from twisted.internet import protocol
from twisted.internet.defer import Deferred

from hadaemon.bus import Address
from hadaemon.config import Bool, Section, Str
from hadaemon.plugin import Plugin


class _Child(protocol.ProcessProtocol):
    def __init__(self) -> None:
        self.ended: Deferred[None] = Deferred()

    def processEnded(self, reason: Any) -> None:
        self.ended.callback(None)


class EmbedTest(Plugin):
    name = "embedtest"
    schema = Section({"dir": Str(), "child": Bool(default=False)})

    def start(self) -> None:
        self.dir = pathlib.Path(self.config["dir"])
        self.seen: list[Any] = []
        self.endpoints = [
            self.bus.register("service:echo_py", self.echo),
            self.bus.register("node:n1", self.node_input),
        ]
        self.child: _Child | None = None
        if self.config["child"]:
            self.child = _Child()
            transport = self.reactor.spawnProcess(
                self.child, "/bin/sleep", ["sleep", "1000"], env=os.environ
            )
            # Atomically: the test reads it as soon as it appears.
            (self.dir / "child.pid.tmp").write_text(str(transport.pid))
            (self.dir / "child.pid.tmp").replace(self.dir / "child.pid")
        (self.dir / "started").write_text("")

    def echo(self, address: Address, message: Any) -> Any:
        self.seen.append((address.path, message))
        return {"action": address.path, "message": message}

    def node_input(self, address: Address, message: Any) -> str:
        self.seen.append((address.path, message))
        return f"input {address.path}"

    def stop(self) -> Deferred[None] | None:
        for endpoint in self.endpoints:
            endpoint.unregister()
        (self.dir / "stopped").write_text("")
        if self.child is not None:
            pid = int((self.dir / "child.pid").read_text())
            self.reactor.callLater(0, os.kill, pid, 15)
            return self.child.ended
        return None
