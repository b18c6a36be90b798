"""Helpers for the embedded-broker tests: a daemon with ``[mqtt] broker = "embedded"``,
what its broker wrote about itself, and whether a process is still there."""

from __future__ import annotations

import json
import pathlib
import socket
from types import SimpleNamespace
from typing import Any

from hadaemon.testing import BlockingClient
from hadaemon.testing.daemon import DaemonProcess, write_config
from hadaemon.testing.processes import ChildProcesses
from hadaemon.testing.waiting import poll_until

CONNECTED = "mqtt: connected to mqtt://127.0.0.1:"


def embedded_config(tmp_path: pathlib.Path, impl: str, **mqtt: Any) -> pathlib.Path:
    return write_config(tmp_path / "hadaemon.toml", {
        "daemon": {"name": "embedded-test", "state_dir": str(tmp_path / "var"),
                   "plugins": ["mqtt"], "stop_timeout": 20.0},
        "log": {"level": "debug", "file": "-"},
        "mqtt": {"broker": "embedded", "broker_impl": impl, "reconnect_delay": 0.05,
                 "reconnect_delay_max": 0.5, **mqtt},
    })


def start_daemon(config: pathlib.Path, processes: ChildProcesses) -> DaemonProcess:
    """The daemon, started and connected to its broker (a slow machine: amqtt alone
    takes seconds to import)."""
    daemon = DaemonProcess(config, processes=processes).start(timeout=60.0)
    daemon.wait_for_output(CONNECTED, timeout=60.0)
    return daemon


def broker_info(state_dir: pathlib.Path) -> dict[str, Any]:
    """What the embedded broker wrote about itself (``broker.json``)."""
    path = state_dir / "plugins" / "mqtt" / "broker" / "broker.json"
    info: dict[str, Any] = json.loads(path.read_text())
    return info


def endpoint(info: dict[str, Any], **changes: Any) -> Any:
    """What :class:`BlockingClient` needs of a broker, for the embedded one."""
    values = {"host": info["host"], "port": info["port"], "username": info["username"],
              "password": info["password"], "tls": False, "require_client_cert": False,
              "url": info["url"], "log_tail": lambda lines=5: "(in the daemon's log)"}
    return SimpleNamespace(**(values | changes))


def client(info: dict[str, Any], **changes: Any) -> BlockingClient:
    return BlockingClient(endpoint(info, **changes))


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie nobody reaped yet counts as gone)."""
    try:
        stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def accepts(host: str, port: int) -> bool:
    """Whether something accepts TCP connections at ``host:port`` right now."""
    try:
        with socket.create_connection((host, port), timeout=2.0):
            return True
    except OSError:
        return False


def wait_gone(pid: int, what: str) -> None:
    poll_until(lambda: not alive(pid), timeout=15.0, what=what)


def outside_address() -> str | None:
    """An address of this machine that is not loopback, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # (no packet is sent: it only picks a route)
            address: str = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") or address == "0.0.0.0" else address
