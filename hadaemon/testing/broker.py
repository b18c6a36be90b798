"""A real MQTT broker in a subprocess, so adapter tests exercise the actual wire protocol.

mosquitto is preferred (it is what installations run); amqtt, a pure-Python broker, is
the fallback so the suite still passes where mosquitto is not installed. The environment
variable ``HADAEMON_TEST_BROKER=mosquitto|amqtt`` forces one.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import importlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import weakref
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Literal, NoReturn

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from hadaemon.testing.processes import ChildProcesses, free_tcp_port, kill_group

__all__ = [
    "ENV_VAR",
    "IMPLS",
    "USE_BROKER",
    "BlockingClient",
    "Broker",
    "BrokerError",
    "BrokerStartError",
    "BrokerUnsupported",
    "ConnectRefused",
    "PortInUse",
    "available_impls",
    "default_impl",
    "find_mosquitto",
    "find_mosquitto_passwd",
    "make_client",
    "mosquitto_password_line",
]

ENV_VAR: Final = "HADAEMON_TEST_BROKER"
IMPLS: Final = ("mosquitto", "amqtt")
_SBIN_DIRS: Final = ("/usr/sbin", "/usr/local/sbin", "/usr/bin", "/usr/local/bin")
_LOG_TAIL_LINES: Final = 40
# amqtt logs this and then idles forever instead of exiting when its listener fails.
_AMQTT_START_FAILED: Final = "Broker startup failed"
# Logged only once *this* process has bound its listener: a probe that succeeds before
# that may have reached another broker that already holds the port.
_READY_MARKERS: Final = {"mosquitto": " running", "amqtt": "bind to "}


class BrokerError(RuntimeError):
    """Something went wrong with a test broker."""


class BrokerStartError(BrokerError):
    """The broker did not come up; the message carries the tail of its log."""


class BrokerUnsupported(BrokerError):
    """The chosen implementation cannot do what was asked (tests should skip, not fail)."""


class PortInUse(BrokerStartError):
    """The port was taken; start() picks another itself unless the port was given."""


class ConnectRefused(ConnectionError):
    """The broker answered CONNECT with a failure CONNACK (bad credentials, not authorised)."""

    def __init__(self, reason_code: ReasonCode) -> None:
        super().__init__(f"broker refused the connection: {reason_code}")
        self.reason_code = reason_code


# -- finding the broker --------------------------------------------------------------


def _find_tool(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    # sbin is often not on a normal user's PATH, which is where Debian puts mosquitto.
    for directory in _SBIN_DIRS:
        candidate = Path(directory) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def find_mosquitto() -> str | None:
    """The mosquitto binary: on PATH, else in /usr/sbin or /usr/local/sbin."""
    return _find_tool("mosquitto")


def find_mosquitto_passwd() -> str | None:
    """The mosquitto_passwd tool, looked for like mosquitto."""
    return _find_tool("mosquitto_passwd")


def _amqtt_installed() -> bool:
    return importlib.util.find_spec("amqtt") is not None


def _installed(impl: str) -> bool:
    return find_mosquitto() is not None if impl == "mosquitto" else _amqtt_installed()


def _forced_impl() -> str | None:
    value = os.environ.get(ENV_VAR, "").strip().lower()
    if not value:
        return None
    if value not in IMPLS:
        raise BrokerError(f"{ENV_VAR}={value!r}: expected one of {', '.join(IMPLS)}")
    return value


def default_impl() -> str:
    """``$HADAEMON_TEST_BROKER`` if set, else mosquitto if installed, else amqtt."""
    forced = _forced_impl()
    if forced is not None:
        return forced
    for impl in IMPLS:
        if _installed(impl):
            return impl
    raise BrokerUnsupported("no MQTT broker for tests: install mosquitto or amqtt")


def available_impls() -> list[str]:
    """Implementations to parametrize over: only the forced one when the env var is set."""
    forced = _forced_impl()
    if forced is not None:
        return [forced]
    return [impl for impl in IMPLS if _installed(impl)]


# -- credentials -----------------------------------------------------------------------


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


# -- the broker ------------------------------------------------------------------------


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
            if not _installed(impl):
                # Forced by the environment: failing loudly beats silently skipping.
                raise BrokerError(f"{ENV_VAR}={impl} but {impl} is not installed")
            return impl
        if impl not in IMPLS:
            raise ValueError(f"impl must be one of {', '.join(IMPLS)}, not {impl!r}")
        if not _installed(impl):
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
            if self.impl == "mosquitto":
                _write_mosquitto_password_file(self.password_path, self.username, self.password)
            else:
                _write_amqtt_password_file(self.password_path, self.username, self.password)
        if self.tls:
            self._make_certs()

    def _make_certs(self) -> None:
        import trustme

        ca = trustme.CA()
        server = ca.issue_cert("127.0.0.1", "localhost")
        client = ca.issue_cert("hadaemon-test-client", common_name="hadaemon-test-client")
        certs = self.workdir / "certs"
        certs.mkdir(exist_ok=True)
        self.ca_path = certs / "ca.pem"
        self.server_cert_path = certs / "server.pem"
        self.server_key_path = certs / "server.key"
        self.client_cert_path = certs / "client.pem"
        self.client_key_path = certs / "client.key"
        ca.cert_pem.write_to_path(self.ca_path)
        self.server_cert_path.write_bytes(b"".join(b.bytes() for b in server.cert_chain_pems))
        server.private_key_pem.write_to_path(self.server_key_path)
        self.client_cert_path.write_bytes(b"".join(b.bytes() for b in client.cert_chain_pems))
        client.private_key_pem.write_to_path(self.client_key_path)

    def _write_config(self) -> None:
        if self.impl == "mosquitto":
            text = self._mosquitto_config()
        else:
            text = json.dumps(self._amqtt_config(), indent=2)  # JSON is valid YAML
        self.config_path.write_text(text + "\n", encoding="utf-8")

    def _mosquitto_config(self) -> str:
        lines = [
            "# generated by hadaemon.testing.broker",
            f"listener {self.port} {self.host}",
            f"allow_anonymous {'false' if self.username else 'true'}",
            "persistence false",
            # Without it QoS-1 request/reply stalls 40-90 ms on Nagle + delayed ACK.
            "set_tcp_nodelay true",
            "max_queued_messages 100000",
            "log_dest stderr",
            "log_timestamp_format %Y-%m-%dT%H:%M:%S",
        ]
        if os.geteuid() == 0:
            # As root mosquitto would switch to user "mosquitto", who cannot read our
            # private temp dir (password file, keys).
            lines.append("user root")
        if self.password_path is not None:
            lines.append(f"password_file {self.password_path}")
        if self.tls:
            lines += [
                f"cafile {self.ca_path}",
                f"certfile {self.server_cert_path}",
                f"keyfile {self.server_key_path}",
                f"require_certificate {'true' if self.require_client_cert else 'false'}",
            ]
        lines += self.extra_config
        return "\n".join(lines)

    def _amqtt_config(self) -> dict[str, Any]:
        listener: dict[str, Any] = {"type": "tcp", "bind": f"{self.host}:{self.port}"}
        if self.tls:
            listener |= {
                "ssl": True,
                "cafile": str(self.ca_path),
                "certfile": str(self.server_cert_path),
                "keyfile": str(self.server_key_path),
            }
        auth: dict[str, Any]
        if self.password_path is not None:
            auth = {
                "amqtt.plugins.authentication.FileAuthPlugin": {
                    "password_file": str(self.password_path)
                }
            }
        else:
            auth = {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}}
        return {"listeners": {"default": listener}, "plugins": auth}

    def _command(self) -> list[str]:
        if self.impl == "mosquitto":
            binary = find_mosquitto()
            assert binary is not None
            return [binary, "-c", str(self.config_path)]
        return [sys.executable, "-m", "amqtt.scripts.broker_script", "-c", str(self.config_path)]

    # -- lifecycle --

    def start(self, timeout: float = 10.0) -> Broker:
        """Launch the broker and wait until an MQTT client can connect to it."""
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
            _connect_manually(client, self.host, self.port, timeout)
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

    def restart(self, timeout: float = 10.0) -> Broker:
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


class _UseBroker(enum.Enum):
    TOKEN = "use the broker's setting"


USE_BROKER: Final = _UseBroker.TOKEN
"""Default for ``make_client``'s credentials: take them from the broker."""


