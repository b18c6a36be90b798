"""Running the daemon with the nodes plugin in a fresh reactor, for the node tests."""

from __future__ import annotations

import contextlib
import os
import pathlib
import signal
import socket
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import LogLevel, formatEvent

from hadaemon.builtin.demo import DemoDevices
from hadaemon.bus import Address, Event
from hadaemon.config import read, validate
from hadaemon.daemon import Daemon
from hadaemon.nodes import SCHEMA, NodesPlugin
from hadaemon.plugin import Catalog, PluginInfo
from hadaemon.services import ServicesPlugin
from hadaemon.testing import wait_until

NODES = pathlib.Path(__file__).parent / "nodes"
BINCLIENT = pathlib.Path(__file__).parent / "binclient"
"""The pure-Python stand-in for the real homegear module (Homegear binary RPC)."""

WIRES = ("msgpack", "binrpc")
"""Both node wires, for tests parametrized over them."""

SPAWNS = ("fork", "exec")
"""Both ways of starting a node (``[nodes] spawn``), for tests parametrized over them."""

# Every plugin started by a test, so that a failed test still cannot leave nodes behind.
LIVE_PLUGINS: list[NodesPlugin] = []


def catalog() -> Catalog:
    return Catalog({
        "nodes": PluginInfo("nodes", NodesPlugin, SCHEMA, "tests"),
        "demo": PluginInfo("demo", DemoDevices, DemoDevices.schema, "tests"),
        "services": PluginInfo("services", ServicesPlugin, ServicesPlugin.schema, "tests"),
    })


def node(node_id: str, file: str, wire: str = "msgpack", **options: Any) -> dict[str, Any]:
    """A ``[[nodes.node]]`` table; ``file`` is a name in tests/nodes/nodes/.

    With ``wire="binrpc"`` the node speaks Homegear binary RPC through the test client
    (tests/nodes/binclient), on its path as the real module would be installed.
    """
    path = pathlib.Path(file)
    table = {"id": node_id, "file": str(path if path.is_absolute() else NODES / file),
             **options}
    if wire == "binrpc":
        table["wire"] = "binrpc"
        table["env"] = {**table.get("env", {}), "PYTHONPATH": str(BINCLIENT)}
    return table


def make_config(
    tmp_path: pathlib.Path,
    nodes: list[dict[str, Any]],
    plugins: tuple[str, ...] = ("nodes",),
    stop_timeout: float = 20.0,
    demo_latency: float = 0.0,
    demo_interval: float = 3600.0,
    services: dict[str, Any] | None = None,
    **settings: Any,
) -> Any:
    """A validated config; ``services`` is the ``[services]`` section (with the plugin)."""
    sections: dict[str, Any] = {
        "daemon": {"state_dir": str(tmp_path / "var"), "plugins": list(plugins),
                   "stop_timeout": stop_timeout},
        "nodes": {"node": nodes, "grace": 3.0, **settings},
    }
    if services is not None:
        sections["daemon"]["plugins"].append("services")
        sections["services"] = services
    if "demo" in plugins:
        sections["demo"] = {"interval": demo_interval, "follow": False,
                            "latency": demo_latency}
    config, errors = validate(read(sections, base_dir=tmp_path, environ={}), catalog().schemas())
    assert not errors, [str(e) for e in errors]
    return config


class Sink:
    """A bus endpoint ``test:<name>`` collecting what is sent to it (and events)."""

    def __init__(self, daemon: Daemon, name: str = "sink") -> None:
        self.messages: list[tuple[str, Any]] = []
        self.registration = daemon.bus.register(f"test:{name}", self._receive)

    def _receive(self, address: Address, message: Any) -> None:
        self.messages.append((address.path, message))

    def payloads(self, path: str | None = None) -> list[Any]:
        return [m.get("payload") if isinstance(m, dict) else m
                for p, m in self.messages if path is None or p == path]

    async def wait(self, reactor: Any, count: int, path: str | None = None,
                   timeout: float = 10.0) -> list[Any]:
        await wait_until(reactor, lambda: len(self.payloads(path)) >= count,
                         timeout, f"{count} message(s) at test sink {path or ''}")
        return self.payloads(path)


