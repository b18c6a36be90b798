"""API tokens for scripts: created and revoked by name, stored only as hashes.

A token is ``hdt_<id>_<secret>``: the id finds its record directly, and the secret part
has 256 random bits, so a fast SHA-256 is as safe as a slow hash here (nobody can guess
through 2**256) and checking a token costs microseconds on every request. The whole
token is shown once, when it is created; the credentials store keeps its hash, name,
creation time and when it was last used. ``last_used`` is written at most once a minute
per token, so a script polling the API does not make the store grow with every request.
Reactor thread only.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import unicodedata
from typing import Any

from twisted.internet.interfaces import IReactorTime

from hadaemon.store import Store
from hadaemon.web.auth.errors import AuthError

TOKEN_KEYS = "web/auth/tokens/"
PREFIX = "hdt_"
MAX_NAME = 64
LAST_USED_EVERY = 60.0  # seconds between writes of one token's last_used


class Tokens:
    """The API tokens in a credentials store."""

    def __init__(self, store: Store, reactor: IReactorTime) -> None:
        self._store = store
        self._reactor = reactor
        self._used: dict[str, float] = {}  # token id -> last use not yet written

    def create(self, name: str) -> tuple[str, str]:
        """(id, token) for a new token called ``name``; the token is not kept."""
        name = self._check_name(name)
        token_id = secrets.token_hex(6)
        while self._store.get(TOKEN_KEYS + token_id) is not None:
            token_id = secrets.token_hex(6)
        token = f"{PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
        self._store.put(TOKEN_KEYS + token_id, {
            "name": name, "hash": _digest(token), "created": self._reactor.seconds(),
            "last_used": None,
        })
        return token_id, token

    def revoke(self, token_id: str) -> bool:
        """Delete a token; False if there was none with this id."""
        if not isinstance(token_id, str) or self._store.get(TOKEN_KEYS + token_id) is None:
            return False
        self._store.delete(TOKEN_KEYS + token_id)
        self._used.pop(token_id, None)
        return True

    def list(self) -> list[dict[str, object]]:
        """id, name, created and last_used (None if never) of every token, oldest first."""
        rows: list[tuple[float, str, dict[str, object]]] = []
        for key, record in self._store.items(TOKEN_KEYS):
            if not _valid(record):
                continue
            token_id = key[len(TOKEN_KEYS):]
            last_used = self._used.get(token_id, record.get("last_used"))
            rows.append((record["created"], token_id, {
                "id": token_id, "name": record["name"], "created": record["created"],
                "last_used": last_used}))
        return [row for _created, _id, row in sorted(rows, key=lambda r: r[:2])]

    def check(self, token: str) -> str | None:
        """The name of the token ``token`` (noting its use); None if unknown or revoked."""
        if not token.startswith(PREFIX):
            return None
        token_id, sep, _secret = token[len(PREFIX):].partition("_")
        if not sep or len(token_id) != 12:
            return None
        record = self._store.get(TOKEN_KEYS + token_id)
        if not _valid(record) or not hmac.compare_digest(record["hash"], _digest(token)):
            return None
        now = self._reactor.seconds()
        written = record.get("last_used")
        if written is None or now - written >= LAST_USED_EVERY:
            self._store.put(TOKEN_KEYS + token_id, {**record, "last_used": now})
            self._used.pop(token_id, None)
        else:
            self._used[token_id] = now
        name: str = record["name"]
        return name

    def _check_name(self, name: object) -> str:
        if not isinstance(name, str) or not name.strip():
            raise AuthError(400, "bad_token_name", "a token needs a non-empty name")
        name = name.strip()
        if len(name) > MAX_NAME:
            raise AuthError(400, "bad_token_name",
                            f"a token name has at most {MAX_NAME} characters, not {len(name)}")
        if any(unicodedata.category(ch).startswith("C") for ch in name):
            raise AuthError(400, "bad_token_name",
                            f"the token name {name!r} contains control characters")
        for token in self.list():
            if token["name"] == name:
                raise AuthError(400, "bad_token_name",
                                f"a token named {name!r} exists already (id {token['id']}): "
                                "revoke it first, or choose another name")
        return name


def _valid(record: Any) -> bool:
    return (isinstance(record, dict) and isinstance(record.get("name"), str)
            and isinstance(record.get("hash"), bytes)
            and isinstance(record.get("created"), int | float))


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
