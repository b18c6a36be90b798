"""Who may use the HTTP API: the admin password, sessions, CSRF, API tokens, throttling.

A library and two commands (``hadaemon passwd``, ``hadaemon token``); the web plugin
mounts it. See docs/http-api.md, "Authentication".
"""

from hadaemon.web.auth.errors import AuthError
from hadaemon.web.auth.models import LoginResult, Principal
from hadaemon.web.auth.passwords import ENV_PASSWORD
from hadaemon.web.auth.sessions import COOKIE_NAME
from hadaemon.web.auth.throttle import LoginThrottle
from hadaemon.web.auth.webauth import WebAuth

__all__ = [
    "COOKIE_NAME",
    "ENV_PASSWORD",
    "AuthError",
    "LoginResult",
    "LoginThrottle",
    "Principal",
    "WebAuth",
]
