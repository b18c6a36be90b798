"""A real MQTT broker in a subprocess, so adapter tests exercise the actual wire protocol.

Which implementation runs is :mod:`hadaemon.testing.broker_impls`' choice; its password
files and certificates come from :mod:`hadaemon.testing.credentials`; clients for test
code are in :mod:`hadaemon.testing.client`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Final, NoReturn

from hadaemon.broker.configs import Listener, amqtt_config, mosquitto_config
from hadaemon.testing.broker_errors import (
    BrokerError,
    BrokerStartError,
    BrokerUnsupported,
    ConnectRefused,
    PortInUse,
)
from hadaemon.testing.broker_impls import ENV_VAR, IMPLS, default_impl, find_mosquitto, installed
from hadaemon.testing.client import connect_manually, make_client
from hadaemon.testing.credentials import make_certificates, write_password_file
from hadaemon.testing.processes import ChildProcesses, free_tcp_port, kill_group

__all__ = ["Broker", "BrokerError", "BrokerStartError", "BrokerUnsupported", "PortInUse"]

_LOG_TAIL_LINES: Final = 40
# amqtt logs this and then idles forever instead of exiting when its listener fails.
_AMQTT_START_FAILED: Final = "Broker startup failed"
# Logged only once *this* process has bound its listener: a probe that succeeds before
# that may have reached another broker that already holds the port.
_READY_MARKERS: Final = {"mosquitto": " running", "amqtt": "bind to "}


class Broker:
    """One MQTT broker subprocess on 127.0.0.1, with its config, certs and log in ``workdir``.

    Construction prepares files only; ``start()`` launches it and returns once a real
    MQTT CONNECT has been accepted, so tests never race the broker's start-up.
    """

    host: Final = "127.0.0.1"

    def __init__(
        self,
        *,
        port: int | None = None,
        username: str | None = None,
        password: str | None = None,
        tls: bool = False,
        require_client_cert: bool = False,
        impl: str | None = None,
        workdir: Path | None = None,
        extra_config: Sequence[str] = (),
    ) -> None:
        if (username is None) != (password is None):
            raise ValueError("give both username and password, or neither")
        if require_client_cert and not tls:
            raise ValueError("require_client_cert needs tls=True")
        self.impl: str = self._resolve_impl(impl)
        if self.impl == "amqtt":
            if require_client_cert:
                raise BrokerUnsupported(
                    "amqtt cannot require client certificates: its TLS listener hard-codes"
                    " ssl.CERT_OPTIONAL (client certs are verified when sent, never demanded)"
                )
            if extra_config:
                raise BrokerUnsupported(
                    "amqtt cannot take extra_config: those are mosquitto config lines"
                )
        self.username = username
        self.password = password
        self.tls = tls
        self.require_client_cert = require_client_cert
        self.extra_config = tuple(extra_config)
        self._port_given = port is not None
        self.port: int = port if port is not None else free_tcp_port(self.host)

        self._own_workdir = workdir is None
        if workdir is None:
            workdir = Path(tempfile.mkdtemp(prefix=f"hadaemon-{self.impl}-"))
        else:
            workdir.mkdir(parents=True, exist_ok=True)
        self.workdir: Path = workdir
        self.log_path: Path = workdir / f"{self.impl}.log"
        config_name = "mosquitto.conf" if self.impl == "mosquitto" else "amqtt.yaml"
        self.config_path: Path = workdir / config_name
        self.password_path: Path | None = None
        self.ca_path: Path | None = None
        self.server_cert_path: Path | None = None
        self.server_key_path: Path | None = None
        self.client_cert_path: Path | None = None
        self.client_key_path: Path | None = None

        self._children = ChildProcesses()
        self._proc: subprocess.Popen[bytes] | None = None
        self._starts = 0
        self._final_log: str | None = None
        try:
            self._prepare_files()
        except BaseException:
            if self._own_workdir:
                shutil.rmtree(self.workdir, ignore_errors=True)
            raise

    @staticmethod
    def _resolve_impl(impl: str | None) -> str:
        if impl is None:
            impl = default_impl()
            if not installed(impl):
                # Forced by the environment: failing loudly beats silently skipping.
                raise BrokerError(f"{ENV_VAR}={impl} but {impl} is not installed")
            return impl
        if impl not in IMPLS:
            raise ValueError(f"impl must be one of {', '.join(IMPLS)}, not {impl!r}")
        if not installed(impl):
            raise BrokerUnsupported(f"{impl} is not installed on this machine")
        return impl

    # -- public state --

    @property
    def mqtt5(self) -> bool:
        """Whether the broker speaks MQTT 5 (amqtt only does 3.1.1)."""
        return self.impl == "mosquitto"

    @property
    def url(self) -> str:
        """``mqtt://`` or ``mqtts://`` URL of the listener, without credentials."""
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        """True while the broker process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The broker's pid while it runs."""
        return self._proc.pid if self.running and self._proc is not None else None

    def log_text(self) -> str:
        """The broker's whole log so far, across restarts."""
        if self._final_log is not None:
            return self._final_log
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        """The last ``lines`` lines of the log, for error messages."""
        return "\n".join(self.log_text().splitlines()[-lines:])

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<Broker {self.impl} {self.url} {state}>"

    # -- files --

    def _prepare_files(self) -> None:
        if self.username is not None and self.password is not None:
            self.password_path = self.workdir / "passwords"
            write_password_file(self.impl, self.password_path, self.username, self.password)
        if self.tls:
            certs = make_certificates(self.workdir / "certs")
            self.ca_path = certs.ca
            self.server_cert_path, self.server_key_path = certs.server_cert, certs.server_key
            self.client_cert_path, self.client_key_path = certs.client_cert, certs.client_key

    def _write_config(self) -> None:
        if self.impl == "mosquitto":
            text = self._mosquitto_config()
        else:
            text = json.dumps(self._amqtt_config(), indent=2) + "\n"  # JSON is valid YAML
        self.config_path.write_text(text, encoding="utf-8")

    def _listener(self) -> Listener:
        return Listener(self.host, self.port, password_file=self.password_path,
                        ca_file=self.ca_path, cert_file=self.server_cert_path,
                        key_file=self.server_key_path,
                        require_client_cert=self.require_client_cert)

    def _mosquitto_config(self) -> str:
        return mosquitto_config(self._listener(), header="generated by hadaemon.testing.broker",
                                extra=self.extra_config)

    def _amqtt_config(self) -> dict[str, Any]:
        return amqtt_config(self._listener())

    def _command(self) -> list[str]:
        if self.impl == "mosquitto":
            binary = find_mosquitto()
            assert binary is not None
            return [binary, "-c", str(self.config_path)]
        return [sys.executable, "-m", "amqtt.scripts.broker_script", "-c", str(self.config_path)]

    # -- lifecycle --

    def start(self, timeout: float = 30.0) -> Broker:
        """Launch the broker and wait until an MQTT client can connect to it (``timeout``
        only guards a hang: amqtt alone takes seconds to start on a loaded machine)."""
        if self._final_log is not None:
            raise BrokerError("this Broker was closed; make a new one")
        if self.running:
            raise BrokerError(f"{self!r} is already running")
        # A port we picked ourselves may be grabbed before the broker binds it: pick again.
        attempts = 1 if self._port_given or self._starts else 3
        for attempt in range(attempts):
            try:
                self._start_once(timeout)
            except PortInUse:
                if attempt == attempts - 1:
                    raise
                self.port = free_tcp_port(self.host)
            else:
                self._starts += 1
                return self
        raise AssertionError("unreachable")

    def _start_once(self, timeout: float) -> None:
        self._write_config()
        with self.log_path.open("ab") as log:
            log.write(f"=== hadaemon.testing: starting {self.impl} on {self.url}\n".encode())
            log.flush()
            env = dict(os.environ, PYTHONUNBUFFERED="1")
            proc = self._children.spawn(
                self._command(), stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.workdir
            )
        self._proc = proc

        def abort(what: str) -> NoReturn:
            self._children.stop(proc)
            self._proc = None
            self._fail(what)

        deadline = time.monotonic() + timeout
        last_error: BaseException | None = None
        while True:
            if proc.poll() is not None:
                abort(f"exited with status {proc.returncode} while starting")
            if self.impl == "amqtt" and _AMQTT_START_FAILED in self._log_since_start():
                abort("failed to start")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                abort(f"accepted no MQTT connection within {timeout:g} s ({last_error!r})")
            if _READY_MARKERS[self.impl] not in self._log_since_start():
                time.sleep(0.01)
                continue
            try:
                self._probe(min(remaining, 2.0))
            except ConnectRefused as exc:
                abort(f"refused the start-up probe's own credentials: {exc}")
            except (OSError, TimeoutError) as exc:
                last_error = exc
                time.sleep(0.02)
            else:
                return

    def _log_since_start(self) -> str:
        text = self.log_text()
        return text[text.rfind("=== hadaemon.testing: starting") :]

    def _fail(self, what: str) -> NoReturn:
        tail = "\n".join(self._log_since_start().splitlines()[-_LOG_TAIL_LINES:])
        message = f"{self.impl} on {self.url} {what}; log {self.log_path}:\n{tail}"
        if "address already in use" in tail.lower():
            raise PortInUse(message)
        raise BrokerStartError(message)

    def _probe(self, timeout: float) -> None:
        client = make_client(self, client_id=f"hadaemon-probe-{uuid.uuid4().hex[:8]}")
        client.connect_timeout = timeout
        try:
            connect_manually(client, self.host, self.port, timeout)
        finally:
            client.disconnect()

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM the broker's process group, SIGKILL it after ``timeout``; idempotent."""
        if self._proc is not None:
            self._children.stop(self._proc, timeout)
            self._proc = None

    def kill(self) -> None:
        """SIGKILL the broker at once, as a crash would (for fault tests)."""
        if self._proc is not None:
            kill_group(self._proc, signal.SIGKILL)
            self._children.stop(self._proc, timeout=0)
            self._proc = None

    def restart(self, timeout: float = 30.0) -> Broker:
        """Stop if running, then start again on the same port with the same credentials."""
        self.stop()
        return self.start(timeout)

    def close(self) -> None:
        """Stop, keep the log in memory, and delete the workdir if this object made it."""
        self.stop()
        self._children.cleanup()
        if self._final_log is None:
            self._final_log = self.log_text()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Broker:
        if not self.running:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# -- clients ---------------------------------------------------------------------------
