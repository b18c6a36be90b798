"""Failed logins slow down per client, then lock it out (429), in bounded memory."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from hadaemon.web.auth import AuthError, LoginThrottle, WebAuth
from hadaemon.web.auth.throttle import client_key
from tests.web.auth_helpers import (
    PASSWORD,
    cheap_auth,
    open_store,
    set_cheap_password,
    start,
)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def auth(tmp_path: pathlib.Path, clock: Clock) -> WebAuth:
    return cheap_auth(tmp_path, clock)


def error_of(outcome: list[Any]) -> AuthError:
    assert outcome and isinstance(outcome[0], Failure), outcome
    error = outcome[0].value
    assert isinstance(error, AuthError)
    return error


def fail_once(auth: WebAuth, clock: Clock, client: str = "10.0.0.9") -> float:
    """One wrong password; the seconds its answer was held."""
    outcome = start(auth.login("wrong password", client=client))
    held = 0.0
    while not outcome:
        step = min(call.getTime() for call in clock.getDelayedCalls()) - clock.seconds()
        clock.advance(step)
        held += step
    assert error_of(outcome).code == "bad_password"
    return held


def test_each_failure_waits_longer(auth: WebAuth, clock: Clock) -> None:
    assert [fail_once(auth, clock) for _ in range(4)] == [1.0, 2.0, 4.0, 8.0]


def test_the_answer_is_held_exactly_the_delay(auth: WebAuth, clock: Clock) -> None:
    outcome = start(auth.login("wrong password", client="a"))
    clock.advance(0.999)
    assert outcome == []
    clock.advance(0.001)
    assert error_of(outcome).status == 401


def test_a_parallel_attempt_is_refused_while_one_is_held(auth: WebAuth,
                                                         clock: Clock) -> None:
    held = start(auth.login("wrong password", client="a"))
    clock.advance(0.25)
    error = error_of(start(auth.login(PASSWORD, client="a")))
    assert (error.status, error.code, error.retry_after) == (429, "too_many_attempts", 1.0)
    assert "already being checked" in error.message
    # another client is not slowed down by this one
    assert start(auth.login(PASSWORD, client="b"))[0].principal.name == "admin"
    clock.advance(0.75)
    assert error_of(held).code == "bad_password"
    assert start(auth.login(PASSWORD, client="a"))[0].principal.name == "admin"


def test_after_five_failures_the_client_is_locked_out(auth: WebAuth, clock: Clock) -> None:
    for _ in range(5):
        fail_once(auth, clock)
    # the fifth was held 8 s; the lockout of 60 s runs from its answer
    error = error_of(start(auth.login(PASSWORD, client="10.0.0.9")))
    assert (error.status, error.code) == (429, "too_many_attempts")
    assert error.retry_after == pytest.approx(60.0)
    assert "10.0.0.9" in error.message and "60 seconds" in error.message
    clock.advance(59.5)
    assert error_of(start(auth.login(PASSWORD, client="10.0.0.9"))).retry_after == 0.5
    clock.advance(0.5)
    # the right password works again, and forgets the failures
    assert start(auth.login(PASSWORD, client="10.0.0.9"))[0].principal.name == "admin"
    assert auth.throttle.failures("10.0.0.9") == 0
    assert fail_once(auth, clock) == 1.0


def test_lockouts_grow_while_failures_go_on(auth: WebAuth, clock: Clock) -> None:
    for _ in range(4):
        fail_once(auth, clock)
    lockouts = []
    for _ in range(3):
        fail_once(auth, clock)
        retry = error_of(start(auth.login(PASSWORD, client="10.0.0.9"))).retry_after
        assert retry is not None
        lockouts.append(retry)
        clock.advance(retry)
    assert lockouts == [60.0, 120.0, 240.0]


def test_locked_out_clients_are_refused_before_any_hashing(auth: WebAuth, clock: Clock,
                                                           monkeypatch: Any) -> None:
    for _ in range(5):
        fail_once(auth, clock)
    calls: list[object] = []
    monkeypatch.setattr("hadaemon.web.auth.webauth.verify_password",
                        lambda *a: calls.append(a))
    assert error_of(start(auth.login(PASSWORD, client="10.0.0.9"))).status == 429
    assert calls == []


def test_memory_stays_bounded_for_many_clients() -> None:
    clock = Clock()
    throttle = LoginThrottle(clock, max_clients=100)
    for n in range(1000):
        client = f"10.1.{n // 256}.{n % 256}"
        throttle.begin(client)
        throttle.failed(client)
        throttle.end(client)
    assert len(throttle) == 100
    assert throttle.failures("10.1.3.231") == 1  # the most recent are kept
    assert throttle.failures("10.1.0.0") == 0


def test_idle_clients_are_forgotten() -> None:
    clock = Clock()
    throttle = LoginThrottle(clock, forget_after=3600.0, lock_after=2, lockout=7200.0)
    for client in ("a", "b"):
        throttle.begin(client)
        throttle.failed(client)
        throttle.end(client)
    throttle.begin("locked")
    throttle.failed("locked")
    throttle.end("locked")
    throttle.begin("locked")
    throttle.failed("locked")
    throttle.end("locked")
    clock.advance(3601)
    throttle.begin("c")
    throttle.end("c")
    # a and b are gone; the locked-out client is remembered until its lockout ends
    assert (throttle.failures("a"), throttle.failures("b")) == (0, 0)
    assert throttle.failures("locked") == 2
    with pytest.raises(AuthError):
        throttle.begin("locked")


def test_too_many_logins_at_once_are_refused(tmp_path: pathlib.Path, clock: Clock) -> None:
    from twisted.internet.defer import Deferred

    store = open_store(tmp_path, clock)
    set_cheap_password(store)
    pending: list[Deferred[bool]] = []

    def never_done(_f: Any) -> Deferred[bool]:
        d: Deferred[bool] = Deferred()
        pending.append(d)
        return d

    from hadaemon.web.auth.webauth import MAX_HASHING, MAX_WAITING

    auth = WebAuth(store, reactor=clock, secure=False, environ={},
                   run_in_thread=never_done)  # type: ignore[arg-type]
    outcomes = [start(auth.login(PASSWORD, client=f"c{n}"))
                for n in range(MAX_HASHING + MAX_WAITING + 1)]
    assert len(pending) == MAX_HASHING  # two hashes at a time, the rest wait
    assert [bool(o) for o in outcomes].count(True) == 1
    error = error_of(outcomes[-1])
    assert (error.status, error.retry_after) == (429, 1.0)
    assert "at once" in error.message
    released = 0
    while released < len(pending):  # each finished hash lets a waiting one start
        pending[released].callback(True)
        released += 1
    assert released == MAX_HASHING + MAX_WAITING
    assert all(o and not isinstance(o[0], Failure) for o in outcomes[:-1])


@pytest.mark.parametrize(("address", "key"), [
    ("192.0.2.7", "192.0.2.7"),
    ("::ffff:192.0.2.7", "192.0.2.7"),
    ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
    ("::1", "::/64"),
    ("unix socket", "unix socket"),
])
def test_clients_are_counted_by_address_and_ipv6_by_its_64(address: str, key: str) -> None:
    assert client_key(address) == key


def test_a_whole_ipv6_64_shares_one_lockout(auth: WebAuth, clock: Clock) -> None:
    for n in range(5):
        fail_once(auth, clock, client=f"2001:db8:1:2::{n + 1:x}")
    error = error_of(start(auth.login(PASSWORD, client="2001:db8:1:2:ffff::9")))
    assert (error.status, error.code) == (429, "too_many_attempts")
    assert "2001:db8:1:2::/64" in error.message
    assert start(auth.login(PASSWORD, client="2001:db8:1:3::1"))[0].principal.name == "admin"


def test_a_client_hanging_up_does_not_free_its_hash_slot(tmp_path: pathlib.Path,
                                                         clock: Clock) -> None:
    from twisted.internet.defer import CancelledError, Deferred

    store = open_store(tmp_path, clock)
    set_cheap_password(store)
    pending: list[Deferred[bool]] = []

    def never_done(_f: Any) -> Deferred[bool]:
        d: Deferred[bool] = Deferred()  # a thread: it cannot be cancelled
        pending.append(d)
        return d

    auth = WebAuth(store, reactor=clock, secure=False, environ={},
                   run_in_thread=never_done)  # type: ignore[arg-type]
    logins = [Deferred.fromCoroutine(auth.login(PASSWORD, client=f"c{n}")) for n in range(3)]
    assert len(pending) == 2
    outcomes: list[Any] = []
    logins[0].addBoth(outcomes.append)
    logins[0].cancel()  # the web layer cancels when the client hangs up
    assert isinstance(outcomes[0], Failure) and outcomes[0].check(CancelledError)
    assert len(pending) == 2  # the third still waits: the first hash is still running
    assert auth.throttle.failures("c0") == 0
    start(auth.login(PASSWORD, client="c0"))  # the client may ask again at once
    pending[0].callback(True)  # now the slot is free
    assert len(pending) == 3
