"""``hadaemon passwd`` and ``hadaemon token`` as real processes against a real state dir."""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import select
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from twisted.internet.task import Clock

from hadaemon.testing import ChildProcesses, DaemonProcess, write_config
from hadaemon.web.auth import ENV_PASSWORD, WebAuth
from hadaemon.web.auth.passwords import verify_password
from hadaemon.web.auth.webauth import PASSWORD_KEY
from tests.web.auth_helpers import PASSWORD, make_auth, open_store, request, result


@pytest.fixture
def config(tmp_path: pathlib.Path) -> pathlib.Path:
    return write_config(tmp_path / "hadaemon.toml",
                        {"daemon": {"state_dir": "state", "plugins": []}})


def hadaemon(processes: ChildProcesses, *args: str, stdin: bytes | int | None = None,
             env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run ``python -m hadaemon ARGS``: (exit status, stdout, stderr)."""
    proc = processes.spawn(
        [sys.executable, "-m", "hadaemon", *args],
        stdin=subprocess.PIPE if isinstance(stdin, bytes) else stdin,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})})
    out, err = proc.communicate(stdin if isinstance(stdin, bytes) else None, timeout=60)
    return proc.returncode, out.decode(), err.decode()


@contextlib.contextmanager
def stored(config: pathlib.Path) -> Iterator[WebAuth]:
    """WebAuth over the state dir the commands wrote; closed again (it locks the store)."""
    clock = Clock()
    store = open_store(config.parent / "state", clock)
    try:
        yield make_auth(store, clock)
    finally:
        result(store.stopService())


def test_passwd_from_stdin_sets_a_password_that_logs_in(processes: ChildProcesses,
                                                        config: pathlib.Path) -> None:
    code, out, err = hadaemon(processes, "passwd", "--config", str(config), "--stdin",
                              stdin=f"{PASSWORD}\n".encode())
    assert (code, err) == (0, "")
    credentials = config.parent / "state" / "credentials.db"
    assert out == f"admin password set (stored as a scrypt hash in {credentials})\n"
    assert PASSWORD.encode() not in credentials.read_bytes()
    assert credentials.stat().st_mode & 0o777 == 0o600
    with stored(config) as auth:
        assert auth.password_source() == "store"
        assert result(auth.login(PASSWORD, client="a")).principal.name == "admin"
        assert not verify_password(PASSWORD + "!", auth._store.get(PASSWORD_KEY))


def test_passwd_refuses_a_short_password_and_changes_nothing(
        processes: ChildProcesses, config: pathlib.Path) -> None:
    code, out, err = hadaemon(processes, "passwd", "-c", str(config), "--stdin",
                              stdin=b"short\n")
    assert code == 1 and out == ""
    assert err == ("hadaemon passwd: the password must have at least 8 characters; "
                   "nothing was changed\n")
    assert not (config.parent / "state").exists()  # not even an empty store was made


def test_passwd_without_a_terminal_asks_for_stdin(processes: ChildProcesses,
                                                  config: pathlib.Path) -> None:
    code, _out, err = hadaemon(processes, "passwd", "-c", str(config), stdin=b"")
    assert code == 1 and "stdin is not a terminal: give the password with --stdin" in err


def read_until(fd: int, text: bytes, timeout: float = 60.0) -> bytes:
    """What ``fd`` gives until ``text`` came (TimeoutError naming it if it never does)."""
    seen = b""
    deadline = time.monotonic() + timeout
    while text not in seen:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            raise TimeoutError(f"no {text!r} within {timeout} s; got {seen!r}")
        chunk = os.read(fd, 4096)
        if not chunk:
            raise EOFError(f"the output ended before {text!r}; got {seen!r}")
        seen += chunk
    return seen


def test_passwd_on_a_terminal_asks_twice(processes: ChildProcesses,
                                         config: pathlib.Path) -> None:
    # A pseudo-terminal that is not the child's controlling one: getpass turns its echo
    # off and flushes what was typed ahead, so each answer goes in after its prompt.
    for second, expected in [("another password", 1), (PASSWORD, 0)]:
        leader, follower = os.openpty()
        try:
            proc = processes.spawn([sys.executable, "-m", "hadaemon", "passwd", "-c",
                                    str(config)], stdin=follower, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE)
            assert proc.stderr is not None and proc.stdout is not None
            read_until(proc.stderr.fileno(), b"New admin password: ")
            os.write(leader, f"{PASSWORD}\n".encode())
            read_until(proc.stderr.fileno(), b"The same again: ")
            os.write(leader, f"{second}\n".encode())
            assert proc.wait(timeout=60) == expected
            err = proc.stderr.read().decode()
            echoed = os.read(leader, 4096) if select.select([leader], [], [], 0)[0] else b""
        finally:
            os.close(leader)
            os.close(follower)
        assert PASSWORD.encode() not in echoed  # nothing typed was shown
        if expected:
            assert "the two passwords differ; nothing was changed" in err
            assert not (config.parent / "state").exists()
        else:
            assert "admin password set" in proc.stdout.read().decode()
    with stored(config) as auth:
        assert result(auth.login(PASSWORD, client="a")).principal.kind == "session"


def test_passwd_notes_an_environment_password(processes: ChildProcesses,
                                              config: pathlib.Path) -> None:
    code, _out, err = hadaemon(processes, "passwd", "-c", str(config), "--stdin",
                               stdin=f"{PASSWORD}\n".encode(),
                               env={ENV_PASSWORD: "from the container"})
    assert code == 0
    assert f"{ENV_PASSWORD} is set here; a daemon started with it uses that password" in err


def test_token_create_list_revoke(processes: ChildProcesses, config: pathlib.Path) -> None:
    code, out, err = hadaemon(processes, "token", "create", "backup script",
                              "--config", str(config))
    assert code == 0
    token = out.strip()
    assert out == token + "\n" and token.startswith("hdt_")  # stdout: the token alone
    token_id = token.split("_")[1]
    assert f"created API token {token_id} (backup script); it is shown only this once" in err
    assert token.split("_", 2)[2].encode() not in (
        config.parent / "state" / "credentials.db").read_bytes()

    with stored(config) as auth:
        principal = auth.require(request(authorization=f"Bearer {token}"),
                                 state_changing=True)
    assert (principal.kind, principal.name) == ("token", "backup script")

    code, out, _ = hadaemon(processes, "token", "list", "-c", str(config))
    header, row = out.splitlines()
    assert header.split() == ["ID", "NAME", "CREATED", "LAST", "USED"]
    assert row.startswith(f"{token_id}  backup script  20") and row.endswith("Z")
    assert token not in out
    code, out, _ = hadaemon(processes, "token", "list", "--json", "-c", str(config))
    [listed] = json.loads(out)
    assert listed["id"] == token_id and listed["name"] == "backup script"
    assert isinstance(listed["last_used"], float)  # the check above used it

    code, out, err = hadaemon(processes, "token", "revoke", token_id, "-c", str(config))
    assert (code, out, err) == (0, f"revoked API token {token_id}\n", "")
    with stored(config) as auth:
        assert auth.authenticate(request(authorization=f"Bearer {token}")) is None
    code, out, _ = hadaemon(processes, "token", "list", "-c", str(config))
    assert (code, out) == (0, "no API tokens\n")


def test_token_errors_exit_non_zero(processes: ChildProcesses, config: pathlib.Path) -> None:
    code, _out, err = hadaemon(processes, "token", "revoke", "0123456789ab", "-c", str(config))
    assert code == 1
    assert err == ("hadaemon token: no API token has the id '0123456789ab' "
                   "(see `hadaemon token list`)\n")
    code, _out, err = hadaemon(processes, "token", "create", "", "-c", str(config))
    assert (code, err) == (1, "hadaemon token: a token needs a non-empty name\n")
    code, _out, err = hadaemon(processes, "token", "list", "-c",
                               str(config.parent / "missing.toml"))
    assert code == 1 and "missing.toml: no such file" in err


def test_while_the_daemon_runs_the_commands_say_so(processes: ChildProcesses,
                                                   config: pathlib.Path) -> None:
    daemon = DaemonProcess(config, processes=processes).start()
    credentials = config.parent / "state" / "credentials.db"
    try:
        code, out, err = hadaemon(processes, "token", "create", "ci", "-c", str(config))
        assert (code, out) == (1, "")
        assert err == (
            f"hadaemon token: {credentials} is locked: the daemon for {config} is running "
            "and holds its credentials store. Stop it, then run this again (while it "
            "runs, manage tokens through its HTTP API: POST /api/tokens)\n")
        code, _out, err = hadaemon(processes, "passwd", "-c", str(config), "--stdin",
                                   stdin=f"{PASSWORD}\n".encode())
        assert code == 1 and "is locked: the daemon for" in err
        assert "HTTP API" not in err
    finally:
        assert daemon.stop() == 0
    # once it stopped, the same command works
    code, _out, _err = hadaemon(processes, "token", "create", "ci", "-c", str(config))
    assert code == 0
