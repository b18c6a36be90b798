"""Record and replay zigbee2mqtt traffic to test automations, on ``task.Clock`` time.

A traffic log is readable text, one message per line (continuation lines, indented, may
carry a long payload)::

    # time   kind       topic (a JSON string)              payload
    0.000    RECV       "zigbee2mqtt/bridge/devices"       @devices.json
    1.000    RECV       "zigbee2mqtt/Hall motion"          {"occupancy": true}
    1.000    EXPECT     "zigbee2mqtt/Hallway Hue/set"      {"state": "ON"}
    1.000    UNORDERED  "zigbee2mqtt/+/set"                {"brightness": "*"}
    5.000    PROHIBIT   "zigbee2mqtt/Hallway Hue/set"      *

- ``RECV``: a message from the broker, delivered to the automation at that time.
- ``SEND``: a message the automation sent when the log was recorded (not checked).
- ``EXPECT``: the automation must publish a matching message after the previous ``RECV``
  and before the next one (or the end); ``EXPECT`` lines are matched in order.
- ``UNORDERED``: the same, in any order.
- ``PROHIBIT``: no matching message in that window.

Topics may use MQTT wildcards (``+``, ``#``). A payload pattern is JSON in which the string
``"*"`` matches any value and an object matches when its keys are present with matching
values (extra keys are fine); ``=`` before an object makes it exact. A bare ``*`` matches
any payload; ``@file`` loads the payload from a file next to the log.

``replay(log, automation=path)`` runs the automation against the log with hadaemon's real
adapter (a fake broker connection, a fake clock) and returns what matched and what failed.
``hadaemon zigbee record`` records a log from a live network.

The log's lines and patterns are in :mod:`hadaemon.zigbee.traffic_log`, the in-memory
reactor, connection and store in :mod:`hadaemon.zigbee.fakes` (both re-exported here).
"""

from __future__ import annotations

import contextlib
import json
import pathlib
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.logger import Logger

from hadaemon.bus import Bus
from hadaemon.mqtt import Message
from hadaemon.registry import Registry
from hadaemon.zigbee.fakes import FakeConnection, ReplayReactor, _MemoryStore
from hadaemon.zigbee.traffic_log import (
    ANY,
    KINDS,
    Entry,
    LogError,
    TrafficLog,
    parse_payload,
    pattern_matches,
)

# -- replay ----------------------------------------------------------------------------------


@dataclass
class ReplayResult:
    """What the automation sent, and which expectations failed."""

    sent: list[tuple[float, str, Any]]
    failures: list[str]
    log: TrafficLog
    errors: int = 0

    @property
    def ok(self) -> bool:
        return not self.failures

    def report(self) -> str:
        lines = [f"{len(self.failures)} failure(s)" if self.failures else "all expectations met"]
        lines += [f"  - {failure}" for failure in self.failures]
        lines.append("sent:")
        lines += [f"  {time:8.3f}  {json.dumps(topic)}  {json.dumps(payload)}"
                  for time, topic, payload in self.sent]
        return "\n".join(lines)


def replay(
    log: TrafficLog | str | pathlib.Path,
    automation: str | pathlib.Path | None = None,
    *,
    text: str | None = None,
    base_topic: str = "zigbee2mqtt",
    tail: float = 1.0,
    initial_query: bool = False,
    log_errors_fail: bool = True,
) -> ReplayResult:
    """Run an automation (a file, or its ``text``) against a traffic log; see the module."""
    from hadaemon.logs import get_logger
    from hadaemon.zigbee.automation import AutomationRuntime
    from hadaemon.zigbee.codegen import write_module
    from hadaemon.zigbee.network import Network, NetworkSettings

    traffic = log if isinstance(log, TrafficLog) else TrafficLog.load(log)
    tmp = tempfile.TemporaryDirectory(prefix="hadaemon-replay-")
    if text is not None:
        automation = pathlib.Path(tmp.name) / "automation.py"
        automation.write_text(text, encoding="utf-8")
    if automation is None:
        raise ValueError("replay needs an automation file or its text")
    generated_dir = pathlib.Path(automation).parent
    if not (generated_dir / "pyziggy_autogenerate").is_dir():
        # As pyziggy runs: the typed module from the log's bridge/devices, made first.
        devices = next((e.payload for e in traffic.entries if e.kind == "RECV"
                        and e.topic == f"{base_topic}/bridge/devices"), None)
        groups = next((e.payload for e in traffic.entries if e.kind == "RECV"
                       and e.topic == f"{base_topic}/bridge/groups"), None)
        if isinstance(devices, list):
            generated_dir = pathlib.Path(tmp.name)
            write_module(generated_dir, devices, groups)
    clock = ReplayReactor()
    bus = Bus(clock)
    registry = Registry(clock, bus, _MemoryStore())
    connection = FakeConnection(clock, bus)
    logger: Logger = get_logger("hadaemon.zigbee.replay")
    network = Network(clock, connection, registry, bus, _MemoryStore(),
                      NetworkSettings(base_topic=base_topic, initial_query=initial_query,
                                      requery_on_reconnect=False, devices_timeout=0.5),
                      log=logger)
    runtime = AutomationRuntime(pathlib.Path(automation), network, reactor=clock, bus=bus,
                                log=logger, on_exit=lambda code: None,
                                instance=f"replay-{id(clock)}", generated_dir=generated_dir)
    try:
        if not runtime.load():
            return ReplayResult([], [f"{automation} failed to load (see the log)"], traffic, 1)
        network.start()
        connection.connect()
        failures = _drive(clock, connection, traffic, tail)
        runtime.stop()
        network.stop()
        clock.advance(0)
        if log_errors_fail and runtime.errors:
            failures.append(f"the automation raised {runtime.errors} error(s) (see the log)")
        return ReplayResult(connection.sent, failures, traffic, runtime.errors)
    finally:
        runtime.importer.unload()
        tmp.cleanup()


