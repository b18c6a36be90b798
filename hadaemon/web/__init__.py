"""The HTTP API, the live event stream and the console's files (docs/http-api.md).

Names are imported on first use: the command line (``hadaemon passwd``, ``hadaemon
status``) imports ``hadaemon.web.auth`` and ``hadaemon.web.cli`` without twisted.web.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hadaemon.web.plugin import WebPlugin
    from hadaemon.web.settings import DEFAULT_PORT, WebSettings

__all__ = ["DEFAULT_PORT", "WebPlugin", "WebSettings"]


def __getattr__(name: str) -> Any:
    if name == "WebPlugin":
        from hadaemon.web.plugin import WebPlugin

        return WebPlugin
    if name in ("DEFAULT_PORT", "WebSettings"):
        from hadaemon.web import settings

        return getattr(settings, name)
    raise AttributeError(f"module 'hadaemon.web' has no attribute {name!r}")
