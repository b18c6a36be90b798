"""The one error the auth layer raises: an HTTP status, a stable code and a human text."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class AuthError(Exception):
    """A refused request: ``status`` (400, 401, 403 or 429), ``code`` for programs,
    ``message`` for people, ``retry_after`` seconds for a 429, and ``details``: more
    public fields of the answer (a 401 ``login_required`` says ``password_set``).

    The web layer turns it into ``{"error": code, "message": message, **details}`` with
    that status (and a ``Retry-After`` header for a 429). Messages never contain a
    password or a token secret.
    """

    def __init__(self, status: int, code: str, message: str, *,
                 retry_after: float | None = None,
                 details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self.details = dict(details or {})

    def __repr__(self) -> str:
        extra = f", retry_after={self.retry_after:g}" if self.retry_after is not None else ""
        return f"AuthError({self.status}, {self.code!r}, {self.message!r}{extra})"
