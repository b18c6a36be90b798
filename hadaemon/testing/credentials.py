"""What a test broker and its clients need to prove who they are: password files in
each broker's format, and a throw-away CA with server and client certificates."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from hadaemon.broker.configs import amqtt_password_line, mosquitto_password_line
from hadaemon.testing.broker_impls import find_mosquitto_passwd

__all__ = ["Certificates", "make_certificates", "mosquitto_password_line", "write_password_file"]


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
    path.write_text(amqtt_password_line(username, password) + "\n", encoding="utf-8")


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
