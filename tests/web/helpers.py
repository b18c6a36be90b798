"""The daemon with the web plugin on a fresh reactor in a thread, and a plain HTTP client.

Tests are blocking code, as a script using the API is: ``http.client`` against the real
port, the daemon's own state reached with ``live.call(fn)`` on its reactor thread.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import pathlib
import queue
import socket
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.threads import blockingCallFromThread

from hadaemon.builtin.demo import DemoDevices
from hadaemon.config import Config, read, validate
from hadaemon.daemon import Daemon
from hadaemon.nodes import SCHEMA as NODES_SCHEMA
from hadaemon.nodes import NodesPlugin
from hadaemon.plugin import Catalog, PluginInfo
from hadaemon.services import ServicesPlugin
from hadaemon.testing import run_in_reactor
from hadaemon.web import WebPlugin

PASSWORD = "correct horse battery staple"


def make_auth(plugin: WebPlugin) -> Any:
    """The real auth, with the admin password from its environment variable."""
    from hadaemon.web.auth import WebAuth

    return WebAuth(plugin.context.credentials, reactor=plugin.reactor,
                   secure=plugin.settings.tls, environ={"HADAEMON_ADMIN_PASSWORD": PASSWORD})


class WebForTests(WebPlugin):
    """The web plugin with a known admin password."""

    password = True

    def make_auth(self) -> Any:
        auth = make_auth(self)
        if not self.password:
            auth = _NoPassword(auth)
        return auth


class _NoPassword:
    def __init__(self, auth: Any) -> None:
        self._auth = auth

    def password_set(self) -> bool:
        return False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._auth, name)


def catalog(web: type[WebPlugin] = WebForTests) -> Catalog:
    from hadaemon.history import HistoryPlugin
    from hadaemon.metrics import MetricsPlugin
    from hadaemon.mqtt import MqttService
    from hadaemon.zigbee.plugin import ZigbeeAdapter
    from hadaemon.zigbee.simulator_plugin import SimulatorPlugin

    plugins = {"web": (web, WebPlugin.schema), "demo": (DemoDevices, DemoDevices.schema),
               "nodes": (NodesPlugin, NODES_SCHEMA),
               "services": (ServicesPlugin, ServicesPlugin.schema),
               "history": (HistoryPlugin, HistoryPlugin.schema),
               "metrics": (MetricsPlugin, MetricsPlugin.schema),
               "mqtt": (MqttService, MqttService.schema),
               "zigbee2mqtt": (ZigbeeAdapter, ZigbeeAdapter.schema),
               "zigbee2mqtt_simulator": (SimulatorPlugin, SimulatorPlugin.schema)}
    return Catalog({name: PluginInfo(name, factory, schema, "tests")
                    for name, (factory, schema) in plugins.items()})


def make_config(tmp_path: pathlib.Path, plugins: tuple[str, ...] = ("demo", "web"),
                **sections: Mapping[str, Any]) -> Config:
    data: dict[str, Any] = {
        "daemon": {"state_dir": str(tmp_path / "var"), "plugins": list(plugins),
                   "stop_timeout": 20.0},
        "demo": {"interval": 3600.0, "follow": False, "latency": 0.0},
        "web": {"port": 0},
    }
    for name, section in sections.items():
        data[name] = {**data.get(name, {}), **section}
    schemas = {name: info.schema for name, info in catalog().plugins.items()}
    config, errors = validate(read(data, base_dir=tmp_path, environ={}), schemas)
    assert not errors, [str(e) for e in errors]
    return config


class LiveDaemon:
    """A started daemon on its own reactor thread; ``stop()`` (or the ``with``) ends it."""

    def __init__(self, config: Config, web: type[WebPlugin] = WebForTests,
                 expect_web: bool = True) -> None:
        self._ready: queue.Queue[Any] = queue.Queue()
        self._stop: Deferred[None] | None = None
        self.reactor: Any = None
        self.daemon: Daemon | None = None
        self._thread = threading.Thread(target=self._run, args=(config, web),
                                        name="web-test-reactor", daemon=True)
        self._thread.start()
        outcome = self._ready.get(timeout=60)
        if isinstance(outcome, BaseException):
            raise outcome
        self.web: WebPlugin | None = self.daemon.plugin("web") if self.daemon else None  # type: ignore[assignment]
        if expect_web:
            assert self.web is not None, (self.daemon.failed if self.daemon else None)
            self.port = self.web.port.getHost().port  # type: ignore[union-attr]
            self.token = self.call(lambda: self.web.auth.create_token("tests")[1])  # type: ignore[union-attr]

    def _run(self, config: Config, web: type[WebPlugin]) -> None:
        async def scenario(reactor: Any) -> None:
            self.reactor = reactor
            self.daemon = Daemon(config, reactor, catalog=catalog(web))
            self._stop = Deferred()
            self.daemon.startService()
            try:
                await self.daemon.started
            except BaseException as exc:
                self._ready.put(exc)
                raise
            self._ready.put(None)
            await self._stop
            await self.daemon.stopService()

        try:
            run_in_reactor(scenario, timeout=600)
        except BaseException as exc:
            self._ready.put(exc)

    def call(self, fn: Any, *args: Any) -> Any:
        """``fn(*args)`` on the reactor thread (a Deferred's result is waited for)."""
        return blockingCallFromThread(self.reactor, fn, *args)

    def stop(self) -> None:
        if self._stop is not None and self._thread.is_alive():
            self.reactor.callFromThread(self._stop.callback, None)
        self._thread.join(timeout=60)
        assert not self._thread.is_alive(), "the daemon did not stop"

    def __enter__(self) -> LiveDaemon:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def client(self, **options: Any) -> Client:
        return Client("127.0.0.1", self.port, token=self.token, **options)


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    cookies: list[str] = field(default_factory=list)

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def error(self) -> str:
        return str(self.json["error"])


class Client:
    """Blocking HTTP against the API: bearer token by default, or a session."""

    def __init__(self, host: str, port: int, *, token: str | None = None) -> None:
        self.host, self.port, self.token = host, port, token
        self.cookie: str | None = None
        self.csrf: str | None = None

    def request(self, method: str, path: str, json_body: Any = None, *,
                body: bytes | None = None, headers: Mapping[str, str] | None = None,
                auth: bool = True, csrf: bool = True, timeout: float = 30.0) -> Response:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        sent = dict(headers or {})
        if auth and self.token is not None and self.cookie is None:
            sent.setdefault("Authorization", f"Bearer {self.token}")
        if self.cookie is not None:
            sent.setdefault("Cookie", self.cookie)
            if csrf and self.csrf is not None:
                sent.setdefault("X-CSRF-Token", self.csrf)
        if json_body is not None:
            body = json.dumps(json_body).encode()
            sent.setdefault("Content-Type", "application/json")
        try:
            conn.request(method, path, body=body, headers=sent)
            answer = conn.getresponse()
            data = answer.read()
            return Response(answer.status, {k.lower(): v for k, v in answer.getheaders()},
                            data, answer.headers.get_all("Set-Cookie") or [])
        finally:
            conn.close()

    def get(self, path: str, **options: Any) -> Response:
        return self.request("GET", path, **options)

    def login(self, password: str = PASSWORD) -> Response:
        answer = self.request("POST", "/api/login", {"password": password}, auth=False)
        if answer.status == 200:
            self.token = None
            self.cookie = answer.cookies[0].split(";")[0]
            self.csrf = answer.json["csrf_token"]
        return answer


class EventReader:
    """An open /api/events stream, read line by line (blocking, with a timeout)."""

    def __init__(self, port: int, path: str = "/api/events", *, token: str,
                 last_event_id: str | None = None, timeout: float = 20.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        headers = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", f"Authorization: Bearer {token}",
                   "Accept: text/event-stream"]
        if last_event_id is not None:
            headers.append(f"Last-Event-ID: {last_event_id}")
        self.sock.sendall(("\r\n".join(headers) + "\r\n\r\n").encode())
        self.file = self.sock.makefile("rb")
        status = self.file.readline().decode()
        self.status = int(status.split()[1])
        self.headers: dict[str, str] = {}
        while (line := self.file.readline().decode().rstrip("\r\n")):
            name, _, value = line.partition(":")
            self.headers[name.lower()] = value.strip()
        self.chunked = self.headers.get("transfer-encoding") == "chunked"
        self._buffer = b""
        self.last_id: str | None = None

    def _more(self) -> None:
        if not self.chunked:
            data = self.file.read1(65536)
        else:
            size = int(self.file.readline().strip() or b"0", 16)
            data = self.file.read(size) if size else b""
            self.file.readline()
        if not data:
            raise EOFError("the stream ended")
        self._buffer += data

    def next(self) -> tuple[str, Any]:
        """The next event as (name, decoded data); comments are skipped."""
        while True:
            while b"\n\n" not in self._buffer:
                self._more()
            frame, self._buffer = self._buffer.split(b"\n\n", 1)
            name, data = "message", []
            for line in frame.decode().split("\n"):
                key, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if key == "event":
                    name = value
                elif key == "data":
                    data.append(value)
                elif key == "id":
                    self.last_id = value
            if data:
                return name, json.loads("\n".join(data))

    def until(self, name: str, predicate: Any = lambda d: True, limit: int = 100000) -> Any:
        for _ in range(limit):
            got, data = self.next()
            if got == name and predicate(data):
                return data
        raise AssertionError(f"no {name} event")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.file.close()
        self.sock.close()


@contextlib.contextmanager
def events(live: LiveDaemon, path: str = "/api/events", **options: Any) -> Iterator[EventReader]:
    reader = EventReader(live.port, path, token=live.token, **options)
    try:
        yield reader
    finally:
        reader.close()
