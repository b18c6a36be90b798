"""What a test broker and its clients need to prove who they are: password files in
each broker's format, and a throw-away CA with server and client certificates."""

from __future__ import annotations

import base64
import hashlib
import importlib
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hadaemon.testing.broker_impls import find_mosquitto_passwd

__all__ = ["Certificates", "make_certificates", "mosquitto_password_line", "write_password_file"]


def mosquitto_password_line(
    username: str, password: str, *, salt: bytes | None = None, iterations: int = 101
) -> str:
    """A mosquitto 2.x password-file line (PBKDF2-SHA512), as ``mosquitto_passwd`` writes."""
    salt = os.urandom(12) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    b64 = base64.b64encode
    return f"{username}:$7${iterations}${b64(salt).decode()}${b64(digest).decode()}"


def _write_mosquitto_password_file(path: Path, username: str, password: str) -> None:
    tool = find_mosquitto_passwd()
    if tool is not None:
        result = subprocess.run(
            [tool, "-c", "-b", str(path), username, password],
            capture_output=True,
            timeout=30,
            check=False,
        )
        if result.returncode == 0:
            return
        # Fall through: our own hash is the documented format and needs no tool.
    path.write_text(mosquitto_password_line(username, password) + "\n", encoding="utf-8")


def _write_amqtt_password_file(path: Path, username: str, password: str) -> None:
    # amqtt's FileAuthPlugin verifies with pwdlib (argon2), a dependency of amqtt. Cheap
    # parameters (they travel in the hash): default ones cost ~0.2 s per CONNECT.
    argon2: Any = importlib.import_module("pwdlib.hashers.argon2")
    hasher = argon2.Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1)
    hashed: str = hasher.hash(password)
    path.write_text(f"{username}:{hashed}\n", encoding="utf-8")




def write_password_file(impl: str, path: Path, username: str, password: str) -> None:
    """Write ``path`` with one user, in the format of broker ``impl``."""
    if impl == "mosquitto":
        _write_mosquitto_password_file(path, username, password)
    else:
        _write_amqtt_password_file(path, username, password)


@dataclass(frozen=True)
class Certificates:
    """Files of a throw-away CA (``ca``), a server certificate for ``127.0.0.1`` and
    ``localhost``, and a client certificate for mutual TLS."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def make_certificates(directory: Path) -> Certificates:
    """Make a new CA and its certificates with trustme, as PEM files in ``directory``."""
    import trustme

    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("hadaemon-test-client", common_name="hadaemon-test-client")
    directory.mkdir(parents=True, exist_ok=True)
    files = Certificates(directory / "ca.pem", directory / "server.pem",
                         directory / "server.key", directory / "client.pem",
                         directory / "client.key")
    ca.cert_pem.write_to_path(files.ca)
    files.server_cert.write_bytes(b"".join(b.bytes() for b in server.cert_chain_pems))
    server.private_key_pem.write_to_path(files.server_key)
    files.client_cert.write_bytes(b"".join(b.bytes() for b in client.cert_chain_pems))
    client.private_key_pem.write_to_path(files.client_key)
    return files
