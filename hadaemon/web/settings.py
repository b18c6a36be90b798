"""The ``[web]`` section: where the HTTP API listens and what it accepts, declared once."""

from __future__ import annotations

import ipaddress
import pathlib
from dataclasses import dataclass
from typing import ClassVar

from hadaemon.config import Bool, Float, Int, Path, Settings, Str, setting

DEFAULT_PORT = 8480
MIB = 1024 * 1024


@dataclass(frozen=True, kw_only=True)
class WebSettings(Settings):
    """The HTTP API and console, served by the daemon's own reactor."""

    section_doc: ClassVar[str] = (
        "The HTTP API (docs/http-api.md) and the console's static files. Without an admin "
        "password (`hadaemon passwd`) it listens on loopback addresses only."
    )

    address: str = setting(Str(
        default="127.0.0.1", non_empty=True,
        doc="Address to listen on; anything but loopback needs an admin password.",
    ))
    port: int = setting(Int(default=DEFAULT_PORT, min=0, max=65535,
                            doc="TCP port (0: any free port, logged at start)."))
    tls_cert: pathlib.Path | None = setting(Path(
        default=None, must_exist=True, kind="file",
        doc="TLS certificate chain (PEM); with tls_key, the API is served over HTTPS.",
    ))
    tls_key: pathlib.Path | None = setting(Path(
        default=None, must_exist=True, kind="file", doc="The TLS certificate's private key (PEM).",
    ))
    metrics_public: bool = setting(Bool(
        default=False, doc="Serve /metrics without an API token (for a local Prometheus).",
    ))
    max_body: int = setting(Int(
        default=MIB, min=1024, max=64 * MIB,
        doc="Largest request body accepted (bytes); larger ones get 413.",
    ))
    max_connections: int = setting(Int(
        default=256, min=1,
        doc="Open connections at most (event streams included); more get 503 at once.",
    ))
    idle_timeout: float = setting(Float(
        default=60.0, min=0.1,
        doc="Seconds a connection may send nothing (before or between requests) before "
        "it is closed; a request being answered, an event stream too, is not idle.",
    ))
    sse_buffer: int = setting(Int(
        default=256 * 1024, min=4096,
        doc="Bytes of events a slow event-stream client may have waiting before it is "
        "dropped (with a note saying so).",
    ))
    journal_size: int = setting(Int(
        default=10000, min=10,
        doc="Events kept for Last-Event-ID resume after a reconnect.",
    ))
    log_lines: int = setting(Int(default=2000, min=10,
                                 doc="Recent log lines kept for GET /api/log."))

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    @property
    def loopback(self) -> bool:
        return is_loopback(self.address)


def is_loopback(address: str) -> bool:
    """Whether ``address`` only reaches this machine (``localhost`` included)."""
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def settings_problems(settings: WebSettings) -> list[str]:
    """What is inconsistent in a ``[web]`` section (``hadaemon check`` says it)."""
    problems = []
    if (settings.tls_cert is None) != (settings.tls_key is None):
        problems.append("tls_cert and tls_key go together: set both or neither")
    if settings.address != "localhost":
        try:
            ipaddress.ip_address(settings.address)
        except ValueError:
            problems.append(f"address: {settings.address!r} is not an IP address "
                            "(or localhost)")
    return problems
