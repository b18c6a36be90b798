"""The ``web`` plugin: the HTTP API, the live event stream and the console's files,
served by twisted.web in the daemon's own reactor (no second loop, no second process).

Start: check the ``[web]`` section, open the auth (``hadaemon.web.auth``), refuse a
non-loopback address while no admin password is set, start following the bus (event
journal, recent errors), the log (recent lines) and the reactor's lag, then listen.
Stop: close the event streams (each is told why), stop listening.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping
from typing import Any, ClassVar

from twisted.internet.interfaces import IListeningPort

from hadaemon.bus import ErrorEvent, Event, Subscription
from hadaemon.config import Section
from hadaemon.plugin import Plugin, PluginContext
from hadaemon.web.api import routes
from hadaemon.web.events import Journal, event_document
from hadaemon.web.logring import LogRing
from hadaemon.web.resource import ApiResource, ApiSite, StaticFiles
from hadaemon.web.settings import WebSettings, settings_problems

RECENT_ERRORS = 50


class WebPlugin(Plugin):
    """The HTTP API (docs/http-api.md)."""

    name = "web"
    description = "the HTTP API, live events and the console (docs/http-api.md)"
    schema: ClassVar[Section] = WebSettings.schema()
    # Started after the plugins it shows, so it stops (and closes its streams) first.
    wants: ClassVar[tuple[str, ...]] = ("nodes", "services", "zigbee2mqtt", "history",
                                        "metrics")

    def __init__(self, context: PluginContext) -> None:
        super().__init__(context)
        self.settings = WebSettings.from_section(context.config)
        self.auth: Any = None
        self.port: IListeningPort | None = None
        self.started_at = time.time()
        self.log_ring = LogRing(self.settings.log_lines)
        self.journal = Journal(context.bus, size=self.settings.journal_size)
        self.recent_errors: deque[dict[str, Any]] = deque(maxlen=RECENT_ERRORS)
        self._subscriptions: list[Subscription] = []

    @classmethod
    def check_config(cls, section: Mapping[str, Any], config: Any) -> list[str]:
        """``hadaemon check``: TLS files in pairs, an IP address."""
        return settings_problems(WebSettings.from_section(section))

    @property
    def daemon(self) -> Any:
        """The daemon this plugin runs in (its parent service)."""
        return self.parent

    def make_auth(self) -> Any:
        """The auth of the API: passwords, sessions, CSRF, tokens (hadaemon.web.auth)."""
        from hadaemon.web.auth import WebAuth  # type: ignore[import-not-found,unused-ignore]

        return WebAuth(self.context.credentials, reactor=self.reactor,
                       secure=self.settings.tls)

    def start(self) -> None:
        settings = self.settings
        problems = settings_problems(settings)
        if problems:
            raise ValueError(f"[{self.name}]: " + "; ".join(problems))
        self.auth = self.make_auth()
        if not settings.loopback and not self.auth.password_set():
            raise PermissionError(
                f"refusing to listen on {settings.address}: no admin password is set, and "
                "without one only loopback addresses (127.0.0.1, ::1) are allowed. Set one "
                "with `hadaemon passwd --config <file>` (or the HADAEMON_ADMIN_PASSWORD "
                "environment variable), or set [web].address = \"127.0.0.1\""
            )
        self.started_at = time.time()
        self.log_ring.attach()
        self.journal.start()
        self._subscriptions.append(self.bus.subscribe(
            "error/#", self._on_error, name="web: recent errors", event_type=ErrorEvent))
        root = StaticFiles()
        api = ApiResource(self, routes)
        root.putChild(b"api", api)
        root.putChild(b"metrics", api)
        site = ApiSite(root, reactor=self.reactor, max_body=settings.max_body,
                       tls=settings.tls, log=self.log,
                       max_connections=settings.max_connections,
                       idle_timeout=settings.idle_timeout)
        try:
            if settings.tls_cert is not None and settings.tls_key is not None:
                ssl = _tls_module()
                pem = settings.tls_cert.read_bytes() + b"\n" + settings.tls_key.read_bytes()
                options = ssl.PrivateCertificate.loadPEM(pem).options()
                from twisted.protocols.tls import TLSMemoryBIOFactory

                # (listenSSL would give TLS the global reactor's clock: ours is given)
                tls = TLSMemoryBIOFactory(options, False, site, clock=self.reactor)
                self.port = self.reactor.listenTCP(settings.port, tls,
                                                   interface=settings.address)
            else:
                self.port = self.reactor.listenTCP(settings.port, site,
                                                   interface=settings.address)
        except Exception:
            self._stop_following()
            raise
        self.log.info("HTTP API on {url} (docs: {url}api/openapi.json)", url=self.url)

    @property
    def url(self) -> str:
        """Where the API answers (the real port, when ``port = 0`` chose one)."""
        port = self.port.getHost().port if self.port is not None else self.settings.port  # type: ignore[attr-defined]
        host = self.settings.address
        host = f"[{host}]" if ":" in host else host
        return f"{'https' if self.settings.tls else 'http'}://{host}:{port}/"

    def _on_error(self, event: Event) -> None:
        document = event_document(event)
        document["time"] = time.time()
        self.recent_errors.append(document)

    def _stop_following(self) -> None:
        for subscription in self._subscriptions:
            subscription.cancel()
        self._subscriptions = []
        self.journal.stop()
        self.log_ring.detach()

    async def stop(self) -> None:
        self._stop_following()
        port, self.port = self.port, None
        if port is not None:
            stopping = port.stopListening()
            if stopping is not None:
                await stopping


def _tls_module() -> Any:
    try:
        from twisted.internet import ssl
    except ImportError as exc:
        raise RuntimeError(
            f"[web] TLS needs pyOpenSSL and service_identity ({exc}): pip install "
            "'hadaemon[tls]', or serve plain HTTP on 127.0.0.1 behind a TLS proxy") from None
    return ssl


__all__ = ["WebPlugin"]
