"""Bus messages to nodes and services on other hosts of the site.

``node:<id>@<host>/<input>`` and ``service:<id>@<host>/<action>`` reach a node or a
service on another daemon of the site; an id that only one host has may be used without
``@host``. The bus asks our gateway (:meth:`Commands.claim`) for every address it has no
endpoint for: we name our endpoint, ``federation:commands``, which forwards the message
as a request (QoS 1) over the federation's transport, or refuse at once:
:class:`HostOffline` for a host that is offline or was never seen, so a send never
waits for a host that may not come, :class:`AmbiguousDestination` for an id without
``@host`` that several hosts have.

On the owner's side the request becomes an ordinary ``bus.send`` to the local address,
its sender the remote sender with its host (``node:relay@pi-a``: an answer finds its way
back), and the handler's result or error goes back as the answer.

Delivered once: a try that gets no answer within ``attempt`` seconds is sent again with
the same body id (a broker restart can drop a request whose owner had not subscribed
again yet) until ``deadline``; the owner keeps the outcome of every (sender host, id) it
saw for ``window`` seconds and answers a copy with it instead of delivering it again. The
transport drops MQTT's own redeliveries by its request id too.

Each host announces which ``node:`` and ``service:`` endpoints it has (the retained
record ``endpoints``): ids without ``@host`` are found there, and a send to a host that
does not have the endpoint fails at once. Reactor thread only.
"""

from __future__ import annotations

import itertools
import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

from twisted.internet.defer import Deferred, fail
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from hadaemon.bus import (
    NODE,
    SERVICE,
    Address,
    AmbiguousDestination,
    Bus,
    BusMessage,
    Event,
    HostOffline,
    InvalidAddress,
    Lifecycle,
    UnknownDestination,
)
from hadaemon.bus.message import tell

KIND = "bus.send"
"""The request kind of a forwarded bus message."""
RECORD = "endpoints"
"""The retained per-host record: the sorted list of its ``node:``/``service:`` endpoints."""
ENDPOINT = "federation:commands"
FORWARDED = (NODE, SERVICE)

ATTEMPT = 2.0  # seconds a try waits for its answer before the same body goes again
DEADLINE = 5.0  # seconds after which a send gives up: [federation].request_timeout
WINDOW = 600.0  # seconds an owner remembers a (sender host, id): [federation].dedup_window
REMEMBER = 20000  # ... and at most this many of them
ANNOUNCE_EVERY = 5.0  # seconds between looks for endpoints that came or went


class FederationLink(Protocol):
    """What the forwarding needs of the federation plugin (``hadaemon.federation``)."""

    @property
    def host(self) -> str:
        """This host's name, ``[daemon].name``."""

    @property
    def reactor(self) -> IReactorTime: ...

    def online(self, host: str) -> bool: ...
    def on_presence(self, callback: Callable[[str, bool], object]) -> Callable[[], None]: ...
    def known_hosts(self) -> frozenset[str]: ...
    def request(self, host: str, kind: str, body: Any, *,
                timeout: float | None = None) -> Deferred[Any]: ...
    def serve(self, kind: str, handler: Callable[[str, Any], object]) -> Callable[[], None]: ...
    def announce(self, name: str, body: Any) -> Deferred[None]: ...
    def watch(self, name: str,
              callback: Callable[[str, Any], object]) -> Callable[[], None]: ...


