"""Addresses across hosts in one process, on a fake clock: ``id@host``, the bus's gateway,
and the forwarding's retries and once-only delivery between two buses joined by an
in-memory link (the transport's own behaviour is the process tests' business)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from twisted.internet.defer import Deferred, fail, maybeDeferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import Clock
from twisted.logger import Logger
from twisted.python.failure import Failure

from hadaemon.bus import (
    Address,
    AmbiguousDestination,
    Bus,
    DestinationGone,
    HostOffline,
    InvalidAddress,
    UnknownDestination,
)
from hadaemon.federation.commands import ENDPOINT, RECORD, Commands
from hadaemon.nodes.flows import Target, check_node_id


def result_of(d: Deferred[Any]) -> Any:
    box: list[Any] = []
    d.addBoth(box.append)
    assert box, "Deferred has not fired"
    return box[0]


def test_an_id_may_name_its_host() -> None:
    address = Address.parse("node:n1@pi-b/0")
    assert (address.kind, address.id, address.path) == ("node", "n1@pi-b", "0")
    assert (address.host, address.local_id) == ("pi-b", "n1")
    assert address.local() == Address("node", "n1", "0")
    assert Address.parse("service:echo_py/ping").host is None
    assert Address.parse("service:echo_py/ping").on_host("pi-a") == Address.parse(
        "service:echo_py@pi-a/ping")
    assert address.on_host("pi-a") is address  # a named host stays


def test_node_ids_refuse_the_host_separator_and_remote_wires_go_over_the_bus() -> None:
    assert "'@'" in (check_node_id("n1@pi-b") or "")
    assert Target(Address.parse("node:n1/0")).node_id == "n1"
    remote = Target(Address.parse("node:n1@pi-b/1"))
    assert remote.node_id is None
    assert remote.describe() == {"address": "node:n1@pi-b/1"}


def test_the_gateway_is_asked_only_for_endpoints_not_registered_here() -> None:
    clock = Clock()
    bus = Bus(clock)
    asked: list[str] = []
    got: list[Address] = []
    bus.register("here:one", lambda address, message: got.append(address))

    def gateway(address: Address) -> str | None:
        asked.append(str(address))
        if address.host == "gone":
            raise HostOffline("gone", f"{address} not sent", address=str(address))
        return "here:one" if address.host == "there" else None

    with pytest.raises(UnknownDestination):
        bus.deliver("node:x@there/0", 1)  # no gateway yet
    bus.set_gateway(gateway)
    with pytest.raises(RuntimeError):
        bus.set_gateway(gateway)
    bus.send("here:one/a", 1)
    d = bus.send("node:x@there/0", 2)
    refused = result_of(bus.send("node:x@gone/0", 3))  # at once: no turn needed
    assert refused.check(HostOffline) and refused.check(DestinationGone)
    assert str(refused.value) == "host 'gone' is offline: node:x@gone/0 not sent"
    assert result_of(bus.send("node:y/0", 4)).check(UnknownDestination)
    clock.advance(0)
    assert [str(a) for a in got] == ["here:one/a", "node:x@there/0"]  # as it was sent
    assert result_of(d) is None
    assert asked == ["node:x@there/0", "node:x@gone/0", "node:y/0"]
    bus.set_gateway(None)
    assert result_of(bus.send("node:x@there/0", 5)).check(UnknownDestination)


class Link:
    """Two hosts' federation as commands.py sees it, joined in memory: requests reach
    the other side's handler; answers can be lost (``lose``), hosts go offline."""

    def __init__(self, clock: Clock, host: str, peers: dict[str, Link]) -> None:
        self.host, self.peers, self.clock = host, peers, clock
        self.reactor: IReactorTime = clock
        peers[host] = self
        self.up: set[str] = set()
        self.handlers: dict[str, Callable[[str, Any], object]] = {}
        self.watchers: list[Callable[[str, Any], object]] = []
        self.presence: list[Callable[[str, bool], object]] = []
        self.lose = 0  # answers to drop
        self.sent: list[Any] = []

    def online(self, host: str) -> bool:
        return host == self.host or host in self.up

    def known_hosts(self) -> frozenset[str]:
        return frozenset(self.peers) - {self.host}

    def set_online(self, host: str, online: bool) -> None:
        (self.up.add if online else self.up.discard)(host)
        for callback in list(self.presence):
            callback(host, online)

    def request(self, host: str, kind: str, body: Any, *,
                timeout: float | None = None) -> Deferred[Any]:
        if not self.online(host):
            return fail(HostOffline(host, "not sent"))
        self.sent.append(body)
        answer: Deferred[Any] = Deferred()
        timer = self.clock.callLater(timeout or 5.0, lambda: answer.errback(
            TimeoutError(f"{host} did not answer")))
        served = maybeDeferred(self.peers[host].handlers[kind], self.host, body)

        def answered(outcome: object) -> None:
            if self.lose:
                self.lose -= 1
                return
            if timer.active():
                timer.cancel()
                if isinstance(outcome, Failure):
                    answer.errback(outcome)
                else:
                    answer.callback(outcome)

        served.addBoth(answered)
        return answer

    def serve(self, kind: str, handler: Callable[[str, Any], object]) -> Callable[[], None]:
        self.handlers[kind] = handler

        def remove() -> None:
            self.handlers.pop(kind, None)
        return remove

    def on_presence(self, callback: Callable[[str, bool], object]) -> Callable[[], None]:
        self.presence.append(callback)
        return lambda: self.presence.remove(callback)

    def announce(self, name: str, body: Any) -> Deferred[None]:
        for peer in self.peers.values():
            if peer is not self:
                for watcher in peer.watchers:
                    watcher(self.host, body)
        done: Deferred[None] = Deferred()
        done.callback(None)
        return done

    def watch(self, name: str, callback: Callable[[str, Any], object]) -> Callable[[], None]:
        assert name == RECORD
        self.watchers.append(callback)
        return lambda: self.watchers.remove(callback)


