"""Collation: every set on one device in one reactor turn goes out as ONE ``/set``.

The seed's promise, kept: sets are gathered per target (device, group, or a name not
known yet) and flushed once at the end of the turn (the network flushes sets caused by
the messages of one read right after them, see ``MqttConnection.after_read``), holding
only values that differ from what the device had before the turn (``set(1); set(2);
set(1)`` sends nothing). Keys of a composite that belong together (``x`` and ``y`` of a
colour) are sent together, and two composites writing one property (``color_xy``,
``color_hs``) are merged into one object.
Queries (``/get``) are gathered the same way.

The collator holds only what is on its way to the wire: the values gathered this turn
and the ``/set`` in flight. What the device has and what was asked of it (the pending
write reads see) is the registry's: the collator reads it through ``target.current``,
and when a ``/set`` is lost it hands back what was held for it (``on_refused``), so the
registry can drop those pending writes.

Reactor thread only.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from twisted.internet.defer import Deferred, fail
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from hadaemon.sentinels import UNKNOWN
from hadaemon.values import same
from hadaemon.zigbee.exposes import Feature


class Target(Protocol):
    """Something with ``/set`` and ``/get`` topics: a device, a group or a bare name."""

    name: str

    def set_topic(self) -> str: ...
    def get_topic(self) -> str: ...
    def feature(self, prop: str) -> Feature | None: ...
    def current(self, path: tuple[str, ...]) -> Any: ...


@dataclass
class _Pending:
    values: dict[str, Any] = field(default_factory=dict)
    base: dict[str, Any] = field(default_factory=dict)
    forced: set[tuple[str, ...]] = field(default_factory=set)
    waiters: list[Deferred[None]] = field(default_factory=list)
    held: list[Any] = field(default_factory=list)
    queries: dict[str, None] = field(default_factory=dict)


Publish = Callable[[str, bytes], Deferred[None]]


class Collator:
    """Gathers sets and queries per target; flushes them once at the end of the turn."""

    def __init__(
        self,
        reactor: Any,
        publish: Publish,
        *,
        before_flush: Callable[[], bool] | None = None,
        on_refused: Callable[[list[Any]], None] | None = None,
        log: Logger | None = None,
    ) -> None:
        self._reactor = reactor
        self._publish = publish
        self._before_flush = before_flush
        self._on_refused = on_refused
        self._log = log or Logger()
        self._pending: dict[int, tuple[Target, _Pending]] = {}
        self._call: IDelayedCall | None = None
        self._held = False
        self.messages_sent = 0
        self.sets_requested = 0

    def request(self, target: Target, path: tuple[str, ...], wire: Any, *,
                force: bool = False) -> None:
        """Set ``path`` (``(prop,)`` or ``(composite, key)``) of ``target`` this turn
        (:meth:`outcome` tells when the ``/set`` carrying it is acknowledged)."""
        self.sets_requested += 1
        pending = self._entry(target)
        prop = path[0]
        if prop not in pending.base:
            # What the device had before this turn: "changed" is judged against it.
            pending.base[prop] = _copy(target.current((prop,)))
        if len(path) == 1:
            if isinstance(wire, dict) and isinstance(pending.values.get(prop), dict):
                pending.values[prop].update(wire)
            else:
                pending.values[prop] = dict(wire) if isinstance(wire, dict) else wire
        else:
            existing = pending.values.get(prop)
            if not isinstance(existing, dict):
                existing = pending.values[prop] = {}
            existing[path[1]] = wire
        if force:
            pending.forced.add(path)
        self._schedule()

    def held(self, target: Target, token: Any) -> None:
        """What was held elsewhere for this turn's set of ``target`` (a pending write):
        handed to ``on_refused`` if its ``/set`` is lost."""
        self._entry(target).held.append(token)

    def outcome(self, target: Target) -> Deferred[None]:
        """Fires when the ``/set`` gathered for ``target`` this turn is acknowledged (at
        once after the flush if nothing had to be sent), or fails with its failure."""
        d: Deferred[None] = Deferred()
        self._entry(target).waiters.append(d)
        self._schedule()
        return d

    def query(self, target: Target, prop: str) -> None:
        """Ask ``target`` for ``prop`` in this turn's ``/get``."""
        self._entry(target).queries[prop] = None
        self._schedule()

    def pending(self) -> int:
        return len(self._pending)

    def hold(self) -> None:
        """A flush is coming anyway (the network's after-read hook): what is gathered
        until :meth:`release` needs no reactor turn of its own: no ``callLater(0)`` made
        and cancelled (nor the reactor iteration it adds) per reaction.
        ``benchmarks/zigbee_path.py`` reaction, least CPU per reaction, 5 pairs of runs
        taking turns: 94-116 us against 101-120 us, less in each pair."""
        self._held = True

    def release(self) -> None:
        """End :meth:`hold`: flush what was gathered, now."""
        self._held = False
        if self._pending:
            self.flush()

    def _entry(self, target: Target) -> _Pending:
        key = id(target)
        entry = self._pending.get(key)
        if entry is None:
            entry = self._pending[key] = (target, _Pending())
        return entry[1]

    def _schedule(self) -> None:
        if self._call is None and not self._held:
            self._call = self._reactor.callLater(0, self.flush)

    def flush(self) -> list[Deferred[None]]:
        """Send everything gathered (listeners of local changes run first)."""
        if self._call is not None:
            if self._call.active():
                self._call.cancel()
            self._call = None
        if self._before_flush is not None:
            # Listeners of changes made this turn may set more: they join this flush.
            for _ in range(10):
                if not self._before_flush():
                    break
        sent: list[Deferred[None]] = []
        pending, self._pending = self._pending, {}
        for target, entry in pending.values():
            sent.extend(self._flush_one(target, entry))
        return sent

    def _flush_one(self, target: Target, entry: _Pending) -> list[Deferred[None]]:
        out: list[Deferred[None]] = []
        payload = self._payload(target, entry)
        if payload:
            d = self._send(target.set_topic(), payload)
            out.append(d)

            if entry.waiters or entry.held:
                d.addBoth(self._sent, entry)
        else:
            for waiter in entry.waiters:
                waiter.callback(None)
        if entry.queries:
            query = self._send(target.get_topic(), {prop: "" for prop in entry.queries})
            query.addErrback(self._log_failure, target.get_topic())
            out.append(query)
        return out

    def _sent(self, result: object, entry: _Pending) -> None:
        if isinstance(result, Failure):
            if entry.held and self._on_refused is not None:
                self._on_refused(entry.held)
            for waiter in entry.waiters:
                waiter.errback(result)
        else:
            for waiter in entry.waiters:
                waiter.callback(None)

    def _payload(self, target: Target, entry: _Pending) -> dict[str, Any]:
        payload: dict[str, Any] = {}
        for prop, value in entry.values.items():
            feature = target.feature(prop)
            base = entry.base.get(prop, UNKNOWN)
            whole_forced = (prop,) in entry.forced
            if isinstance(value, dict) and (feature is None or feature.kind == "composite"):
                changed = {
                    key: sub for key, sub in value.items()
                    if whole_forced or (prop, key) in entry.forced or not isinstance(base, dict)
                    or not same(base.get(key, UNKNOWN), sub)
                }
                if changed and feature is not None:
                    self._fill_group(target, feature, prop, changed)
                if changed:
                    payload[prop] = changed
            elif whole_forced or not same(base, value):
                payload[prop] = value
        return payload

    @staticmethod
    def _fill_group(target: Target, feature: Feature, prop: str, changed: dict[str, Any]) -> None:
        # x without y is useless to zigbee2mqtt: send the other keys of the same group.
        current = target.current((prop,))
        if not isinstance(current, dict):
            return
        for _name, keys in feature.groups:
            if any(key in changed for key in keys):
                for key in keys:
                    if key not in changed and current.get(key) not in (None, UNKNOWN):
                        changed[key] = current[key]

    def _send(self, topic: str, payload: dict[str, Any]) -> Deferred[None]:
        self.messages_sent += 1
        data = _ENCODE(payload).encode("utf-8")
        try:
            return self._publish(topic, data)
        except Exception:
            return fail(Failure())

    def _log_failure(self, failure: Failure, topic: str) -> None:
        self._log.warn("query on {topic} not sent: {error}", topic=topic,
                       error=failure.getErrorMessage())


# json.dumps with arguments builds a JSONEncoder per call: one made once saves 1.8 of its
# 4.0 us per /set (timeit, {"brightness": 57}; benchmarks/zigbee_path.py reaction).
_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def _copy(value: Any) -> Any:
    return dict(value) if isinstance(value, dict) else value

