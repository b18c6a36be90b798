"""The plugin ``benchmarks/federation.py`` runs in each daemon it starts.

Every host has ``devices`` devices of source ``fedbench`` (channel 0: ``stamp`` a float,
``level`` an int, both writable: a write is reported back at once, as a device that
confirms). The benchmark drives it with JSON commands on the MQTT topic
``fedbench/<host>/cmd`` and reads what it writes to ``fedbench-<what>.json`` in the
daemon's directory. Times are ``time.perf_counter()``: CLOCK_MONOTONIC on Linux, one
clock for every process of the machine, so a stamp taken on one host is read on another.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import LoopingCall

from hadaemon.bus import Event, Lifecycle, Subscription, VariableChanged
from hadaemon.config import Int, Section
from hadaemon.mqtt import Message
from hadaemon.plugin import Plugin
from hadaemon.registry import Access, ChannelSpec, Device, ValueType, VariableSpec

SOURCE = "fedbench"
FLOOD_BASE = 10_000  # the flood's values, each one new: counted where they arrive
SPEC = [ChannelSpec(0, [VariableSpec("stamp", ValueType.FLOAT, Access.ALL),
                        VariableSpec("level", ValueType.INT, Access.ALL)])]


class FedBench(Plugin):
    name = "fedbench"
    requires: ClassVar[tuple[str, ...]] = ("mqtt",)
    wants: ClassVar[tuple[str, ...]] = ("federation",)
    schema: ClassVar[Section] = Section({
        "devices": Int(default=0, min=0, doc="Devices of this host."),
        "run": Int(default=1, min=1, doc="Each device's first level (the run's number)."),
    })

    def start(self) -> None:
        self.host = self.context.daemon_config.core.name
        self.devices: list[Device] = []
        for i in range(self.config["devices"]):
            device = self.registry.add_device(SOURCE, f"d{i}", f"bench {i}", SPEC, self)
            self.registry.report_many(device.peer_id, 0, {"stamp": 0.0,
                                                          "level": self.config["run"]})
            self.devices.append(device)
        self.latency: dict[str, list[float]] = {"local": [], "remote": []}
        self.levels = 0  # the flood's level changes seen on mirrors (values >= FLOOD_BASE)
        self.local_levels = 0
        self.resync: dict[str, Any] = {}
        self._resync_state: dict[int, list[bool]] = {}
        self._loops: list[LoopingCall] = []
        self._subs: list[Subscription] = [
            self.bus.subscribe("variable/+/+/0/stamp", self._stamp, name="fedbench: stamps"),
            self.bus.subscribe("variable/+/+/0/level", self._level, name="fedbench: levels"),
            self.bus.subscribe("variable/+/+/0/available", self._available,
                               name="fedbench: availability"),
            self.bus.subscribe("lifecycle/federation/+", self._presence,
                               name="fedbench: presence"),
        ]
        mqtt = self.context.plugin("mqtt")
        assert mqtt is not None  # required
        self._cmd = mqtt.subscribe(f"fedbench/{self.host}/cmd", self._command, qos=1)
        self.log.info("fedbench ready: {count} device(s)", count=len(self.devices))

    def stop(self) -> None:
        self._cmd.cancel()
        for sub in self._subs:
            sub.cancel()
        for loop in self._loops:
            if loop.running:
                loop.stop()

    # -- what arrives -----------------------------------------------------------------

    def _stamp(self, event: Event) -> None:
        assert isinstance(event, VariableChanged)
        if event.value:
            local = event.source == SOURCE
            self.latency["local" if local else "remote"].append(
                time.perf_counter() - event.value)

    def _level(self, event: Event) -> None:
        assert isinstance(event, VariableChanged)
        flood = isinstance(event.value, int) and event.value >= FLOOD_BASE
        if event.source == SOURCE:
            self.local_levels += flood
            return
        self.levels += flood
        self._resync_step(event.peer_id, 1, event.value == self.resync.get("run"))

    def _available(self, event: Event) -> None:
        assert isinstance(event, VariableChanged)
        if event.source.startswith(f"{SOURCE}@"):
            self._resync_step(event.peer_id, 0, bool(event.value))

    def _presence(self, event: Event) -> None:
        assert isinstance(event, Lifecycle)
        if event.state == "host-online" and "run" in self.resync \
                and "online" not in self.resync:
            self.resync["online"] = time.perf_counter()

    def _resync_step(self, peer: int, index: int, ok: bool) -> None:
        if "run" not in self.resync or "done" in self.resync:
            return
        state = self._resync_state.setdefault(peer, [False, False])
        state[index] = ok
        if all(state):
            self.resync["ready"] = self.resync.get("ready", 0) + 1
            if self.resync["ready"] >= self.resync["devices"]:
                self.resync["done"] = time.perf_counter()

    # -- commands ---------------------------------------------------------------------

    def _command(self, message: Message) -> object:
        command = json.loads(message.payload)
        what = command["do"]
        if what == "stamps":
            self._stamps(command["count"], command["pace"])
            return None
        if what == "setvalue":
            return self._round_trips(command["source"], command["count"])
        if what == "flood":
            self._flood(command["rate"], command["seconds"])
            return None
        if what == "expect-resync":  # the owner restarts with run = `run`
            self.resync = {"run": command["run"], "devices": command["devices"],
                           "armed": time.perf_counter()}
            self._resync_state = {}
            return None
        if what == "dump":
            dumps: dict[str, Callable[[], Any]] = {
                "latency": lambda: self.latency,
                "levels": lambda: {"remote": self.levels, "local": self.local_levels},
                "resync": lambda: self.resync,
                "mirrors": lambda: sum(len(self.registry.devices(s)) for s in {
                    d.source for d in self.registry.devices()
                    if d.source.startswith(f"{SOURCE}@")}),
            }
            self._write(command["what"], dumps[command["what"]]())
            return None
        raise ValueError(f"unknown command {what!r}")

    def _write(self, what: str, data: Any) -> None:
        with open(f"fedbench-{what}.json", "w") as out:
            json.dump(data, out)

    def _stamps(self, count: int, pace: float) -> None:
        """The first device's stamp, ``count`` times, ``pace`` seconds apart."""
        device = self.devices[0]
        sent = [0]

        def one() -> None:
            self.registry.report(device.peer_id, 0, "stamp", time.perf_counter())
            sent[0] += 1
            if sent[0] >= count:
                loop.stop()
                self._write("stamps", {"sent": sent[0]})

        loop = LoopingCall(one)
        loop.clock = self.reactor
        self._loops.append(loop)
        loop.start(pace, now=True)

    async def _round_trips(self, source: str, count: int) -> None:
        """``count`` writes, one after the other, to the first device of ``source``
        (``fedbench`` here, ``fedbench@<host>`` a remote host's), each timed until the
        owner accepted it."""
        device = next(d for d in self.registry.devices(source) if d.name == "bench 0")
        times = []
        for i in range(count):
            started = time.perf_counter()
            await self.registry.set_value(device.peer_id, 0, "level", 1000 + i % 2)
            times.append(time.perf_counter() - started)
        self._write(f"setvalue-{source}", times)

    def _flood(self, rate: int, seconds: float) -> None:
        """``rate`` level changes a second for ``seconds``, spread over every device:
        every 10 ms as many as are due by the clock (a late tick catches up), then
        writes how many were made and in how long."""
        start = time.perf_counter()
        state = {"sent": 0}
        total = round(rate * seconds)
        variables = [d.variable(0, "level") for d in self.devices]

        def one() -> None:
            elapsed = time.perf_counter() - start
            due = min(total, round(rate * elapsed))
            i = state["sent"]
            report = self.registry.report_to
            while i < due:
                report(variables[i % len(variables)], FLOOD_BASE + i)
                i += 1
            state["sent"] = i
            if i >= total:
                loop.stop()
                took = time.perf_counter() - start
                self._write("flood", {"sent": i, "seconds": took})

        loop = LoopingCall(one)
        loop.clock = self.reactor
        self._loops.append(loop)
        loop.start(0.01, now=True)

    # -- DeviceOwner --------------------------------------------------------------------

    def write_values(self, device: Device, channel: int,
                     values: Mapping[str, Any]) -> Deferred[None]:
        self.registry.report_many(device.peer_id, channel, dict(values))
        return succeed(None)

    def query_values(self, device: Device, channel: int,
                     names: Sequence[str]) -> Deferred[None]:
        return succeed(None)