@pytest.fixture
def two_hosts() -> tuple[Clock, dict[str, Bus], dict[str, Link]]:
    clock = Clock()
    peers: dict[str, Link] = {}
    buses = {name: Bus(clock) for name in ("a", "c")}
    links = {name: Link(clock, name, peers) for name in buses}
    links["a"].up.add("c")
    links["c"].up.add("a")
    for name, bus in buses.items():
        Commands(links[name], bus, Logger()).start()
    return clock, buses, links


def test_a_lost_answer_is_asked_for_again_and_the_message_delivered_once(
    two_hosts: tuple[Clock, dict[str, Bus], dict[str, Link]],
) -> None:
    clock, buses, links = two_hosts
    got: list[tuple[Any, Any]] = []

    def tally(message: Any) -> int:
        got.append((message.payload, str(message.sender)))
        return len(got)

    buses["c"].register("service:tally_py", tally, typed=True)
    clock.advance(5.0)  # C announces its endpoints
    links["a"].lose = 1
    d = buses["a"].send("service:tally_py@c/add", {"seq": 1}, sender="service:counter_py")
    clock.advance(0)
    clock.advance(0)
    assert got == [({"seq": 1}, "service:counter_py@a")]
    assert not d.called
    clock.advance(2.0)  # the first try times out: the same body again
    clock.advance(0)
    assert [b["id"] for b in links["a"].sent] == [links["a"].sent[0]["id"]] * 2
    assert result_of(d) == 1
    assert len(got) == 1  # delivered once, answered twice


def test_a_host_gone_before_it_answered_is_asked_again_once_back(
    two_hosts: tuple[Clock, dict[str, Bus], dict[str, Link]],
) -> None:
    clock, buses, links = two_hosts
    buses["c"].register("node:n1", lambda address, payload: payload["x"] * 2)
    clock.advance(5.0)  # C announces its endpoints
    links["a"].lose = 1
    d = buses["a"].send("node:n1@c/0", {"x": 21})
    clock.advance(0)
    clock.advance(0)
    links["a"].set_online("c", False)   # nothing is sent meanwhile ...
    clock.advance(2.0)
    assert len(links["a"].sent) == 1 and not d.called
    # ... a new send to it fails at once ...
    assert result_of(buses["a"].send("node:n1@c/0", {"x": 1})).check(HostOffline)
    links["a"].set_online("c", True)    # ... and back, the first goes again
    clock.advance(0)
    assert result_of(d) == 42
    # Not back in time: HostOffline, saying it may have been delivered.
    links["a"].lose = 1
    late = buses["a"].send("node:n1@c/0", {"x": 2})
    clock.advance(0)
    clock.advance(0)
    links["a"].set_online("c", False)
    clock.advance(2.0)
    clock.advance(10.0)
    failure = result_of(late)
    assert failure.check(HostOffline) and "may have been delivered" in str(failure.value)


def test_ids_without_a_host_are_found_in_the_others_records(
    two_hosts: tuple[Clock, dict[str, Bus], dict[str, Link]],
) -> None:
    clock, buses, links = two_hosts
    buses["c"].register("service:only_c", lambda address, payload: "c")
    buses["c"].register("service:both", lambda address, payload: "c")
    buses["a"].register("service:mine", lambda address, payload: "a")
    Link(clock, "b", links["a"].peers).announce(RECORD, ["service:both", "device:3"])
    clock.advance(5.0)  # C looks for endpoints that came, and announces them
    d = buses["a"].send("service:only_c/x", None)
    clock.advance(0)
    clock.advance(0)
    assert result_of(d) == "c"
    refused = result_of(buses["a"].send("service:both/x", None))
    assert refused.check(AmbiguousDestination)
    assert "service:both/x is on several hosts (b, c)" in str(refused.value)
    missing = result_of(buses["a"].send("service:nope@c/x", None))  # C said what it has
    assert missing.check(UnknownDestination) and "has no service:nope" in str(missing.value)
    assert result_of(buses["a"].send("service:nobody/x", None)).check(UnknownDestination)
    for bad in ("service:x@/y", "node:@c/0"):
        assert result_of(buses["a"].send(bad, None)).check(InvalidAddress), bad
    here = buses["a"].send("service:mine@a/x", None)  # this host, by its name
    clock.advance(0)
    clock.advance(0)
    assert result_of(here) == "a"
    assert buses["a"].has_endpoint(ENDPOINT)