def _drive(clock: Clock, connection: FakeConnection, log: TrafficLog, tail: float) -> list[str]:
    failures: list[str] = []
    entries = log.entries
    receive_times = sorted({e.time for e in entries if e.kind == "RECV"})
    end = (entries[-1].time if entries else 0.0) + tail
    boundaries = [*receive_times, end]
    window_start = 0.0
    checked_upto = 0
    for index, boundary in enumerate(boundaries):
        _advance_to(clock, boundary)
        # everything sent before this boundary belongs to the window that just ended
        window_sent = connection.sent[checked_upto:]
        checked_upto = len(connection.sent)
        window_entries = [e for e in entries if window_start <= e.time < boundary
                          and e.kind in ("EXPECT", "UNORDERED", "PROHIBIT")]
        if index == len(boundaries) - 1:
            window_entries += [e for e in entries if e.time >= boundary
                               and e.kind in ("EXPECT", "UNORDERED", "PROHIBIT")]
        failures += _check(window_entries, window_sent, window_start, boundary)
        if index < len(receive_times):
            for entry in entries:
                if entry.kind == "RECV" and entry.time == boundary:
                    retained = "/bridge/" in entry.topic or entry.topic.endswith("/availability")
                    connection.deliver(entry.topic, entry.payload, retained)
            connection.read_done()
            clock.advance(0)
            window_start = boundary
    return failures


def _advance_to(clock: Clock, when: float) -> None:
    while True:
        pending = [c.getTime() for c in clock.getDelayedCalls() if c.getTime() <= when]
        if not pending:
            break
        clock.advance(max(0.0, min(pending) - clock.seconds()))
    if when > clock.seconds():
        clock.advance(when - clock.seconds())


def _check(expectations: Sequence[Entry], sent: Sequence[tuple[float, str, Any]],
           start: float, end: float) -> list[str]:
    failures: list[str] = []
    used: set[int] = set()
    position = 0
    where = f"between {start:.3f} and {end:.3f} s"
    for entry in expectations:
        if entry.kind != "EXPECT":
            continue
        for i in range(position, len(sent)):
            if i not in used and entry.matches(sent[i][1], sent[i][2]):
                used.add(i)
                position = i + 1
                break
        else:
            failures.append(f"line {entry.line}: expected {entry.render().strip()} {where}")
    for entry in expectations:
        if entry.kind != "UNORDERED":
            continue
        for i, message in enumerate(sent):
            if i not in used and entry.matches(message[1], message[2]):
                used.add(i)
                break
        else:
            failures.append(f"line {entry.line}: expected (any order) "
                            f"{entry.render().strip()} {where}")
    for entry in expectations:
        if entry.kind != "PROHIBIT":
            continue
        for message in sent:
            if entry.matches(message[1], message[2]):
                failures.append(f"line {entry.line}: prohibited message sent at "
                                f"{message[0]:.3f} s: {json.dumps(message[1])} "
                                f"{json.dumps(message[2])}")
                break
    return failures


# -- recording ----------------------------------------------------------------------------------


async def record(
    reactor: Any,
    settings: Any,
    base_topic: str,
    seconds: float,
    *,
    log: TrafficLog | None = None,
    until: Callable[[TrafficLog], bool] | None = None,
) -> TrafficLog:
    """Record ``<base>/#`` for ``seconds``: zigbee2mqtt's messages as RECV, commands sent
    to it (``/set``, ``/get``, ``bridge/request``) as SEND.

    Into ``log`` if given (a caller watching it sees the recording begin), and only
    until ``until(log)`` holds if given (``seconds`` is then the most it waits).
    """
    from twisted.internet.defer import TimeoutError as DeferredTimeout
    from twisted.internet.task import deferLater

    from hadaemon.mqtt import MqttConnection

    connection = MqttConnection(reactor, settings, status=False, component="record")
    if log is None:
        log = TrafficLog()
    recorded = log
    start: list[float] = []
    enough: Deferred[None] = Deferred()

    def keep(message: Message) -> None:
        if not start:
            start.append(reactor.seconds())
        rest = message.topic[len(base_topic) + 1:]
        command = (rest.endswith(("/set", "/get")) or "/set/" in rest or "/get/" in rest
                   or rest.startswith("bridge/request/"))
        recorded.add(round(reactor.seconds() - start[0], 3), "SEND" if command else "RECV",
                     message.topic, parse_payload(message.payload))
        if until is not None and not enough.called and until(recorded):
            enough.callback(None)

    connection.subscribe(f"{base_topic}/#", keep)
    connection.start()
    await connection.when_connected(10.0)
    if until is None:
        await deferLater(reactor, seconds, lambda: None)
    else:
        enough.addTimeout(seconds, reactor)
        with contextlib.suppress(DeferredTimeout):
            await enough
    await connection.stop(timeout=2.0)
    return log


__all__ = [
    "ANY", "KINDS", "Entry", "FakeConnection", "LogError", "ReplayReactor", "ReplayResult",
    "TrafficLog", "_MemoryStore", "parse_payload", "pattern_matches", "record", "replay",
]
