"""A test plugin: sends numbered bus messages when triggered and writes each outcome, and
logs the events it watches. The fault tests read what it wrote.

Each line of ``out`` is ``ok <seq> <result>`` or ``fail <seq> <error type>: <message>``,
with the seconds the send took (``took <s>``): a refusal that comes at once and one
that waited for a timeout are told apart.
"""

from __future__ import annotations

import json
import time
from typing import Any, ClassVar

from twisted.internet.task import LoopingCall
from twisted.python.failure import Failure

from hadaemon.bus import DeviceChanged, Event, Lifecycle, Subscription, VariableChanged
from hadaemon.config import Float, Int, List, Section, Str
from hadaemon.plugin import Plugin


class FedProbe(Plugin):
    name = "fedprobe"
    schema: ClassVar[Section] = Section({
        "trigger": Str(default="", doc="Event pattern that starts a round of sends."),
        "send_to": List(Str(), default=[], doc="Addresses each round sends to."),
        "count": Int(default=1, min=1, doc="Messages per address per round."),
        "pace": Float(default=0.0, min=0.0, doc="Seconds between two messages."),
        "out": Str(default="probe.out", doc="Where outcomes are written."),
        "watch": List(Str(), default=[], doc="Event patterns logged as they come."),
        "list_every": Float(default=0.0, min=0.0,
                            doc="Seconds between two logs of the registry's devices (0: none)."),
    })

    def start(self) -> None:
        self._subs: list[Subscription] = []
        self._round = 0
        self._out = open(self.config["out"], "a", buffering=1)  # noqa: SIM115 (closed in stop)
        if self.config["trigger"]:
            self._subs.append(self.bus.subscribe(self.config["trigger"], self._go,
                                                 name="fedprobe: trigger"))
        for pattern in self.config["watch"]:
            self._subs.append(self.bus.subscribe(pattern, self._seen, name="fedprobe: watch"))
        self._lister: LoopingCall | None = None
        if self.config["list_every"]:
            self._lister = LoopingCall(self._list)
            self._lister.clock = self.reactor
            self._lister.start(self.config["list_every"])

    def stop(self) -> None:
        if self._lister is not None:
            self._lister.stop()
        for sub in self._subs:
            sub.cancel()
        self._out.close()

    def _list(self) -> None:
        devices = sorted([d.source, d.name] for d in self.registry.devices())
        self.log.info("fedprobe devices: {devices}", devices=json.dumps(devices))

    def _seen(self, event: Event) -> None:
        if isinstance(event, VariableChanged):
            self.log.info("fedprobe saw {source} {peer} {name}={value!r}",
                          source=event.source, peer=event.peer_id, name=event.name,
                          value=event.value)
        elif isinstance(event, DeviceChanged):
            self.log.info("fedprobe saw device {change} {source} {peer} {name!r}",
                          change=event.change, source=event.source, peer=event.peer_id,
                          name=event.name)
        elif isinstance(event, Lifecycle):
            self.log.info("fedprobe saw {component} {state} {details!r}",
                          component=event.component, state=event.state,
                          details=dict(event.details or {}))

    def _go(self, event: Event) -> None:
        self._round += 1
        self.log.info("fedprobe round {round}", round=self._round)
        self._send(0, self._round)

    def _send(self, seq: int, round_: int) -> None:
        if seq >= self.config["count"]:
            return
        for address in self.config["send_to"]:
            started = time.monotonic()
            number = (round_ - 1) * self.config["count"] + seq
            d = self.bus.send(address, {"seq": number, "round": round_},
                              sender="fedprobe:a")
            d.addBoth(self._outcome, address, number, started)
        self.reactor.callLater(self.config["pace"], self._send, seq + 1, round_)

    def _outcome(self, result: Any, address: str, seq: int, started: float) -> None:
        took = time.monotonic() - started
        if isinstance(result, Failure):
            self._out.write(f"fail {seq} {address} {getattr(result.type, '__name__', '?')}: "
                            f"{result.getErrorMessage()} took {took:.3f}\n")
        else:
            self._out.write(f"ok {seq} {address} {result!r} took {took:.3f}\n")