class Commands:
    """The gateway, the forwarding endpoint and the serving side of one daemon."""

    def __init__(
        self,
        fed: FederationLink,
        bus: Bus,
        log: Logger,
        *,
        attempt: float = ATTEMPT,
        deadline: float = DEADLINE,
        window: float = WINDOW,
    ) -> None:
        self._fed = fed
        self._bus = bus
        self._log = log
        self._clock = fed.reactor
        self.me = fed.host
        self.attempt = attempt
        self.deadline = deadline
        self.window = window
        # Body ids: unique across this daemon's restarts (a restarted sender must not
        # hit the owner's memory of its previous life).
        self._ids = (f"{uuid.uuid4().hex[:12]}-{n}" for n in itertools.count(1))
        self._where: dict[str, set[str]] = {}  # endpoint -> hosts that announced it
        self._records: dict[str, frozenset[str]] = {}  # host -> its endpoints
        # (sender host, body id) -> (when, its outcome); oldest first.
        self._seen: OrderedDict[tuple[str, str], tuple[float, _Outcome]] = OrderedDict()
        self._announced: list[str] | None = None
        self._undo: list[Callable[[], None]] = []
        self._looking: LoopingCall | None = None
        self.forwarded = 0
        self.served = 0
        self.duplicates = 0

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        registration = self._bus.register(ENDPOINT, self._forward, typed=True,
                                          queue_size=100_000, concurrency=100_000,
                                          name="federation: sends to other hosts")
        self._undo.append(registration.unregister)
        self._bus.set_gateway(self.claim)
        self._undo.append(lambda: self._bus.set_gateway(None))
        self._undo.append(self._fed.serve(KIND, self._serve))
        self._undo.append(self._fed.watch(RECORD, self._on_record))
        started = self._bus.subscribe("lifecycle/daemon/started", self._daemon_started,
                                      name="federation: endpoints announced",
                                      event_type=Lifecycle)
        self._undo.append(started.cancel)
        self._looking = LoopingCall(self.announce)
        self._looking.clock = self._clock
        # Not now: the nodes and services starting after us are not registered yet, and a
        # record without them would refuse sends to them. The daemon's start announces;
        # the look every few seconds catches what comes and goes later (a reload).
        self._looking.start(ANNOUNCE_EVERY, now=False)

    def stop(self) -> None:
        if self._looking is not None and self._looking.running:
            self._looking.stop()
        undo, self._undo = self._undo, []
        for step in reversed(undo):
            step()

    def _daemon_started(self, event: Event) -> None:
        self.announce()  # the nodes and services that started after us

    def announce(self) -> None:
        """Publish this host's endpoints when they changed (retained)."""
        endpoints = [e for kind in FORWARDED for e in self._bus.endpoints(kind)]
        if endpoints == self._announced:
            return
        self._announced = endpoints
        self._fed.announce(RECORD, endpoints).addErrback(
            lambda f: self._log.warn("endpoints not announced: {error}",
                                     error=f.getErrorMessage()))

    def _on_record(self, host: str, body: Any) -> None:
        for endpoint in self._records.pop(host, frozenset()):
            hosts = self._where.get(endpoint)
            if hosts is not None:
                hosts.discard(host)
                if not hosts:
                    del self._where[endpoint]
        if body is None or host == self.me:
            return
        if not isinstance(body, list) or not all(isinstance(e, str) for e in body):
            self._log.warn("endpoints of {host} ignored: not a list of strings", host=host)
            return
        record = frozenset(e for e in body if e.partition(":")[0] in FORWARDED)
        self._records[host] = record
        self._log.info("federation: {host} has {count} node/service endpoint(s)",
                       host=host, count=len(record))
        for endpoint in record:
            self._where.setdefault(endpoint, set()).add(host)

    # -- the gateway ------------------------------------------------------------------------

    def claim(self, address: Address) -> str | None:
        """The bus's gateway: our endpoint for a node or service on another host, None
        for what is nobody's; refusals raise at once."""
        if address.kind not in FORWARDED:
            return None
        if address.host is not None and not (address.host and address.local_id):
            raise InvalidAddress(f"invalid address {str(address)!r}: an id with a host is "
                                 "'<id>@<host>', neither empty")
        host = self._host_of(address)
        if host is None:
            return None
        if host == self.me:
            return ENDPOINT if self._bus.has_endpoint(address.local()) else None
        if not self._fed.online(host):
            state = "offline" if host in self._fed.known_hosts() else "unknown to this site"
            raise HostOffline(host, f"{address} not sent ({state})", address=str(address))
        record = self._records.get(host)
        if record is not None and address.local().endpoint not in record:
            raise UnknownDestination(f"{address} (host {host!r} has no {address.local().endpoint})")
        return ENDPOINT

    def _host_of(self, address: Address) -> str | None:
        host = address.host
        if host is not None:
            return host
        hosts = self._where.get(address.endpoint)
        if not hosts:
            return None
        if len(hosts) > 1:
            raise AmbiguousDestination(str(address), sorted(hosts))
        return next(iter(hosts))

    # -- the sender's side -------------------------------------------------------------------

    def _forward(self, message: BusMessage) -> Deferred[Any]:
        address = message.address
        try:
            host = self._host_of(address)
        except UnknownDestination as exc:
            return fail(exc)
        if host is None:
            return fail(UnknownDestination(str(address)))
        if host == self.me:  # node:x@me: delivered here, as node:x
            here: Deferred[Any] = Deferred()
            message.address = address.local()
            message.reply = here
            try:
                self._bus.hand_on(message)
            except Exception as exc:
                return fail(exc)
            return here
        sender = message.sender
        body = {
            "id": next(self._ids),
            "to": str(address.local()),
            "from": None if sender is None else str(sender.on_host(self.me)),
            "msg": message.payload,
        }
        self.forwarded += 1
        return self._send(host, body, self._clock.seconds() + self.deadline)

    def _send(self, host: str, body: dict[str, Any], deadline: float) -> Deferred[Any]:
        """The request, sent again with the same id until answered or ``deadline``."""
        return _Delivery(self._fed, host, body, deadline, self.attempt).outcome

    # -- the owner's side -------------------------------------------------------------------

    def _serve(self, origin: str, body: Any) -> object:
        """A forwarded message from ``origin``: delivered here once, its outcome answered."""
        if not isinstance(body, dict) or not isinstance(body.get("id"), str) \
                or not isinstance(body.get("to"), str):
            raise ValueError(f"a {KIND} request from {origin!r} is no "
                             "{id, to, from, msg} table")
        key = (origin, body["id"])
        now = self._clock.seconds()
        self._forget(now)
        seen = self._seen.get(key)
        if seen is not None:
            self.duplicates += 1
            return seen[1].copy()
        address = Address.parse(body["to"])
        if address.kind not in FORWARDED or address.host not in (None, self.me):
            raise ValueError(f"{address}: not a node or service of {self.me!r}")
        sender = body.get("from")
        if sender is not None:
            sender = Address.parse(sender) if isinstance(sender, str) else None
            if sender is None or sender.host != origin:
                raise ValueError(f"sender {body.get('from')!r} is not on {origin!r}, "
                                 "the host the request came from")
        self.served += 1
        outcome = _Outcome()
        self._seen[key] = (now, outcome)
        self._bus.send(address.local(), body.get("msg"), sender=sender).addBoth(outcome.settle)
        return outcome.copy()

    def _forget(self, now: float) -> None:
        seen = self._seen
        while seen:
            key, (when, _) = next(iter(seen.items()))
            if now - when <= self.window and len(seen) <= REMEMBER:
                break
            del seen[key]


