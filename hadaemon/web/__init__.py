"""The HTTP API, the live event stream and the console's files (docs/http-api.md)."""

from hadaemon.web.plugin import WebPlugin
from hadaemon.web.settings import DEFAULT_PORT, WebSettings

__all__ = ["DEFAULT_PORT", "WebPlugin", "WebSettings"]