class _TrackingContext(ssl.SSLContext):
    """Remembers the last socket it wrapped, so a failed connect can close it.

    paho drops (and leaks) the TLS socket when the handshake fails, e.g. on an untrusted
    certificate, which later surfaces as a ResourceWarning in an unrelated test.
    """

    last_socket: ssl.SSLSocket | None = None

    def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        self.last_socket = super().wrap_socket(*args, **kwargs)
        return self.last_socket


_CONTEXTS: weakref.WeakKeyDictionary[mqtt.Client, _TrackingContext] = weakref.WeakKeyDictionary()


def _connect_socket(client: mqtt.Client, host: str, port: int) -> None:
    """``client.connect()``, closing the half-made TLS socket if it raises."""
    try:
        client.connect(host, port)
    except BaseException:
        context = _CONTEXTS.get(client)
        if context is not None and context.last_socket is not None:
            context.last_socket.close()
        raise


def _set_nodelay(client: mqtt.Client, userdata: Any, sock: Any) -> None:
    # The broker has TCP_NODELAY; without it here too our replies would sit in Nagle.
    if isinstance(sock, socket.socket):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def make_client(
    broker: Broker,
    client_id: str | None = None,
    *,
    username: str | Literal[_UseBroker.TOKEN] | None = USE_BROKER,
    password: str | Literal[_UseBroker.TOKEN] | None = USE_BROKER,
    trust_ca: bool = True,
    client_cert: bool | None = None,
    nodelay: bool = True,
    **client_kwargs: Any,
) -> mqtt.Client:
    """A paho (callback API v2) client set up for ``broker``; not connected yet.

    Credentials default to the broker's; pass ``username=None`` for an anonymous client.
    ``trust_ca=False`` leaves only the system CAs, so the test CA is not trusted.
    ``client_cert`` defaults to sending one exactly when the broker requires it.
    The protocol defaults to MQTT 3.1.1, which both implementations speak.
    """
    if client_id is None:
        client_id = f"hadaemon-test-{uuid.uuid4().hex[:12]}"
    client_kwargs.setdefault("protocol", mqtt.MQTTv311)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, **client_kwargs)
    user = broker.username if isinstance(username, _UseBroker) else username
    secret = broker.password if isinstance(password, _UseBroker) else password
    if user is not None:
        client.username_pw_set(user, secret)
    if broker.tls:
        send_cert = broker.require_client_cert if client_cert is None else client_cert
        context = _TrackingContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies cert and hostname
        if trust_ca:
            context.load_verify_locations(cafile=str(broker.ca_path))
        else:
            context.load_default_certs()
        if send_cert:
            context.load_cert_chain(str(broker.client_cert_path), str(broker.client_key_path))
        client.tls_set_context(context)
        _CONTEXTS[client] = context
    if nodelay:
        client.on_socket_open = _set_nodelay
    return client


