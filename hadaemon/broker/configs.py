"""Broker configuration and password files, as plain functions with no I/O of their own
beyond writing the file asked for: the embedded broker and the test brokers
(:mod:`hadaemon.testing.broker`) both make theirs here."""

from __future__ import annotations

import base64
import hashlib
import importlib
import os
import pathlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Listener",
    "amqtt_config",
    "amqtt_password_line",
    "mosquitto_config",
    "mosquitto_password_line",
]


@dataclass(frozen=True)
class Listener:
    """One broker listener: where it binds, who may connect, and its TLS files."""

    host: str
    port: int
    password_file: pathlib.Path | None = None  # None: anonymous clients are allowed
    ca_file: pathlib.Path | None = None  # with cert_file and key_file: TLS
    cert_file: pathlib.Path | None = None
    key_file: pathlib.Path | None = None
    require_client_cert: bool = False

    @property
    def tls(self) -> bool:
        """Whether the listener speaks TLS."""
        return self.cert_file is not None


def mosquitto_config(listener: Listener, *, header: str, extra: Sequence[str] = ()) -> str:
    """A mosquitto 2.x config: one listener, no persistence (nothing is written to
    disk, so a restart starts afresh), its log on stderr."""
    lines = [
        f"# {header}",
        f"listener {listener.port} {listener.host}",
        f"allow_anonymous {'false' if listener.password_file else 'true'}",
        "persistence false",
        # Without it QoS-1 request/reply stalls 40-90 ms on Nagle + delayed ACK.
        "set_tcp_nodelay true",
        "max_queued_messages 100000",
        "log_dest stderr",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "log_type information",
        "log_timestamp_format %Y-%m-%dT%H:%M:%S",
    ]
    if os.geteuid() == 0:
        # As root mosquitto would switch to user "mosquitto", who cannot read our
        # private directory (password file, keys).
        lines.append("user root")
    if listener.password_file is not None:
        lines.append(f"password_file {listener.password_file}")
    if listener.tls:
        lines += [
            f"cafile {listener.ca_file}",
            f"certfile {listener.cert_file}",
            f"keyfile {listener.key_file}",
            f"require_certificate {'true' if listener.require_client_cert else 'false'}",
        ]
    lines += extra
    return "\n".join(lines) + "\n"


def amqtt_config(listener: Listener) -> dict[str, Any]:
    """An amqtt broker config (a dict; as JSON it is valid YAML for amqtt's script)."""
    tcp: dict[str, Any] = {"type": "tcp", "bind": f"{listener.host}:{listener.port}"}
    if listener.tls:
        tcp |= {
            "ssl": True,
            "cafile": str(listener.ca_file),
            "certfile": str(listener.cert_file),
            "keyfile": str(listener.key_file),
        }
    auth: dict[str, Any]
    if listener.password_file is not None:
        auth = {"amqtt.plugins.authentication.FileAuthPlugin": {
            "password_file": str(listener.password_file)}}
    else:
        auth = {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}}
    return {"listeners": {"default": tcp}, "plugins": auth}


def mosquitto_password_line(
    username: str, password: str, *, salt: bytes | None = None, iterations: int = 101
) -> str:
    """A mosquitto 2.x password-file line (PBKDF2-SHA512), as ``mosquitto_passwd`` writes."""
    salt = os.urandom(12) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    b64 = base64.b64encode
    return f"{username}:$7${iterations}${b64(salt).decode()}${b64(digest).decode()}"


def amqtt_password_line(username: str, password: str) -> str:
    """An amqtt password-file line: its FileAuthPlugin verifies with pwdlib (argon2, a
    dependency of amqtt). Cheap parameters (they travel in the hash): the default ones
    cost ~0.2 s per CONNECT."""
    argon2: Any = importlib.import_module("pwdlib.hashers.argon2")
    hasher = argon2.Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1)
    hashed: str = hasher.hash(password)
    return f"{username}:{hashed}"
