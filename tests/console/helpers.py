"""The console's browser tests: the real daemon (``hadaemon run``) on a copy of the
example config, and real Chromium driven by Playwright (the system's browser: none can be
downloaded here).

The fixtures are in ``conftest.py``; these are the pieces tests use directly.
"""

from __future__ import annotations

import http.client
import json
import os
import pathlib
import re
import shutil
import signal
import time
from collections.abc import Callable
from typing import Any

from hadaemon.broker.ports import free_tcp_port
from hadaemon.testing.daemon import DaemonProcess
from hadaemon.testing.processes import ChildProcesses
from hadaemon.testing.waiting import poll_until

ROOT = pathlib.Path(__file__).resolve().parents[2]
PASSWORD = "console tests' admin password"
CHROMIUM = os.environ.get("HADAEMON_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
TIMEOUT_MS = 20_000
"""Playwright's waits: generous, the machine is shared and loaded."""
READY = '#view [data-ready="true"]'
"""A page's root once its first data is on screen (the contract of every page module)."""

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 780}


def example_copy(tmp: pathlib.Path, port: int,
                 edit: Callable[[str], str] | None = None) -> pathlib.Path:
    """etc/ and plugins/ copied, hadaemon/ linked (the config's relative paths hold), the
    web port replaced by ``port``; the state directory is then ``tmp/var``."""
    shutil.copytree(ROOT / "etc", tmp / "etc",
                    ignore=shutil.ignore_patterns("__pycache__", "pyziggy_autogenerate"))
    shutil.copytree(ROOT / "plugins", tmp / "plugins",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (tmp / "hadaemon").symlink_to(ROOT / "hadaemon")
    config = tmp / "etc" / "hadaemon.toml"
    text = config.read_text()
    text, replaced = re.subn(r"(?m)^port = 8480\b", f"port = {port}", text)
    assert replaced == 1, "etc/hadaemon.toml: no [web] 'port = 8480' line to replace"
    if edit is not None:
        text = edit(text)
    config.write_text(text)
    return config


class ConsoleDaemon:
    """``hadaemon run`` on a copy of the example config, on a free port, with its own
    state directory; ``restart()`` stops it and starts it again on the same port and
    state (sessions, kept in memory, are gone then: as in real life)."""

    def __init__(self, tmp: pathlib.Path, processes: ChildProcesses, *,
                 password: str | None = PASSWORD,
                 edit: Callable[[str], str] | None = None) -> None:
        self.port = free_tcp_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.password = password
        self.config = example_copy(tmp, self.port, edit)
        self.state_dir = tmp / "var"
        env = {"HADAEMON_ADMIN_PASSWORD": password or ""}
        self._processes = processes
        self.process = DaemonProcess(self.config, processes=processes, env=env)
        self.starts = 0

    def start(self, timeout: float = 120.0) -> ConsoleDaemon:
        self.process.start(timeout=timeout)
        self.starts += 1
        poll_until(self.answers, timeout=timeout, what=f"the HTTP API on {self.url}")
        return self

    def answers(self) -> bool:
        try:
            return self.request("GET", "/api/openapi.json")[0] == 200
        except OSError:
            return False

    def stop(self, timeout: float = 60.0) -> int:
        if self.process.proc is None or self.process.proc.poll() is not None:
            return self.process.proc.returncode if self.process.proc else 0
        status = self.process.stop(signal.SIGTERM, timeout=timeout)
        self._processes.stop(self.process.proc)  # its group (a broker, nodes) is gone too
        return status

    def restart(self, timeout: float = 120.0) -> ConsoleDaemon:
        status = self.stop()
        assert status == 0, f"the daemon exited with {status}:\n{self.output()[-4000:]}"
        # a new output file each start, so wait_for_output sees this start's mark
        self.process.log_path = self.config.parent / f"hadaemon-{self.starts + 1}.out"
        return self.start(timeout)

    def output(self) -> str:
        return self.process.output()

    def request(self, method: str, path: str, body: Any = None, *,
                headers: dict[str, str] | None = None) -> tuple[int, Any]:
        """A plain HTTP request (no browser): (status, decoded JSON or None)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            sent = dict(headers or {})
            data = None
            if body is not None:
                data = json.dumps(body).encode()
                sent["Content-Type"] = "application/json"
            conn.request(method, path, body=data, headers=sent)
            answer = conn.getresponse()
            raw = answer.read()
            try:
                decoded = json.loads(raw) if raw else None
            except ValueError:
                decoded = None
            return answer.status, decoded
        finally:
            conn.close()

    def session(self) -> dict[str, str]:
        """Headers of a fresh API session (cookie and CSRF token), for test set-up."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("POST", "/api/login", body=json.dumps({"password": self.password}),
                         headers={"Content-Type": "application/json"})
            answer = conn.getresponse()
            body = json.loads(answer.read())
            assert answer.status == 200, body
            cookie = (answer.getheader("Set-Cookie") or "").split(";")[0]
            return {"Cookie": cookie, "X-CSRF-Token": body["csrf_token"]}
        finally:
            conn.close()


def wait_ready(page: Any, timeout: float = TIMEOUT_MS) -> None:
    """Wait until the page mounted has its first data on screen."""
    page.wait_for_selector(READY, state="attached", timeout=timeout)


def goto(page: Any, daemon: ConsoleDaemon, hash_: str = "#/") -> None:
    """Open a route of the console and wait until its page is ready."""
    page.goto(f"{daemon.url}/{hash_}")
    wait_ready(page)


def navigate(page: Any, hash_: str) -> None:
    """Change the route in the running app (no reload) and wait for the new page."""
    page.evaluate("(h) => { location.hash = h; }", hash_)
    page.wait_for_function(
        "(h) => location.hash === h && document.querySelector('#view [data-ready=\"true\"]')",
        arg=hash_, timeout=TIMEOUT_MS)


def login_in_browser(page: Any, password: str) -> None:
    """Type the password into the login page and submit it (as a person would)."""
    page.get_by_label("Admin password").fill(password)
    page.get_by_role("button", name="Log in").click()


def deadline(seconds: float) -> Callable[[], bool]:
    """A clock for loops that poll: True while time remains."""
    end = time.monotonic() + seconds
    return lambda: time.monotonic() < end


__all__ = [
    "CHROMIUM", "CHROMIUM_ARGS", "DESKTOP", "PASSWORD", "PHONE", "READY", "ROOT",
    "TIMEOUT_MS", "ConsoleDaemon", "deadline", "example_copy", "goto", "login_in_browser",
    "navigate", "wait_ready",
]
