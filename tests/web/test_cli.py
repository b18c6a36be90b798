"""``hadaemon status``, ``get`` and ``set``: real commands against a real daemon's API."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.web.helpers import LiveDaemon


def hadaemon(live: LiveDaemon, *args: str,
             token: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HADAEMON_URL": f"http://127.0.0.1:{live.port}",
           "HADAEMON_TOKEN": token if token is not None else live.token}
    return subprocess.run([sys.executable, "-m", "hadaemon", *args], env=env,
                          capture_output=True, text=True, timeout=60)


def test_status_get_and_set(live: LiveDaemon) -> None:
    status = hadaemon(live, "status")
    assert status.returncode == 0, status.stderr
    assert "web" in status.stdout and "running" in status.stdout
    assert json.loads(hadaemon(live, "status", "--json").stdout)["counts"]["devices"] == 3

    written = hadaemon(live, "set", "cli_mode", '{"away": true}')
    assert written.returncode == 0, written.stderr
    assert live.call(live.daemon.registry.get_system_variable, "cli_mode") == {"away": True}
    assert json.loads(hadaemon(live, "get", "cli_mode").stdout) == {"away": True}
    assert json.loads(hadaemon(live, "set", "cli_text", "plain words").stdout) == "plain words"

    lamp = live.call(lambda: live.daemon.registry.find("demo", "lamp").peer_id)
    device = hadaemon(live, "set", f"{lamp}/0/brightness", "77", "--confirm")
    assert device.returncode == 0, device.stderr
    assert json.loads(hadaemon(live, "get", f"{lamp}/0/brightness").stdout) == 77


def test_errors_are_said_plainly(live: LiveDaemon) -> None:
    missing = hadaemon(live, "get", "no_such_variable")
    assert missing.returncode == 1
    assert "404 unknown_variable" in missing.stderr and "no_such_variable" in missing.stderr
    wrong = hadaemon(live, "status", token="wrong")
    assert wrong.returncode == 1 and "401" in wrong.stderr
    none = hadaemon(live, "status", token="")
    assert none.returncode == 1 and "HADAEMON_TOKEN" in none.stderr
    env = {**os.environ, "HADAEMON_TOKEN": "x"}
    env.pop("HADAEMON_URL", None)
    unreachable = subprocess.run(
        [sys.executable, "-m", "hadaemon", "status", "--url", "http://127.0.0.1:9"],
        env=env, capture_output=True, text=True, timeout=60)
    assert unreachable.returncode == 1 and "cannot reach the daemon" in unreachable.stderr
