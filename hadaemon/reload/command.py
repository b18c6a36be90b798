"""``hadaemon reload``'s two ways to the running daemon: its HTTP API, or SIGHUP.

The API answers with what the reload did (or the messages that refused it); a signal
cannot answer, so the command checks the config itself first, as ``hadaemon check`` does.
The daemon's process is found through the pid file a daemon owning its process writes
into its state directory (``hadaemon.pid``: the pid, then the config file the daemon
runs with), trusted only while that directory's store is locked, which only a running
daemon does.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pathlib
import signal
import sys
import tomllib
from typing import Any

PID_FILE = "hadaemon.pid"  # as hadaemon.daemon.PID_FILE (not imported: it pulls in the daemon)
ENV_TOKEN = "HADAEMON_TOKEN"


class ReloadError(Exception):
    """Why the command could not reach the daemon (printed, status 1)."""


def uses_api(args: argparse.Namespace, environ: Any = os.environ) -> bool:
    """The config enables the web plugin and a token is at hand."""
    if not (getattr(args, "token", None) or environ.get(ENV_TOKEN)):
        return False
    try:
        with open(args.config, "rb") as file:
            daemon = tomllib.load(file).get("daemon", {})
    except (OSError, tomllib.TOMLDecodeError):
        return False  # the check on the signal's path says what is wrong
    plugins = daemon.get("plugins", []) if isinstance(daemon, dict) else []
    return isinstance(plugins, list) and "web" in plugins


def reload_through_api(args: argparse.Namespace) -> int:
    """POST /api/reload; print what it applied or the messages that refused it."""
    from hadaemon.web.cli import CliError, call

    try:
        result = call(args, "POST", "/api/reload")
    except CliError as exc:
        raise ReloadError(str(exc)) from None
    for warning in result.get("warnings", []):
        print(f"warning: {warning}", file=sys.stderr)
    for error in result.get("errors", []):
        print(error, file=sys.stderr)
    if not result.get("applied"):
        print(f"{args.config}: {len(result.get('errors', []))} error(s); the daemon keeps "
              "its running config", file=sys.stderr)
        return 1
    for what in ("added", "removed", "reconfigured", "restarted"):
        if result.get(what):
            print(f"{what}: {', '.join(result[what])}")
    for name, error in result.get("failed", {}).items():
        print(f"failed: {name}: {error} (tried again with backoff)", file=sys.stderr)
    for setting in result.get("needs_restart", []):
        print(f"{setting} changed: it takes effect when the daemon restarts", file=sys.stderr)
    print(f"{args.config}: reloaded")
    return 0


def daemon_pid(config: str) -> int:
    """The pid of the daemon running with ``config``'s state directory."""
    from hadaemon.config import ConfigErrors, read, validate_core

    try:
        core, _errors = validate_core(read(config))
    except ConfigErrors as exc:
        raise ReloadError(str(exc)) from None
    state_dir = core.state_dir
    path = state_dir / PID_FILE
    try:
        pid_line, _, config_line = path.read_text().partition("\n")
        pid = int(pid_line.strip())
    except FileNotFoundError:
        raise ReloadError(f"no daemon running with the state directory {state_dir} (no "
                          f"{PID_FILE} there)") from None
    except (OSError, ValueError) as exc:
        raise ReloadError(f"cannot read {path}: {exc}") from None
    if not _store_locked(state_dir / "state.db"):
        raise ReloadError(f"no daemon running with the state directory {state_dir} ({path} "
                          f"is left over from pid {pid})")
    running = config_line.strip()
    if running and pathlib.Path(running) != pathlib.Path(config).resolve():
        # SIGHUP makes it re-read its own file: checking another one here would mislead.
        raise ReloadError(f"the daemon (pid {pid}) runs with {running}, not {config}: pass "
                          f"--config {running}")
    return pid


def _store_locked(path: pathlib.Path) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def send_sighup(pid: int) -> None:
    """SIGHUP to the daemon (:func:`daemon_pid`)."""
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        raise ReloadError(f"the daemon (pid {pid}) is gone") from None
    except PermissionError:
        raise ReloadError(f"not allowed to signal the daemon (pid {pid}): run this as "
                          "its user") from None


__all__ = ["ReloadError", "daemon_pid", "reload_through_api", "send_sighup", "uses_api"]
