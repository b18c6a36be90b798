"""Browser sessions: random ids held in memory, hashed, with an absolute expiry.

Sessions do not survive a restart, on purpose: no session secret is ever written to
disk, and "restart the daemon" logs every browser out. Memory holds only the SHA-256 of
each id, so a memory dump or a log of the table shows no usable cookie. At most
``max_sessions`` live at once; a new login beyond that ends the oldest. Reactor thread
only.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from twisted.internet.interfaces import IReactorTime

COOKIE_NAME = "hadaemon_session"


@dataclass(frozen=True)
class Session:
    """One login: its CSRF token and when it ends (reactor seconds)."""

    csrf_token: str
    created: float
    expires: float


class Sessions:
    """The live sessions, by the hash of their id."""

    def __init__(self, reactor: IReactorTime, *, ttl: float, max_sessions: int = 64) -> None:
        if ttl <= 0 or max_sessions < 1:
            raise ValueError(f"need ttl > 0 and max_sessions >= 1; got {ttl}, {max_sessions}")
        self._reactor = reactor
        self.ttl = ttl
        self.max_sessions = max_sessions
        self._by_hash: dict[bytes, Session] = {}

    def __len__(self) -> int:
        return len(self._by_hash)

    def create(self) -> tuple[str, Session]:
        """A new session: (its id for the cookie, the session)."""
        now = self._reactor.seconds()
        self._purge(now)
        while len(self._by_hash) >= self.max_sessions:  # dicts keep insertion order
            del self._by_hash[next(iter(self._by_hash))]
        session_id = secrets.token_urlsafe(32)
        session = Session(secrets.token_urlsafe(32), now, now + self.ttl)
        self._by_hash[_digest(session_id)] = session
        return session_id, session

    def get(self, session_id: str) -> Session | None:
        """The live session with this id; None if unknown or expired."""
        key = _digest(session_id)
        session = self._by_hash.get(key)
        if session is not None and self._reactor.seconds() >= session.expires:
            del self._by_hash[key]
            return None
        return session

    def remove(self, session_id: str) -> None:
        """End one session (logout); an unknown id is no error."""
        self._by_hash.pop(_digest(session_id), None)

    def clear(self) -> None:
        """End every session (the password changed)."""
        self._by_hash.clear()

    def _purge(self, now: float) -> None:
        for key in [k for k, s in self._by_hash.items() if now >= s.expires]:
            del self._by_hash[key]


def session_cookie(session_id: str, *, max_age: float, secure: bool) -> bytes:
    """The Set-Cookie value: HttpOnly (no script reads it), SameSite=Strict (no other
    site's page sends it), Path=/, Secure under TLS; ``max_age`` 0 clears it."""
    parts = [f"{COOKIE_NAME}={session_id}", "Path=/", f"Max-Age={max(0, int(max_age))}",
             "HttpOnly", "SameSite=Strict"]
    if secure:
        parts.append("Secure")
    return "; ".join(parts).encode("ascii")


def _digest(session_id: str) -> bytes:
    return hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).digest()
