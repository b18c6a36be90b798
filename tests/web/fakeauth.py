"""A stand-in for hadaemon.web.auth.WebAuth (the contract's interface), used only until
branch webauth is merged: a password from the environment, sessions, CSRF, tokens."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

ENV_PASSWORD = "HADAEMON_ADMIN_PASSWORD"


class AuthError(Exception):
    def __init__(self, status: int, code: str, message: str,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.retry_after = (
            status, code, message, retry_after)


@dataclass(frozen=True)
class Principal:
    kind: Literal["session", "token"]
    name: str
    csrf_token: str | None


@dataclass(frozen=True)
class LoginResult:
    principal: Principal
    set_cookie: bytes


class FakeAuth:
    def __init__(self, credentials: Any, *, reactor: Any, secure: bool,
                 environ: Mapping[str, str]) -> None:
        self._password = environ.get(ENV_PASSWORD) or None
        self._sessions: dict[str, str] = {}
        self._tokens: dict[str, tuple[str, str]] = {}

    def password_set(self) -> bool:
        return self._password is not None

    def set_password(self, password: str) -> None:
        self._password = password

    async def login(self, password: str, *, client: str) -> LoginResult:
        if self._password is None:
            raise AuthError(403, "no_password_set", "no admin password is set")
        if password != self._password:
            raise AuthError(401, "bad_password", "wrong password")
        session, csrf = secrets.token_hex(8), secrets.token_hex(8)
        self._sessions[session] = csrf
        return LoginResult(Principal("session", "admin", csrf),
                           f"hadaemon_session={session}; HttpOnly; SameSite=Strict; "
                           "Path=/".encode())

    def logout(self, request: Any) -> bytes:
        self._sessions.pop((request.getCookie(b"hadaemon_session") or b"").decode(), None)
        return b"hadaemon_session=; Max-Age=0; Path=/"

    def authenticate(self, request: Any) -> Principal | None:
        header = (request.getHeader(b"authorization") or b"").decode()
        if header.startswith("Bearer "):
            secret = header[7:]
            for token_id, (name, known) in self._tokens.items():
                if known == secret:
                    return Principal("token", name, None)
            return None
        cookie = request.getCookie(b"hadaemon_session")
        csrf = self._sessions.get(cookie.decode()) if cookie else None
        return Principal("session", "admin", csrf) if csrf else None

    def require(self, request: Any, *, state_changing: bool) -> Principal:
        principal = self.authenticate(request)
        if principal is None:
            raise AuthError(401, "login_required", "log in or send an API token")
        if principal.kind == "session" and state_changing:
            given = (request.getHeader(b"x-csrf-token") or b"").decode()
            if not given:
                raise AuthError(403, "csrf_missing", "X-CSRF-Token missing")
            if given != principal.csrf_token:
                raise AuthError(403, "csrf_mismatch", "X-CSRF-Token wrong")
        return principal

    def create_token(self, name: str) -> tuple[str, str]:
        token_id, secret = secrets.token_hex(4), secrets.token_hex(16)
        self._tokens[token_id] = (name, secret)
        return token_id, secret

    def revoke_token(self, token_id: str) -> bool:
        return self._tokens.pop(token_id, None) is not None

    def tokens(self) -> list[dict[str, object]]:
        return [{"id": i, "name": n} for i, (n, _s) in self._tokens.items()]
