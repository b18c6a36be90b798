"""Requests between hosts: correlation, timeout, and serving each request once.

A request goes at QoS 1 to ``<site>/<host>/req/<me>`` as ``{"v", "host": me, "id",
"kind", "body"}``; the answer comes back at QoS 1 to ``<site>/<me>/resp/<host>`` as
``{"v", "host", "id", "ok": true, "result"}`` or ``{..., "ok": false, "error": {"type",
"message", "code"}}``. The id correlates them (unique per run of the sender: a random
run token and a counter). QoS 1 may deliver a request twice (a resend after a reconnect):
the server remembers the ids it saw for ``dedup_window`` seconds (at most the last 10,000,
and 16 MiB of answers) and answers a duplicate with the answer it gave, without serving
it again.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, fail
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from hadaemon.aio import call_as_deferred
from hadaemon.federation import codec
from hadaemon.federation.errors import (
    FederationError,
    HostOffline,
    PayloadTooLarge,
    Refused,
    RemoteError,
    RemoteTimeout,
)
from hadaemon.federation.presence import Presence
from hadaemon.federation.topics import REQUEST, RESPONSE, Layout
from hadaemon.mqtt import MqttClient

Handler = Callable[[str, Any], Any]

_DEDUP_MAX = 10_000  # request ids remembered at most ...
_DEDUP_BYTES = 16 << 20  # ... and bytes of their answers kept to send again


class UnknownKind(FederationError):
    fault_code = -32601  # "method not found", as an RPC would say

    def __init__(self, kind: str) -> None:
        super().__init__(f"no handler for requests of kind {kind!r} on this host")


class _Pending:
    __slots__ = ("deferred", "host", "kind", "timer")

    def __init__(self, host: str, kind: str, deferred: Deferred[Any],
                 timer: IDelayedCall) -> None:
        self.host = host
        self.kind = kind
        self.deferred = deferred
        self.timer = timer


class Requests:
    """Both sides of requests for one host. Reactor thread only."""

    def __init__(self, reactor: Any, mqtt: MqttClient, layout: Layout, presence: Presence,
                 *, timeout: float, limit: int, dedup_window: float, log: Logger) -> None:
        self._reactor = reactor
        self._mqtt = mqtt
        self._layout = layout
        self._presence = presence
        self._me = presence.me
        self.timeout = timeout
        self._limit = limit
        self._window = dedup_window
        self._log = log
        self._token = secrets.token_hex(4)
        self._counter = 0
        self._pending: dict[str, _Pending] = {}
        self._handlers: dict[str, Handler] = {}
        # (sender, id) -> (time seen, the encoded answer or None while being served)
        self._seen: OrderedDict[tuple[str, str], tuple[float, bytes | None]] = OrderedDict()
        self._seen_bytes = 0
        self.served = 0
        self.duplicates = 0

    # -- the sender's side -------------------------------------------------------------

    def request(self, host: str, kind: str, body: Any, *,
                timeout: float | None = None) -> Deferred[Any]:
        if not self._presence.online(host):
            seen = "" if host in self._presence.known() else "never seen on the site; "
            return fail(HostOffline(host, f"{seen}the {kind} request was not sent"))
        self._counter += 1
        rid = f"{self._token}-{self._counter}"
        try:
            payload = codec.encode(self._me, {"id": rid, "kind": kind, "body": body},
                                   limit=self._limit, what=f"the {kind} request to {host}")
        except (PayloadTooLarge, TypeError, ValueError):
            return fail(Failure())
        seconds = self.timeout if timeout is None else timeout
        d: Deferred[Any] = Deferred(lambda _: self._forget(rid))
        timer = self._reactor.callLater(seconds, self._expire, rid, seconds)
        self._pending[rid] = _Pending(host, kind, d, timer)
        sent = self._mqtt.publish(self._layout.topic(host, REQUEST, self._me), payload, qos=1)
        sent.addErrback(self._not_sent, rid)
        return d

    def _forget(self, rid: str) -> None:
        pending = self._pending.pop(rid, None)
        if pending is not None and pending.timer.active():
            pending.timer.cancel()

    def _not_sent(self, failure: Failure, rid: str) -> None:
        pending = self._pending.pop(rid, None)
        if pending is not None:
            pending.timer.cancel()
            pending.deferred.errback(failure)

    def _expire(self, rid: str, seconds: float) -> None:
        pending = self._pending.pop(rid, None)
        if pending is not None:
            pending.deferred.errback(RemoteTimeout(pending.host, pending.kind, seconds))

    def host_gone(self, host: str, state: str = "offline") -> None:
        """``host`` went offline: its unanswered requests fail now, not at their timeout."""
        for rid, pending in list(self._pending.items()):
            if pending.host == host:
                del self._pending[rid]
                pending.timer.cancel()
                pending.deferred.errback(HostOffline(
                    host, f"went {state} before it answered the {pending.kind} request"))

    def response(self, topic: str, responder: str, payload: bytes) -> None:
        message = codec.decode(topic, responder, payload, limit=self._limit)
        rid = codec.field(topic, message, "id", str)
        pending = self._pending.get(rid)
        if pending is None:
            return  # timed out or cancelled already, or a duplicate answer
        if pending.host != responder:
            raise Refused(topic, f"answers request {rid}, which was sent to {pending.host!r}")
        ok = codec.field(topic, message, "ok", bool)
        if ok:
            outcome: Any = message.get("result")
        else:
            error = codec.field(topic, message, "error", dict)
            code = error.get("code")
            outcome = RemoteError(responder, str(error.get("type", "Error")),
                                  str(error.get("message", "")),
                                  code if isinstance(code, int) else None)
        del self._pending[rid]
        pending.timer.cancel()
        if ok:
            pending.deferred.callback(outcome)
        else:
            pending.deferred.errback(outcome)

    # -- the server's side -------------------------------------------------------------

    def serve(self, kind: str, handler: Handler) -> Callable[[], None]:
        if kind in self._handlers:
            raise ValueError(f"requests of kind {kind!r} are served already")
        self._handlers[kind] = handler

        def remove() -> None:
            if self._handlers.get(kind) is handler:
                del self._handlers[kind]

        return remove

    def incoming(self, topic: str, sender: str, payload: bytes) -> None:
        message = codec.decode(topic, sender, payload, limit=self._limit)
        rid = codec.field(topic, message, "id", str)
        kind = codec.field(topic, message, "kind", str)
        key = (sender, rid)
        now = self._reactor.seconds()
        self._trim(now)
        seen = self._seen.get(key)
        if seen is not None:
            self.duplicates += 1
            if seen[1] is not None:
                self._send_answer(sender, seen[1])
            return
        self._seen[key] = (now, None)
        handler = self._handlers.get(kind)
        self.served += 1
        if handler is None:
            self._answered(Failure(UnknownKind(kind)), sender, rid, kind)
            return
        d = call_as_deferred(handler, sender, message.get("body"))
        d.addBoth(self._answered, sender, rid, kind)

    def _answered(self, outcome: Any, sender: str, rid: str, kind: str) -> None:
        what = f"the answer to {sender}'s {kind} request {rid}"
        if isinstance(outcome, Failure):
            exc = outcome.value
            code = getattr(exc, "fault_code", None)
            fields: dict[str, Any] = {"id": rid, "ok": False, "error": {
                "type": type(exc).__name__, "message": str(exc),
                "code": code if isinstance(code, int) else None}}
        else:
            fields = {"id": rid, "ok": True, "result": outcome}
        try:
            payload = codec.encode(self._me, fields, limit=self._limit, what=what)
        except (PayloadTooLarge, TypeError, ValueError) as exc:
            self._log.warn("{what} cannot be sent: {error}", what=what, error=str(exc))
            payload = codec.encode(self._me, {"id": rid, "ok": False, "error": {
                "type": type(exc).__name__, "message": f"the answer cannot be sent: {exc}",
                "code": -1}}, limit=self._limit, what=what)
        key = (sender, rid)
        if key in self._seen:
            self._seen[key] = (self._seen[key][0], payload)
            self._seen_bytes += len(payload)
        self._send_answer(sender, payload)

    def _send_answer(self, sender: str, payload: bytes) -> None:
        d = self._mqtt.publish(self._layout.topic(sender, RESPONSE, self._me), payload, qos=1)
        d.addErrback(lambda f: self._log.warn("answer to {host} not sent: {error}",
                                              host=sender, error=f.getErrorMessage()))

    def _trim(self, now: float) -> None:
        seen = self._seen
        while seen and (len(seen) > _DEDUP_MAX or self._seen_bytes > _DEDUP_BYTES
                        or next(iter(seen.values()))[0] < now - self._window):
            _, (_, answer) = seen.popitem(last=False)
            if answer is not None:
                self._seen_bytes -= len(answer)

    def stop(self) -> None:
        for rid in list(self._pending):
            pending = self._pending.pop(rid)
            pending.timer.cancel()
            pending.deferred.errback(HostOffline(
                pending.host, f"the federation stopped before it answered the {pending.kind} "
                "request"))


__all__ = ["Handler", "Requests", "UnknownKind"]
