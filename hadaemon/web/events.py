"""Live events over Server-Sent Events, with ``Last-Event-ID`` resume.

The bus events of every world (variable changes, lifecycle, errors, status updates,
device changes) go into one bounded **journal**, each with an id ``<epoch>-<seq>`` (the
epoch changes when the daemon restarts). Each client is a **cursor** into that journal:
it is written to while its connection takes data, and left behind while the transport
says it is full (Twisted pauses the client as a push producer). So a slow client costs
no memory of its own beyond the transport's buffer; once its cursor falls out of the
journal it cannot catch up, and it is dropped with an ``event: dropped`` note. A client
that reconnects with ``Last-Event-ID`` gets every event after it, or an ``event: gap``
saying the id is too old (or from before a restart) and what to do.

Messages along a node's wire (``tap``) are per client and not journaled: they have no
id, are sent while the client keeps up, and counted as dropped when it does not.

Reactor thread only.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields
from typing import Any

from twisted.internet.interfaces import IPushProducer
from twisted.logger import Logger
from twisted.web.server import Request
from zope.interface import implementer

from hadaemon.bus import Bus, ErrorEvent, Event, Subscription
from hadaemon.bus.topics import InvalidTopic, matcher
from hadaemon.web.http import bad_request
from hadaemon.web.jsonvalues import dumps, to_json

KINDS = ("variable", "lifecycle", "error", "status", "device")
KEEPALIVE = 15.0
TAP_QUEUE = 1000
REPLAY_BATCH = 256  # journal entries written per turn while a client catches up
TAP_MAX_BYTES = 32 * 1024


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if not number:
            return out


def event_document(event: Event) -> dict[str, Any]:
    """A bus event as the JSON the stream and the API show."""
    document: dict[str, Any] = {"topic": event.topic}
    for item in fields(event):  # type: ignore[arg-type]
        value = getattr(event, item.name)
        if item.name == "details" and isinstance(value, Mapping):
            value = {k: v for k, v in value.items() if k != "traceback"}
        document[item.name] = to_json(value)
    if isinstance(event, ErrorEvent):
        document["level_name"] = event.level.name.lower()
    return document


class Entry:
    """One journaled event; its frame is made once, when a client first needs it."""

    __slots__ = ("_frame", "event", "kind", "seq")

    def __init__(self, seq: int, kind: str, event: Event) -> None:
        self.seq = seq
        self.kind = kind
        self.event = event
        self._frame: bytes | None = None

    def frame(self, epoch: str) -> bytes:
        if self._frame is None:
            data = dumps(event_document(self.event))
            self._frame = (f"id: {epoch}-{self.seq}\nevent: {self.kind}\ndata: ".encode()
                           + data + b"\n\n")
        return self._frame


class Journal:
    """The last ``size`` bus events of the watched kinds, and the streams reading them."""

    def __init__(self, bus: Bus, *, size: int, clock: Callable[[], float] = time.time) -> None:
        self.epoch = _base36(int(clock() * 1000))
        self.entries: deque[Entry] = deque(maxlen=size)
        self.seq = 0
        self.streams: list[EventStream] = []
        self._bus = bus
        self._subscriptions: list[Subscription] = []

    def start(self) -> None:
        self._subscriptions = [
            self._bus.subscribe(f"{kind}/#", self._on_event, name=f"web: {kind} events")
            for kind in KINDS
        ]

    def stop(self) -> None:
        for subscription in self._subscriptions:
            subscription.cancel()
        self._subscriptions = []
        for stream in list(self.streams):
            stream.close("the daemon is stopping")

    @property
    def last_id(self) -> str:
        return f"{self.epoch}-{self.seq}"

    def _on_event(self, event: Event) -> None:
        self.seq += 1
        topic = event.topic
        entry = Entry(self.seq, topic[:topic.find("/")] if "/" in topic else topic, event)
        self.entries.append(entry)
        oldest = self.entries[0].seq
        for stream in list(self.streams):
            if stream.cursor == entry.seq - 1 and not stream.paused:
                stream.take(entry)
            elif stream.cursor + 1 < oldest:  # its next event just left the journal
                stream.drop(f"the client fell more than {len(self.entries)} events behind")

    def entry(self, seq: int) -> Entry | None:
        if not self.entries:
            return None
        index = seq - self.entries[0].seq
        return self.entries[index] if 0 <= index < len(self.entries) else None

    def oldest(self) -> int:
        """The seq of the oldest event kept (``seq + 1`` when none is)."""
        return self.entries[0].seq if self.entries else self.seq + 1

    def parse_id(self, text: str) -> tuple[int | None, str]:
        """Where to resume after ``text``: (seq, "") or (None, why the events are lost)."""
        epoch, sep, number = text.strip().rpartition("-")
        if not sep or not epoch or not (number.isascii() and number.isdigit()
                                        and len(number) <= 18):
            raise bad_request("bad_last_event_id", f"Last-Event-ID {text!r} is not an id "
                              "this stream sent (<epoch>-<number>)")
        seq = int(number)
        if epoch != self.epoch:
            return None, ("the daemon restarted since that event: events in between are "
                          "lost; read the current state again")
        if seq > self.seq:
            raise bad_request("bad_last_event_id", f"Last-Event-ID {text!r} was never sent "
                              f"(the newest id is {self.last_id})")
        if seq + 1 < self.oldest():
            return None, (f"events after {text} are no longer kept (the oldest kept is "
                          f"{self.epoch}-{self.oldest()}): some were lost; read the "
                          "current state again")
        return seq, ""


@implementer(IPushProducer)
class EventStream:
    """One client's ``text/event-stream`` (see the module docstring)."""

    def __init__(self, request: Request, journal: Journal, *, reactor: Any,
                 patterns: Sequence[str], log: Logger) -> None:
        self.request = request
        self.journal = journal
        self.reactor = reactor
        self.log = log
        self.paused = False
        self.closed = False
        self.cursor = journal.seq
        self.tap_queue: deque[bytes] = deque()
        self.taps_dropped = 0
        self.cleanups: list[Callable[[], object]] = []
        self._out: list[bytes] = []
        self._flush_call: Any = None
        try:
            matchers = [matcher(p) for p in patterns]
        except InvalidTopic as exc:
            raise bad_request("bad_topic", f"topics: {exc}") from None
        self._match: Callable[[str], bool] | None = (
            (lambda topic: any(m(topic) for m in matchers)) if patterns else None
        )
        self._keepalive = reactor.callLater(KEEPALIVE, self._ping)

    def open(self, resume: tuple[int | None, str] | None) -> None:
        """Send the headers and the first frames, then follow the journal."""
        request = self.request
        request.setHeader(b"Content-Type", b"text/event-stream; charset=utf-8")
        request.setHeader(b"X-Accel-Buffering", b"no")
        request.registerProducer(self, True)
        request.notifyFinish().addBoth(self._finished)
        gap = ""
        if resume is not None:
            seq, gap = resume
            if seq is not None:
                self.cursor = seq
        hello = {"id": self.journal.last_id, "resumed": resume is not None and not gap}
        self._send(b"retry: 2000\nevent: hello\ndata: " + dumps(hello) + b"\n\n")
        if gap:
            self._send(b"event: gap\ndata: " + dumps({"message": gap}) + b"\n\n")
        self.journal.streams.append(self)
        self._pump()

    def take(self, entry: Entry) -> None:
        """The next journal entry, while the client keeps up (the journal's fast path)."""
        self.cursor = entry.seq
        if self._match is None or self._match(entry.event.topic):
            self._send(entry.frame(self.journal.epoch))

    def _send(self, data: bytes) -> None:
        # The frames of one reactor turn go out as one write (one HTTP chunk): a change
        # report of 20 values is one write, not 20.
        self._out.append(data)
        if self._flush_call is None:
            self._flush_call = self.reactor.callLater(0, self._flush)

    def _flush(self) -> None:
        self._flush_call = None
        out, self._out = self._out, []
        request = self.request
        if out and not request.finished and not getattr(request, "_disconnected", False):
            request.write(b"".join(out))
        if not self.paused and not self.closed and self.cursor < self.journal.seq:
            self._pump()  # a replay goes on, a batch a turn

    def _pump(self) -> None:
        journal = self.journal
        while not self.paused and not self.closed and self.tap_queue:
            self._send(self.tap_queue.popleft())
        batch = REPLAY_BATCH
        while not self.paused and not self.closed and self.cursor < journal.seq and batch:
            entry = journal.entry(self.cursor + 1)
            if entry is None:
                self.drop(f"the client fell more than {len(journal.entries)} events behind")
                return
            self.take(entry)
            batch -= 1

    def tap(self, frame: bytes) -> None:
        """A wire message for this client (not journaled)."""
        if self.closed:
            return
        if not self.paused and not self.tap_queue:
            self._send(frame)
            return
        if len(self.tap_queue) >= TAP_QUEUE:
            self.tap_queue.popleft()
            self.taps_dropped += 1
        self.tap_queue.append(frame)

    def drop(self, why: str) -> None:
        """Give up on a client that cannot keep up, telling it so."""
        self.log.warn("event stream client {client} dropped: {why}",
                      client=_client(self.request), why=why)
        note = {"message": f"dropped: {why}; reconnect with Last-Event-ID to resume"}
        self._send(b"event: dropped\ndata: " + dumps(note) + b"\n\n")
        self.close(None)
        transport = self.request.channel.transport if self.request.channel else None
        if transport is not None:
            transport.loseConnection()
            # A client that reads nothing never lets the buffer drain: cut it.
            self.reactor.callLater(10.0, _abort, transport)

    def close(self, why: str | None) -> None:
        if self.closed:
            return
        self.closed = True  # (what is waiting is written, nothing more is pumped)
        if why is not None:
            self._send(b"event: closed\ndata: " + dumps({"message": why}) + b"\n\n")
        self._flush()
        self._release()
        if not self.request.finished and not getattr(self.request, "_disconnected", False):
            self.request.unregisterProducer()
            self.request.finish()

    def _release(self) -> None:
        self.closed = True
        if self in self.journal.streams:
            self.journal.streams.remove(self)
        if self._keepalive.active():
            self._keepalive.cancel()
        if self._flush_call is not None and self._flush_call.active():
            self._flush_call.cancel()
        self._flush_call = None
        cleanups, self.cleanups = self.cleanups, []
        for cleanup in cleanups:
            cleanup()

    def _finished(self, _: object) -> None:
        self._release()

    def _ping(self) -> None:
        if not self.closed:
            if self.taps_dropped and not self.paused:
                self._send(b"event: tap-dropped\ndata: "
                                   + dumps({"count": self.taps_dropped}) + b"\n\n")
                self.taps_dropped = 0
            self._send(b": keep-alive\n\n")
            self._keepalive = self.reactor.callLater(KEEPALIVE, self._ping)

    # -- IPushProducer: the transport says when the client cannot take more ---------------

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        if not self.closed:
            self._pump()

    def stopProducing(self) -> None:
        self._release()


def _abort(transport: Any) -> None:
    if getattr(transport, "connected", False):
        transport.abortConnection()


def _client(request: Request) -> str:
    address = request.getClientAddress()
    return f"{getattr(address, 'host', '?')}:{getattr(address, 'port', '?')}"


def tap_frame(node_id: str, output: int, message: Any, now: float) -> bytes:
    """A wire message as an SSE frame (big messages cut short, as Node-RED's debug does)."""
    document: dict[str, Any] = {"node": node_id, "output": output, "time": now,
                                "msg": to_json(message)}
    data = dumps(document)
    if len(data) > TAP_MAX_BYTES:
        preview = dumps(document["msg"])[:1000].decode("utf-8", "replace")
        data = dumps({"node": node_id, "output": output, "time": now, "truncated": True,
                      "size": len(data), "preview": preview})
    return b"event: wire\ndata: " + data + b"\n\n"

