"""``WebAuth``: who may use the HTTP API (the admin password, sessions, CSRF, tokens).

A library the web plugin mounts; it opens no port itself. Everything here runs on the
reactor thread, except the password hashes, which ``login`` hands to a thread.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, TypeVar, cast

from twisted.internet.defer import Deferred, DeferredSemaphore
from twisted.internet.interfaces import IReactorThreads, IReactorTime
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest

from hadaemon.logs import get_logger
from hadaemon.store import Store, ThreadRunner
from hadaemon.web.auth.errors import AuthError
from hadaemon.web.auth.models import LoginResult, Principal
from hadaemon.web.auth.passwords import (
    ENV_PASSWORD,
    MAX_LENGTH,
    BadPasswordRecord,
    check_new_password,
    hash_password,
    parse_record,
    verify_password,
    verify_plain,
)
from hadaemon.web.auth.sessions import COOKIE_NAME, Sessions, session_cookie
from hadaemon.web.auth.throttle import LoginThrottle, client_key
from hadaemon.web.auth.tokens import Tokens

T = TypeVar("T")

PASSWORD_KEY = "web/auth/password"
NO_PASSWORD = (f"no admin password is set: run `hadaemon passwd --config FILE` while the "
               f"daemon is stopped, or set the environment variable {ENV_PASSWORD}")
#: At most this many password hashes run at once (each takes 32 MiB for ~0.1 s), and at
#: most MAX_WAITING more wait; beyond that a login is refused with a 429.
MAX_HASHING = 2
MAX_WAITING = 16

log = get_logger("hadaemon.web.auth")


class WebAuth:
    """The admin password, browser sessions with CSRF tokens, API tokens, throttling.

    ``credentials`` is the daemon's credentials store (``context.credentials``), open.
    ``secure`` adds ``Secure`` to the session cookie (the server speaks TLS). The
    password in the environment variable ``HADAEMON_ADMIN_PASSWORD`` (containers), when
    set and not empty, is the admin password, and a stored one is then not used.
    Sessions live in memory: a restart logs browsers out (see ``sessions.py``).
    Reactor thread only.
    """

    def __init__(self, credentials: Store, *, reactor: IReactorTime, secure: bool,
                 environ: Mapping[str, str] = os.environ,
                 session_ttl: float = 7 * 86400.0,
                 run_in_thread: ThreadRunner | None = None,
                 throttle: LoginThrottle | None = None) -> None:
        self._store = credentials
        self._reactor = reactor
        self._secure = secure
        self._environ = environ
        self._run_in_thread = run_in_thread
        self.sessions = Sessions(reactor, ttl=session_ttl)
        self.throttle = throttle if throttle is not None else LoginThrottle(reactor)
        self._tokens = Tokens(credentials, reactor)
        self._hashing = DeferredSemaphore(MAX_HASHING)
        self._bad_record_logged = False

    # -- the password -------------------------------------------------------------------

    def password_set(self) -> bool:
        """Whether an admin password exists (stored, or in the environment)."""
        return self._password() is not None

    def password_source(self) -> str | None:
        """``"environment"``, ``"store"`` or None: where the admin password comes from."""
        source = self._password()
        return None if source is None else source[0]

    def set_password(self, password: str) -> None:
        """Store a new admin password's hash and end every session. Hashes in the calling
        thread (~0.1 s): for ``hadaemon passwd``, not for the reactor thread."""
        problem = check_new_password(password)
        if problem is not None:
            raise AuthError(400, "bad_password", problem)
        record = hash_password(password)
        record["set"] = self._reactor.seconds()
        self._store.put(PASSWORD_KEY, record)
        self._bad_record_logged = False
        self.sessions.clear()

    def _password(self) -> tuple[str, Any] | None:
        env = self._environ.get(ENV_PASSWORD)
        if env:
            return "environment", env
        record = self._store.get(PASSWORD_KEY)
        if record is None:
            return None
        try:
            parse_record(record)
        except BadPasswordRecord as exc:
            if not self._bad_record_logged:
                self._bad_record_logged = True
                log.error("{path}: {error}; it counts as no password: set a new one with "
                          "`hadaemon passwd`", path=str(self._store.path), error=str(exc))
            return None
        return "store", record

    # -- login and logout ---------------------------------------------------------------

    async def login(self, password: str, *, client: str) -> LoginResult:
        """A session for the right password; AuthError otherwise.

        400 ``bad_password`` for no password or a huge one, 403 ``no_password_set``,
        401 ``bad_password`` for a wrong one (answered after the client's growing delay),
        429 ``too_many_attempts`` (with ``retry_after``) when ``client`` is locked out or
        already trying, or too many logins are being checked at once.
        """
        if not isinstance(password, str) or not password or len(password) > MAX_LENGTH:
            raise AuthError(400, "bad_password",
                            f"the password must be a non-empty string of at most "
                            f"{MAX_LENGTH} characters")
        source = self._password()
        if source is None:
            raise AuthError(403, "no_password_set", NO_PASSWORD)
        if len(self._hashing.waiting) >= MAX_WAITING:
            raise AuthError(429, "too_many_attempts",
                            "too many logins are being checked at once: try again in a second",
                            retry_after=1.0)
        key = client_key(client)  # an IPv6 client counts by its /64
        self.throttle.begin(key)
        try:
            kind, secret = source
            verify = verify_plain if kind == "environment" else verify_password
            check = self._hashing.run(self._in_thread, partial(verify, password, secret))
            right = await _shielded(check)
            if not right:
                delay = self.throttle.failed(key)
                log.warn("failed web login from {client} ({count} in a row)",
                         client=client, count=self.throttle.failures(key))
                await deferLater(self._reactor, delay, lambda: None)
                raise AuthError(401, "bad_password", "wrong password")
            self.throttle.succeeded(key)
        finally:
            self.throttle.end(key)
        session_id, session = self.sessions.create()
        log.info("web login from {client}", client=client)
        principal = Principal("session", "admin", session.csrf_token)
        cookie = session_cookie(session_id, max_age=self.sessions.ttl, secure=self._secure)
        return LoginResult(principal, cookie)

    def logout(self, request: IRequest) -> bytes:
        """End the request's session (if any); the Set-Cookie value that clears it."""
        session_id = _cookie(request)
        if session_id is not None:
            self.sessions.remove(session_id)
        return session_cookie("", max_age=0, secure=self._secure)

    # -- every request ------------------------------------------------------------------

    def authenticate(self, request: IRequest) -> Principal | None:
        """Who sent ``request`` (a bearer token first, else the session cookie); None if
        nobody valid."""
        try:
            return self._identify(request)
        except AuthError:
            return None

    def require(self, request: IRequest, *, state_changing: bool) -> Principal:
        """Who sent ``request``, or AuthError: 401 without valid credentials; 403 for a
        session's state-changing request without the right X-CSRF-Token header (bearer
        tokens are not sent by browsers on their own, so they need none)."""
        principal = self._identify(request)
        if principal.kind == "session" and state_changing:
            given = _header(request, b"x-csrf-token")
            if not given:
                raise AuthError(403, "csrf_missing",
                                "this request changes state and needs the X-CSRF-Token "
                                "header: the csrf_token from POST /api/login or GET "
                                "/api/session")
            expected = (principal.csrf_token or "").encode("ascii")
            if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected):
                raise AuthError(403, "csrf_mismatch",
                                "the X-CSRF-Token header is not this session's token: "
                                "fetch it again from GET /api/session")
        return principal

    def _identify(self, request: IRequest) -> Principal:
        authorization = _header(request, b"authorization")
        if authorization is not None:
            scheme, _, token = authorization.strip().partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise AuthError(401, "bad_authorization",
                                "the Authorization header must be 'Bearer <token>'")
            name = self._tokens.check(token.strip())
            if name is None:
                raise AuthError(401, "token_unknown", "unknown or revoked API token")
            return Principal("token", name, None)
        session_id = _cookie(request)
        if session_id is None:
            raise self._login_required("log in first (POST /api/login) or send "
                                       "'Authorization: Bearer <token>'")
        session = self.sessions.get(session_id)
        if session is None:
            raise self._login_required("the session has ended (it expired, you logged out, "
                                       "or the daemon restarted): log in again")
        return Principal("session", "admin", session.csrf_token)

    def _login_required(self, message: str) -> AuthError:
        # password_set: so a login page can say at once that there is no password yet
        # (a login would tell anyone as much: 403 no_password_set); nothing else.
        return AuthError(401, "login_required", message,
                         details={"password_set": self.password_set()})

    def _in_thread(self, f: Callable[[], T]) -> Deferred[T]:
        if self._run_in_thread is not None:
            return self._run_in_thread(f)
        threads = cast(IReactorThreads, self._reactor)
        return deferToThreadPool(threads, threads.getThreadPool(), f)

    # -- API tokens ---------------------------------------------------------------------

    def create_token(self, name: str) -> tuple[str, str]:
        """(id, token) of a new API token; show the token once, it is stored hashed.
        AuthError 400 ``bad_token_name`` for an empty, long or duplicate name."""
        token_id, token = self._tokens.create(name)
        log.info("API token {id} ({name}) created", id=token_id, name=name.strip())
        return token_id, token

    def revoke_token(self, token_id: str) -> bool:
        """Revoke a token at once; False if no token has this id."""
        revoked = self._tokens.revoke(token_id)
        if revoked:
            log.info("API token {id} revoked", id=token_id)
        return revoked

    def tokens(self) -> list[dict[str, object]]:
        """Every token's id, name, created and last_used (never the token itself)."""
        return self._tokens.list()


def _shielded(d: Deferred[T]) -> Deferred[T]:
    """``d``'s result, in a Deferred whose cancelling (a client that hung up) leaves ``d``
    alone: a thread cannot be stopped, and its hash keeps the semaphore until it ends,
    so hanging up and asking again cannot run more hashes at once."""
    proxy: Deferred[T] = Deferred()

    def forward(result: T | Failure) -> None:
        if proxy.called:
            return  # cancelled meanwhile: nobody waits for this result
        if isinstance(result, Failure):
            proxy.errback(result)
        else:
            proxy.callback(result)

    d.addBoth(forward)
    return proxy


def _header(request: IRequest, name: bytes) -> str | None:
    value = cast(bytes | str | None, request.getHeader(name))
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return value


def _cookie(request: IRequest) -> str | None:
    value = cast(bytes | None, request.getCookie(COOKIE_NAME.encode("ascii")))
    return value.decode("latin-1") if value else None


