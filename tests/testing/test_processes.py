"""ChildProcesses must leave nothing behind: stubborn children, grandchildren, failed tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from hadaemon.testing import (
    ChildProcesses,
    free_tcp_port,
    kill_group,
    poll_until,
    wait_for_port,
)

# Ignores SIGTERM, starts a grandchild that ignores it too, prints the grandchild's pid.
STUBBORN = textwrap.dedent(
    """
    import signal, subprocess, sys, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    code = "import time; print('ready', flush=True); time.sleep(60)"
    grandchild = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    grandchild.stdout.readline()
    print(grandchild.pid, flush=True)
    time.sleep(60)
    """
)
SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


def alive(pid: int) -> bool:
    """Running, as opposed to gone or a zombie nobody reaped yet."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: fall back to a signal probe
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def wait_dead(pid: int, timeout: float = 30.0) -> bool:
    """Whether ``pid`` ended (the timeout only guards a hang)."""
    try:
        poll_until(lambda: not alive(pid), timeout, f"pid {pid} to end")
    except TimeoutError:
        return False
    return True


@pytest.mark.timeout(30)
def test_cleanup_kills_child_ignoring_sigterm_and_its_grandchild(
    processes: ChildProcesses,
) -> None:
    child = processes.spawn([sys.executable, "-c", STUBBORN], stdout=subprocess.PIPE)
    assert child.stdout is not None
    grandchild_pid = int(child.stdout.readline())
    assert alive(child.pid) and alive(grandchild_pid)
    assert os.getpgid(grandchild_pid) == child.pid  # same group, so the group kill reaches it

    started = time.monotonic()
    processes.cleanup(timeout=0.3)
    elapsed = time.monotonic() - started

    assert elapsed >= 0.3  # waited for SIGTERM (a hang is caught by the test's time limit)
    assert child.returncode == -signal.SIGKILL
    assert wait_dead(grandchild_pid)
    assert len(processes) == 0
    processes.cleanup()  # a second call is harmless


def test_cooperative_child_ends_on_sigterm_without_waiting(processes: ChildProcesses) -> None:
    proc = processes.spawn(SLEEPER)
    # Without waiting out its timeout: waiting 600 s would hit the test's own time limit
    # (pytest-timeout, 300 s), whatever the machine's load.
    processes.cleanup(timeout=600.0)
    assert proc.returncode == -signal.SIGTERM


def test_stop_ends_one_child_and_forgets_it(processes: ChildProcesses) -> None:
    first, second = processes.spawn(SLEEPER), processes.spawn(SLEEPER)
    assert processes.stop(first) == -signal.SIGTERM
    assert processes.procs == (second,)
    assert second.poll() is None
    kill_group(first, signal.SIGKILL)  # a group that is gone is not an error


def test_cleanup_copes_with_children_already_exited_and_reaped(processes: ChildProcesses) -> None:
    proc = processes.spawn([sys.executable, "-c", "pass"])
    proc.wait()
    processes.cleanup()
    assert proc.returncode == 0


def test_children_get_their_own_session(processes: ChildProcesses) -> None:
    proc = processes.spawn(SLEEPER)
    assert os.getsid(proc.pid) == proc.pid
    assert os.getpgid(proc.pid) == proc.pid != os.getpgid(0)
    with pytest.raises(ValueError, match="new session"):
        processes.spawn(SLEEPER, start_new_session=False)


def test_context_manager_cleans_up() -> None:
    with ChildProcesses() as children:
        proc = children.spawn(SLEEPER)
    assert proc.returncode is not None


def test_free_port_and_wait_for_port() -> None:
    port = free_tcp_port()
    with pytest.raises(TimeoutError, match=rf"127\.0\.0\.1:{port}\b"):
        wait_for_port("127.0.0.1", port, timeout=0.2)
    with socket.create_server(("127.0.0.1", port)):
        wait_for_port("127.0.0.1", port, timeout=2.0)


INNER_TESTS = textwrap.dedent(
    """
    import pathlib, sys

    def test_child(processes):
        proc = processes.spawn([sys.executable, "-c", "import time; time.sleep(60)"])
        pathlib.Path("child.pid").write_text(str(proc.pid))
        assert False, "failing on purpose"

    def test_broker(broker):
        pathlib.Path("broker.pid").write_text(str(broker.pid))
        assert False, "failing on purpose"
    """
)


@pytest.mark.timeout(60)
def test_fixtures_clean_up_after_a_failing_test(processes: ChildProcesses, tmp_path: Path) -> None:
    (tmp_path / "test_inner.py").write_text(INNER_TESTS)
    inner = processes.spawn(
        [sys.executable, "-m", "pytest", "-p", "hadaemon.testing.fixtures",
         "-p", "no:cacheprovider", "-q", "test_inner.py"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    output = inner.communicate(timeout=50)[0].decode()
    assert inner.returncode == 1, output
    assert "2 failed" in output
    child_pid = int((tmp_path / "child.pid").read_text())
    broker_pid = int((tmp_path / "broker.pid").read_text())
    assert wait_dead(child_pid), "the processes fixture left its child running"
    assert wait_dead(broker_pid), "the broker fixture left the broker running"
    assert " log (mqtt://127.0.0.1:" in output, "the failure report lacks the broker log"
