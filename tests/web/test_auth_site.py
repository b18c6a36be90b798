"""WebAuth behind a real twisted.web Site on a real port, spoken to over real HTTP."""

from __future__ import annotations

import io
import json
import pathlib
import threading
from typing import Any

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.task import Cooperator
from twisted.web.client import Agent, FileBodyProducer, readBody
from twisted.web.http_headers import Headers
from twisted.web.iweb import IRequest
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site

from hadaemon.store import Store
from hadaemon.testing import run_in_reactor
from hadaemon.web.auth import COOKIE_NAME, AuthError, LoginThrottle, WebAuth
from hadaemon.web.auth import webauth as webauth_module
from hadaemon.web.auth.passwords import verify_password as real_verify
from tests.web.auth_helpers import PASSWORD


class AuthOnly(Resource):
    """The routes the web plugin will serve, reduced to what auth decides."""

    isLeaf = True

    def __init__(self, auth: WebAuth) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.auth = auth

    def render(self, request: IRequest) -> int:
        Deferred.fromCoroutine(self.answer(request))
        return NOT_DONE_YET

    async def answer(self, request: Any) -> None:
        try:
            body = await self.route(request)
        except AuthError as error:
            request.setResponseCode(error.status)
            if error.retry_after is not None:
                request.setHeader(b"retry-after", str(round(error.retry_after)).encode())
            body = {"error": error.code, "message": error.message}
        request.setHeader(b"content-type", b"application/json")
        request.write(json.dumps(body).encode())
        request.finish()

    async def route(self, request: Any) -> dict[str, Any]:
        if request.path == b"/api/login":
            password = json.loads(request.content.read())["password"]
            login = await self.auth.login(password, client=request.getClientAddress().host)
            request.setHeader(b"set-cookie", login.set_cookie)
            return {"csrf_token": login.principal.csrf_token}
        if request.path == b"/api/logout":
            request.setHeader(b"set-cookie", self.auth.logout(request))
            return {}
        principal = self.auth.require(request, state_changing=request.method != b"GET")
        return {"kind": principal.kind, "name": principal.name}


# readBody warns about the response's transport wrapper, not about anything of ours
@pytest.mark.filterwarnings("ignore:Using readBody:DeprecationWarning")
def test_login_csrf_and_tokens_over_real_http(tmp_path: pathlib.Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    hashed_in: list[int] = []

    def verify(password: str, record: Any) -> bool:
        hashed_in.append(threading.get_ident())
        return real_verify(password, record)

    monkeypatch.setattr(webauth_module, "verify_password", verify)

    async def scenario(reactor: Any) -> None:
        store = Store(tmp_path / "credentials.db", reactor=reactor, secret=True)
        store.open()
        throttle = LoginThrottle(reactor, base_delay=0.01, max_delay=0.02, lock_after=3)
        auth = WebAuth(store, reactor=reactor, secure=False, environ={}, throttle=throttle)
        auth.set_password(PASSWORD)
        _token_id, token = auth.create_token("script")
        port = reactor.listenTCP(0, Site(AuthOnly(auth)), interface="127.0.0.1")
        base = f"http://127.0.0.1:{port.getHost().port}".encode()
        agent = Agent(reactor)
        cooperator = Cooperator(scheduler=lambda work: reactor.callLater(0, work))

        async def call(method: bytes, path: bytes, body: Any = None,
                       **headers: str) -> tuple[int, dict[str, Any], Headers]:
            sent = Headers({k.replace("_", "-").encode(): [v.encode()]
                            for k, v in headers.items()})
            # the default cooperator runs on the global reactor, which is not this one
            producer = (FileBodyProducer(io.BytesIO(json.dumps(body).encode()),
                                         cooperator=cooperator)
                        if body is not None else None)
            response = await agent.request(method, base + path, sent, producer)
            data = json.loads(await readBody(response))
            return response.code, data, response.headers

        try:
            code, data, _ = await call(b"GET", b"/api/status")
            assert (code, data["error"]) == (401, "login_required")

            code, data, _ = await call(b"POST", b"/api/login", {"password": "wrong one"})
            assert (code, data["error"]) == (401, "bad_password")

            code, data, headers = await call(b"POST", b"/api/login", {"password": PASSWORD})
            assert code == 200
            csrf = data["csrf_token"]
            set_cookie = (headers.getRawHeaders(b"set-cookie") or [b""])[0].decode()
            assert set_cookie.startswith(f"{COOKIE_NAME}=")
            assert {"HttpOnly", "SameSite=Strict", "Path=/"} <= set(set_cookie.split("; "))
            cookie = set_cookie.split(";")[0]

            code, data, _ = await call(b"GET", b"/api/status", Cookie=cookie)
            assert (code, data) == (200, {"kind": "session", "name": "admin"})
            code, data, _ = await call(b"POST", b"/api/things", {}, Cookie=cookie)
            assert (code, data["error"]) == (403, "csrf_missing")
            code, data, _ = await call(b"POST", b"/api/things", {}, Cookie=cookie,
                                       X_CSRF_Token=csrf[::-1])
            assert (code, data["error"]) == (403, "csrf_mismatch")
            code, data, _ = await call(b"POST", b"/api/things", {}, Cookie=cookie,
                                       X_CSRF_Token=csrf)
            assert (code, data["name"]) == (200, "admin")

            code, data, _ = await call(b"DELETE", b"/api/things/1",
                                       Authorization=f"Bearer {token}")
            assert (code, data) == (200, {"kind": "token", "name": "script"})
            code, data, _ = await call(b"GET", b"/api/status",
                                       Authorization=f"Bearer {token}x")
            assert (code, data["error"]) == (401, "token_unknown")

            code, _, headers = await call(b"POST", b"/api/logout", {}, Cookie=cookie)
            assert "Max-Age=0" in (headers.getRawHeaders(b"set-cookie") or [b""])[0].decode()
            code, data, _ = await call(b"GET", b"/api/status", Cookie=cookie)
            assert (code, data["error"]) == (401, "login_required")

            # failed logins lock the client out: a 429 with Retry-After
            for _ in range(3):
                code, _, _ = await call(b"POST", b"/api/login", {"password": "nope nope"})
                assert code == 401
            code, data, headers = await call(b"POST", b"/api/login", {"password": PASSWORD})
            assert (code, data.get("error")) == (429, "too_many_attempts"), (code, data)
            assert headers.getRawHeaders(b"retry-after") == [b"60"]
        finally:
            await port.stopListening()
            await store.stopService()

    run_in_reactor(scenario, timeout=60)
    # every password check ran in the thread pool, never on the reactor thread
    assert len(hashed_in) == 5  # the locked-out attempt was refused before hashing
    assert threading.get_ident() not in hashed_in
