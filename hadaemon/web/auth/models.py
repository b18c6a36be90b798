"""Plain data the auth layer hands to the web layer: who is asking, what a login gave."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Principal:
    """Who made a request: the admin's browser session, or a named API token."""

    kind: Literal["session", "token"]
    name: str  # "admin" for a session, the token's name for a token
    csrf_token: str | None  # sessions only: what X-CSRF-Token must carry


@dataclass(frozen=True)
class LoginResult:
    """A successful login: the session's principal and its Set-Cookie header value."""

    principal: Principal
    set_cookie: bytes