class _Delivery:
    """One forwarded message until its answer: each try waits ``attempt`` seconds; a try
    that times out goes again at once, one whose host went offline after it was sent
    (the answer lost, the message maybe delivered) goes again when the host is back,
    both with the same body id, so that the owner delivers it once. A host offline at
    the first try refuses at once; ``deadline`` ends the waiting."""

    def __init__(self, fed: FederationLink, host: str, body: dict[str, Any],
                 deadline: float, attempt: float) -> None:
        self.fed, self.host, self.body = fed, host, body
        self.deadline, self.per_try = deadline, attempt
        self.clock = fed.reactor
        self.outcome: Deferred[Any] = Deferred()
        self.tries = 0
        self._stop_waiting: Callable[[], None] | None = None
        self._timer: Any = None
        self.send()

    def send(self) -> None:
        remaining = self.deadline - self.clock.seconds()
        self.tries += 1
        try:
            sent = self.fed.request(self.host, KIND, self.body,
                                    timeout=max(min(self.per_try, remaining), 0.01))
        except Exception as exc:  # e.g. a payload beyond the size limit
            self.outcome.errback(Failure(exc))
            return
        if self.tries == 1 and sent.called:  # refused before anything was sent
            sent.addCallbacks(self.outcome.callback, self.outcome.errback)
            return
        sent.addCallbacks(self.outcome.callback, self.failed)

    def failed(self, failure: Failure) -> None:
        left = self.deadline - self.clock.seconds()
        if left <= 0.01 or not failure.check(TimeoutError, HostOffline):
            self.outcome.errback(failure)
        elif self.fed.online(self.host):
            self.send()
        else:
            self.wait_for_host(left, failure)

    def wait_for_host(self, left: float, failure: Failure) -> None:
        def back(host: str, online: bool) -> None:
            if host == self.host and online:
                self.done_waiting()
                self.send()

        def give_up() -> None:
            self._timer = None
            self.done_waiting()
            self.outcome.errback(HostOffline(
                self.host, f"offline before it answered ({failure.getErrorMessage()}), "
                "not back in time: the message may have been delivered"))

        self._stop_waiting = self.fed.on_presence(back)
        self._timer = self.clock.callLater(left, give_up)

    def done_waiting(self) -> None:
        if self._stop_waiting is not None:
            self._stop_waiting()
            self._stop_waiting = None
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None


class _Outcome:
    """A delivery's outcome, once known, for the answer and every duplicate's answer."""

    __slots__ = ("done", "value", "waiters")

    def __init__(self) -> None:
        self.done = False
        self.value: object = None
        self.waiters: list[Deferred[Any]] = []

    def settle(self, value: object) -> None:
        self.done, self.value = True, value
        waiters, self.waiters = self.waiters, []
        for waiter in waiters:
            tell(waiter, value)

    def copy(self) -> Deferred[Any]:
        answer: Deferred[Any] = Deferred()
        if self.done:
            tell(answer, self.value)
        else:
            self.waiters.append(answer)
        return answer


def attach(fed: FederationLink, bus: Bus, log: Logger) -> Callable[[], None]:
    """Start forwarding for ``fed`` (the federation plugin, from its start); returns the
    detach to call first thing in its stop."""
    settings = getattr(fed, "settings", None)
    deadline = float(getattr(settings, "request_timeout", DEADLINE))
    commands = Commands(fed, bus, log, deadline=deadline, attempt=min(ATTEMPT, deadline / 2),
                        window=float(getattr(settings, "dedup_window", WINDOW)))
    commands.start()
    fed_any: Any = fed
    fed_any.commands = commands  # for the plugin's status and the benchmark's counters
    return commands.stop


__all__ = ["ENDPOINT", "KIND", "RECORD", "Commands", "FederationLink", "attach"]