class Events:
    """Every bus event matching a pattern."""

    def __init__(self, daemon: Daemon, pattern: str) -> None:
        self.events: list[Event] = []
        daemon.bus.subscribe(pattern, self.events.append, name=f"test: {pattern}")


class Running:
    """A started daemon with the nodes plugin."""

    def __init__(self, reactor: Any, daemon: Daemon) -> None:
        self.reactor = reactor
        self.daemon = daemon
        self.sink = Sink(daemon)

    @property
    def plugin(self) -> NodesPlugin:
        plugin = self.daemon.plugin("nodes")
        assert isinstance(plugin, NodesPlugin), self.daemon.failed
        return plugin

    def state(self, node_id: str) -> dict[str, Any]:
        return self.plugin.nodes()[node_id]

    async def ready(self, *node_ids: str, timeout: float = 10.0) -> None:
        """Wait until these nodes (default: all) answered ping and got startUpComplete."""
        ids = node_ids or tuple(self.plugin.runtimes)
        await wait_until(
            self.reactor,
            lambda: self.plugin.startup_done and all(
                self.plugin.runtimes[i].ready and self.plugin.runtimes[i].startup_sent
                for i in ids),
            timeout, f"nodes {', '.join(ids)} to start",
        )

    def send(self, address: str, message: Any) -> Deferred[Any]:
        return self.daemon.bus.send(address, message)


@contextlib.asynccontextmanager
async def running(reactor: Any, config: Any, *, wait: bool = True) -> AsyncIterator[Running]:
    """Start the daemon; always stop it (and so every node) on the way out."""
    daemon = Daemon(config, reactor, catalog=catalog())
    daemon.startService()
    try:
        await daemon.started
        plugin = daemon.plugin("nodes")
        if isinstance(plugin, NodesPlugin):
            LIVE_PLUGINS.append(plugin)
        run = Running(reactor, daemon)
        if wait and plugin is not None:
            await run.ready()
        yield run
    finally:
        await daemon.stopService()


def kill_leftovers() -> list[int]:
    """SIGKILL the process groups of nodes a failed test left running; their pids."""
    killed = []
    while LIVE_PLUGINS:
        plugin = LIVE_PLUGINS.pop()
        groups = []
        if plugin.supervisor is not None:
            groups = [p.pgid for p in plugin.supervisor.processes.values() if p.pgid]
        for pgid in groups:
            with contextlib.suppress(OSError):
                os.killpg(pgid, signal.SIGKILL)
                killed.append(pgid)
        if plugin.reaper is not None and plugin.reaper.pid:
            with contextlib.suppress(OSError):
                os.kill(plugin.reaper.pid, signal.SIGKILL)
    return killed


def logged(logs: Any, namespace: str = "hadaemon.plugin.nodes",
           level: LogLevel = LogLevel.error) -> list[str]:
    """Formatted log lines at ``level`` or above from ``namespace`` (and below it)."""
    out = []
    for event in logs:
        if event.get("log_level", LogLevel.info) < level:
            continue
        if not str(event.get("log_namespace", "")).startswith(namespace):
            continue
        out.append(formatEvent(event))
    return out


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


def exchange(
    path: str, *frames: bytes, decode: Callable[[bytes], Iterable[Any]], timeout: float = 3.0
) -> tuple[list[Any], bool]:
    """Send raw bytes on a connection of this (test) process; return the answers
    (``decode`` takes each chunk received and gives the complete messages in it) and
    whether the daemon closed the connection."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.connect(path)
    answers: list[Any] = []
    closed = False
    try:
        for frame in frames:
            sock.sendall(frame)
        while True:
            data = sock.recv(65536)
            if not data:
                closed = True
                break
            answers.extend(decode(data))
    except TimeoutError:
        pass
    except ConnectionResetError:
        closed = True
    finally:
        sock.close()
    return answers, closed
