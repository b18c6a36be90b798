"""Shared pieces of the auth tests: a real credentials store on a fake clock."""

from __future__ import annotations

import pathlib
from collections.abc import Coroutine, Mapping
from typing import Any, cast

from twisted.internet.defer import Deferred, ensureDeferred, maybeDeferred
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from twisted.web.test.requesthelper import DummyRequest

from hadaemon.store import Store
from hadaemon.web.auth import COOKIE_NAME, LoginThrottle, WebAuth
from hadaemon.web.auth.passwords import hash_password
from hadaemon.web.auth.webauth import PASSWORD_KEY

PASSWORD = "correct horse battery"


def open_store(path: pathlib.Path, clock: Clock) -> Store:
    """The credentials store as the daemon opens it, with synchronous fsyncs."""
    store = Store(path / "credentials.db", reactor=clock, secret=True,
                  run_in_thread=maybeDeferred)
    store.open()
    return store


def set_cheap_password(store: Store, password: str = PASSWORD) -> None:
    """Store a password hashed with a small scrypt cost: logins verify with the stored
    parameters, so the tests that log in often stay fast."""
    store.put(PASSWORD_KEY, hash_password(password, n=2**10))


def make_auth(store: Store, clock: Clock, *, environ: Mapping[str, str] | None = None,
              secure: bool = False, **kwargs: Any) -> WebAuth:
    """WebAuth on the clock; hashes run synchronously (the thread is the site test's)."""
    return WebAuth(store, reactor=clock, secure=secure, environ=environ or {},
                   run_in_thread=maybeDeferred, throttle=LoginThrottle(clock), **kwargs)


def cheap_auth(path: pathlib.Path, clock: Clock, **kwargs: Any) -> WebAuth:
    """WebAuth over a new store in ``path`` with :data:`PASSWORD` cheaply hashed."""
    store = open_store(path, clock)
    set_cheap_password(store)
    return make_auth(store, clock, **kwargs)


def start(coroutine: Coroutine[Any, Any, Any] | Deferred[Any]) -> list[Any]:
    """Run ``coroutine`` as Twisted would; the list gets its result or Failure."""
    outcome: list[Any] = []
    ensureDeferred(coroutine).addBoth(outcome.append)
    return outcome


def result(coroutine: Coroutine[Any, Any, Any] | Deferred[Any]) -> Any:
    """The result of a coroutine that must finish at once (raises what it raised)."""
    outcome = start(coroutine)
    assert outcome, "the coroutine did not finish"
    if isinstance(outcome[0], Failure):
        outcome[0].raiseException()
    return outcome[0]


class CookieRequest(DummyRequest):
    """DummyRequest with the cookies a real ``twisted.web`` request parses for us."""

    def __init__(self) -> None:
        super().__init__([b"api", b"x"])
        self.received_cookies: dict[bytes, bytes] = {}

    def getCookie(self, key: bytes) -> bytes | None:
        return self.received_cookies.get(key)


def request(*, cookie: str | None = None, csrf: str | None = None,
            authorization: str | None = None, method: bytes = b"GET") -> IRequest:
    """A request carrying the given session cookie and headers."""
    req = CookieRequest()
    req.method = method
    if cookie is not None:
        req.received_cookies[COOKIE_NAME.encode()] = cookie.encode()
    if csrf is not None:
        req.requestHeaders.addRawHeader(b"X-CSRF-Token", csrf.encode())
    if authorization is not None:
        req.requestHeaders.addRawHeader(b"Authorization", authorization.encode())
    return cast(IRequest, req)


def cookie_value(set_cookie: bytes) -> str:
    """The session id in a Set-Cookie value."""
    first = set_cookie.decode().split(";")[0]
    name, _, value = first.partition("=")
    assert name == COOKIE_NAME
    return value