def _connect_manually(client: mqtt.Client, host: str, port: int, timeout: float) -> None:
    """CONNECT and wait for CONNACK by driving ``client.loop()`` in this thread."""
    acks: list[ReasonCode] = []

    def on_connect(c: mqtt.Client, u: Any, flags: Any, rc: ReasonCode, props: Any) -> None:
        acks.append(rc)

    client.on_connect = on_connect
    _connect_socket(client, host, port)
    deadline = time.monotonic() + timeout
    while not acks:
        rc = client.loop(timeout=0.05)
        if acks:
            break
        if rc != mqtt.MQTT_ERR_SUCCESS:
            raise ConnectionError(f"connection to {host}:{port} lost before CONNACK ({rc})")
        if time.monotonic() >= deadline:
            raise TimeoutError(f"no CONNACK from {host}:{port} within {timeout:g} s")
    if acks[0].is_failure:
        raise ConnectRefused(acks[0])


class BlockingClient:
    """A synchronous MQTT client for test code, driven by paho's own network thread.

    Received messages queue up until ``expect()`` takes them, so a test can publish,
    then wait, without racing the callback thread. Not for the daemon itself.
    """

    def __init__(self, broker: Broker, client_id: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("reconnect_on_failure", False)
        self.broker = broker
        self.client_id: str = client_id or f"hadaemon-test-{uuid.uuid4().hex[:12]}"
        self._kwargs = kwargs
        self._cond = threading.Condition()
        self._messages: list[mqtt.MQTTMessage] = []
        self._acks: dict[int, list[ReasonCode]] = {}
        self._connack: ReasonCode | None = None
        self._disconnected = False
        self._errors: list[str] = []
        self._used = False
        self.client: mqtt.Client = self._new_client()

    def _new_client(self) -> mqtt.Client:
        client = make_client(self.broker, self.client_id, **self._kwargs)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        client.on_log = self._on_log
        return client

    # callbacks run on paho's thread

    def _on_connect(self, c: mqtt.Client, u: Any, flags: Any, rc: ReasonCode, p: Any) -> None:
        with self._cond:
            self._connack = rc
            self._cond.notify_all()

    def _on_disconnect(self, c: mqtt.Client, u: Any, flags: Any, rc: ReasonCode, p: Any) -> None:
        with self._cond:
            self._disconnected = True
            self._cond.notify_all()

    def _on_message(self, c: mqtt.Client, u: Any, message: mqtt.MQTTMessage) -> None:
        with self._cond:
            self._messages.append(message)
            self._cond.notify_all()

    def _on_subscribe(
        self, c: mqtt.Client, u: Any, mid: int, codes: list[ReasonCode], p: Any
    ) -> None:
        with self._cond:
            self._acks[mid] = codes
            self._cond.notify_all()

    def _on_log(self, c: mqtt.Client, u: Any, level: int, text: str) -> None:
        if level in (mqtt.MQTT_LOG_ERR, mqtt.MQTT_LOG_WARNING):
            with self._cond:
                self._errors.append(text)

    # blocking API

    @property
    def connected(self) -> bool:
        """Whether the client currently has a live MQTT session."""
        return self.client.is_connected()

    def connect(self, timeout: float = 5.0) -> BlockingClient:
        """Connect (again) and wait for CONNACK; raises ConnectRefused, ssl.SSLError, OSError.

        Each connection gets a fresh paho client with the same client id: paho cannot
        restart its network thread cleanly once it has ended.
        """
        if self._used:
            self.close()
            self.client = self._new_client()
        self._used = True
        with self._cond:
            self._connack, self._disconnected = None, False
            self._errors.clear()
        _connect_socket(self.client, self.broker.host, self.broker.port)
        self.client.loop_start()
        with self._cond:
            done = self._cond.wait_for(
                lambda: self._connack is not None or self._disconnected, timeout
            )
        connack = self._current_connack()
        if connack is not None and not connack.is_failure:
            return self
        self.close()
        if connack is not None:
            raise ConnectRefused(connack)
        if done:
            with self._cond:
                errors = "; ".join(self._errors)
            raise ConnectionError(
                f"{self.broker.url} closed the connection before CONNACK ({errors});"
                f" broker log:\n{self.broker.log_tail(5)}"
            )
        raise TimeoutError(f"no CONNACK from {self.broker.url} within {timeout:g} s")

    def _current_connack(self) -> ReasonCode | None:
        # A method, not an attribute read: the paho thread sets it behind mypy's back.
        with self._cond:
            return self._connack

    def subscribe(self, topic: str, qos: int = 1, timeout: float = 5.0) -> None:
        """Subscribe and wait for SUBACK; raises BrokerError if the broker refused."""
        rc, mid = self.client.subscribe(topic, qos)
        if rc != mqtt.MQTT_ERR_SUCCESS or mid is None:
            raise ConnectionError(f"cannot subscribe to {topic!r}: {rc}")
        with self._cond:
            if not self._cond.wait_for(lambda: mid in self._acks, timeout):
                raise TimeoutError(f"no SUBACK for {topic!r} within {timeout:g} s")
            codes = self._acks.pop(mid)
        if any(code.is_failure for code in codes):
            raise BrokerError(f"subscription to {topic!r} refused: {codes}")

    def publish(
        self,
        topic: str,
        payload: bytes | str = b"",
        qos: int = 1,
        retain: bool = False,
        timeout: float = 5.0,
    ) -> None:
        """Publish and wait until it is sent (QoS 0) or acknowledged (QoS 1 and 2)."""
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(timeout)
        if not info.is_published():
            raise TimeoutError(f"publish to {topic!r} not acknowledged within {timeout:g} s")

    def expect(self, topic_pattern: str = "#", timeout: float = 5.0) -> mqtt.MQTTMessage:
        """Take the oldest received message whose topic matches the MQTT filter."""

        def take() -> mqtt.MQTTMessage | None:
            for i, message in enumerate(self._messages):
                if mqtt.topic_matches_sub(topic_pattern, message.topic):
                    return self._messages.pop(i)
            return None

        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = take()
                if found is not None:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [m.topic for m in self._messages]
                    raise TimeoutError(
                        f"no message on {topic_pattern!r} within {timeout:g} s (unclaimed: {seen})"
                    )
                self._cond.wait(remaining)

    def pending(self) -> list[mqtt.MQTTMessage]:
        """Received messages no ``expect()`` has taken yet (a copy)."""
        with self._cond:
            return list(self._messages)

    def close(self) -> None:
        """Disconnect and stop paho's thread; idempotent."""
        self.client.disconnect()
        self.client.loop_stop()

    def __enter__(self) -> BlockingClient:
        if not self.connected:
            self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
