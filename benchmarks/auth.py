"""What authentication costs: a password check, and the per-request checks.

Run by hand: ``.venv/bin/python benchmarks/auth.py [ROUNDS]``. Prints the time of one
scrypt password check at the default cost (it runs in the thread pool, never on the
reactor thread), and the microseconds the reactor thread spends per request to accept a
bearer token or a session cookie with its CSRF token (a real credentials store, a fake
clock). Figures on a loaded machine are only indicative.
"""

from __future__ import annotations

import pathlib
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any, cast

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.task import Clock
from twisted.web.iweb import IRequest

from hadaemon.store import Store
from hadaemon.web.auth import WebAuth
from hadaemon.web.auth.passwords import hash_password, verify_password

PASSWORD = "correct horse battery"


class Request:
    """Just what WebAuth reads from a request."""

    def __init__(self, headers: dict[bytes, bytes], cookies: dict[bytes, bytes]) -> None:
        self.headers, self.cookies = headers, cookies

    def getHeader(self, name: bytes) -> bytes | None:
        return self.headers.get(name.lower())

    def getCookie(self, name: bytes) -> bytes | None:
        return self.cookies.get(name)


def per_call_us(f: Callable[[], object], count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        f()
    return (time.perf_counter() - start) / count * 1e6


def main(rounds: int) -> None:
    record = hash_password(PASSWORD)
    checks = []
    for _ in range(5):
        start = time.perf_counter()
        verify_password(PASSWORD, record)
        checks.append(time.perf_counter() - start)
    print(f"password check (scrypt N=2**15 r=8 p=1; the daemon runs it in a thread): "
          f"median {statistics.median(checks) * 1e3:.0f} ms")

    with tempfile.TemporaryDirectory() as tmp:
        clock = Clock()
        store = Store(pathlib.Path(tmp) / "credentials.db", reactor=clock, secret=True,
                      run_in_thread=maybeDeferred)
        store.open()
        auth = WebAuth(store, reactor=clock, secure=False, environ={},
                       run_in_thread=maybeDeferred)
        store.put("web/auth/password", hash_password(PASSWORD, n=2**10))
        for n in range(100):
            auth.create_token(f"script {n}")
        _id, token = auth.create_token("bench")
        outcome: list[Any] = []
        Deferred.fromCoroutine(auth.login(PASSWORD, client="bench")).addBoth(outcome.append)
        login = outcome[0]
        cookie = login.set_cookie.split(b";")[0].split(b"=", 1)[1]
        bearer = cast(IRequest, Request({b"authorization": b"Bearer " + token.encode()}, {}))
        session = cast(IRequest, Request(
            {b"x-csrf-token": login.principal.csrf_token.encode()},
            {b"hadaemon_session": cookie}))
        for round_ in range(1, rounds + 1):
            count = 20_000
            t = per_call_us(lambda: auth.require(bearer, state_changing=True), count)
            s = per_call_us(lambda: auth.require(session, state_changing=True), count)
            print(f"round {round_}: bearer token {t:.1f} us/request, session + CSRF "
                  f"{s:.1f} us/request (reactor thread; 101 tokens stored)")
        store.stopService()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
