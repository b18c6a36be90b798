"""Embedding scenarios, each in a fresh process (the global reactor runs once per process)."""

from __future__ import annotations

import os
import pathlib
import re
import signal
import subprocess
import sys

import pytest

from hadaemon.testing.processes import ChildProcesses, dump_stacks_and_kill
from hadaemon.testing.waiting import poll_until

SCENARIOS = pathlib.Path(__file__).resolve().parent / "scenarios.py"
HOSTILE = pathlib.Path(__file__).resolve().parents[1] / "core" / "hostile" / "services"
# How long a scenario may take to end: only a guard against a hang, far beyond the
# daemon's own stop budget (10 s, see scenarios.config) even on a loaded 2-core machine.
STOP_GUARD = 120.0
# A stop cut short: a plugin's stop limit, or the whole daemon's, ran out.
CUT_SHORT = re.compile(r"plugin \S+ did not stop within|daemon did not stop within")


def run(
    scenario: str, workdir: pathlib.Path, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [sys.executable, str(SCENARIOS), scenario, str(workdir)],
            capture_output=True, text=True, timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{scenario} did not end within {timeout}s; stdout:\n{exc.stdout!r:.4000}"
                    f"\nstderr:\n{exc.stderr!r:.8000}", pytrace=False)


def spawn(processes: ChildProcesses, scenario: str,
          workdir: pathlib.Path) -> subprocess.Popen[bytes]:
    """A scenario read line by line; its stderr goes to a file (``stderr_of``): a pipe that
    nobody reads until the end could fill up and block it."""
    with (workdir / "stderr").open("wb") as stderr:
        return processes.spawn([sys.executable, str(SCENARIOS), scenario, str(workdir)],
                               stdout=subprocess.PIPE, stderr=stderr)


def stderr_of(workdir: pathlib.Path) -> str:
    return (workdir / "stderr").read_text(errors="replace")


def wait_or_explain(proc: subprocess.Popen[bytes], workdir: pathlib.Path) -> int:
    """The exit status of ``spawn``'s scenario, or a failure that shows where it hangs."""
    try:
        return proc.wait(STOP_GUARD)
    except subprocess.TimeoutExpired:
        pass
    dump_stacks_and_kill(proc)  # scenarios.py hands SIGUSR2 to faulthandler too
    pytest.fail(f"the scenario did not end within {STOP_GUARD}s; its stderr, with its "
                f"threads' stacks:\n{stderr_of(workdir)[-12000:]}", pytrace=False)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def wait_for(path: pathlib.Path, timeout: float = 60.0) -> None:
    poll_until(path.exists, timeout, f"{path} to appear")


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(") ")[1][0] == "Z"


def test_legacy_program_calls_facade_events_and_stop(tmp_path: pathlib.Path) -> None:
    out = ok(run("legacy", tmp_path))
    for line in ["started", "calls ok", "facade ok", "events ok", "stopped ok"]:
        assert line in out.splitlines(), out
    assert (tmp_path / "stopped").exists()


def test_sigint_stops_the_program_and_the_daemon(tmp_path: pathlib.Path,
                                                 processes: ChildProcesses) -> None:
    proc = spawn(processes, "wait_forever", tmp_path)
    wait_for(tmp_path / "child.pid")
    child = int((tmp_path / "child.pid").read_text())
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"ready\n"
    proc.send_signal(signal.SIGINT)  # Ctrl+C in the legacy program
    status = wait_or_explain(proc, tmp_path)
    err = stderr_of(tmp_path)
    # The program's own behaviour: Python prints the KeyboardInterrupt and ends itself
    # with SIGINT, so the parent sees a death by signal.
    assert status == -signal.SIGINT and "KeyboardInterrupt" in err
    assert not CUT_SHORT.search(err), err  # a clean stop, not one cut short
    assert (tmp_path / "stopped").exists()  # stopService ran
    assert gone(child)


def test_user_code_cannot_stop_the_daemon_but_ctrl_c_still_does(
        tmp_path: pathlib.Path, processes: ChildProcesses) -> None:
    proc = spawn(processes, "hostile", tmp_path)
    assert proc.stdout is not None
    lines: list[str] = []
    while not lines or lines[-1] != "ready":
        line = proc.stdout.readline().decode()
        assert line, f"ended early: {lines}\n{stderr_of(tmp_path)}"
        lines.append(line.rstrip("\n"))
    service = HOSTILE / "Hostile.py"
    source = service.read_text().splitlines()
    lineno = next(n for n, text in enumerate(source, 1) if '"from a service action"' in text)
    assert lines[0] == ("interrupt: UserCodeEscape: user code raised "
                        f"KeyboardInterrupt(from a service action) at {service}:{lineno}, "
                        "in interrupt")
    assert lines[1].startswith("exit: UserCodeExit: user code called sys.exit(3) at "
                               f"{service}:")
    assert lines[2].startswith("call: UserCodeEscape: user code raised "
                               f"KeyboardInterrupt(from a handle.call) at {SCENARIOS}:")
    assert lines[3:] == ["loop escapes reported", "subscriber goes on", "ready"]
    child = int((tmp_path / "child.pid").read_text())
    proc.send_signal(signal.SIGINT)  # the program's own Ctrl+C
    status = wait_or_explain(proc, tmp_path)
    err = stderr_of(tmp_path)
    assert status == -signal.SIGINT and "KeyboardInterrupt" in err
    assert not CUT_SHORT.search(err), err  # a clean stop, not one cut short
    assert (tmp_path / "stopped").exists()  # stopService ran
    assert gone(child)


def test_falling_off_the_end_stops_cleanly(tmp_path: pathlib.Path) -> None:
    result = run("fall_off", tmp_path, timeout=STOP_GUARD)
    out = ok(result)
    # it ended by itself, and cleanly: no stop ran out of its time
    assert not CUT_SHORT.search(result.stderr), result.stderr
    assert "ready" in out
    assert (tmp_path / "stopped").exists()
    child = int((tmp_path / "child.pid").read_text())
    assert gone(child)
    # the state was flushed: the system variable is in the store
    from twisted.internet.defer import maybeDeferred
    from twisted.internet.task import Clock

    from hadaemon.store import Store

    store = Store(tmp_path / "var" / "state.db", reactor=Clock(), run_in_thread=maybeDeferred)
    store.open()
    assert store.get("registry/sysvar/kept") == "yes"
    store.stopService()


def test_blocking_call_times_out_and_cancels(tmp_path: pathlib.Path) -> None:
    out = ok(run("timeout", tmp_path))
    assert "timeout after 0.3" in out and "did not finish within 0.3s" in out
    assert "work cancelled" in out
    assert "async timeout" in out and "async work cancelled" in out


def test_exceptions_arrive_in_the_caller_and_deadlock_is_refused(tmp_path: pathlib.Path) -> None:
    out = ok(run("errors", tmp_path))
    assert "caught Custom: raised in the reactor thread" in out
    assert "exit became UserCodeExit" in out
    assert "deadlock refused: blocking call" in out
    assert "deadlock refused in submit" in out


def test_start_after_stop_is_refused(tmp_path: pathlib.Path) -> None:
    out = ok(run("restart", tmp_path))
    assert "refused: the reactor of this process already ran and stopped" in out


def test_a_second_start_is_refused_at_once(tmp_path: pathlib.Path) -> None:
    out = ok(run("second_start", tmp_path))
    refusal = ("refused: a hadaemon daemon already runs in this process (started by "
               f"hadaemon.embed.start(), state directory {tmp_path / 'var'}): one daemon "
               "per process; use its handle, or stop() it before starting another")
    assert f"same {refusal}" in out.splitlines()  # not "state.db is in use"
    assert f"other {refusal}" in out.splitlines()  # not a second daemon on the reactor
    assert "reactor thread refused" in out
    assert "first stopped" in out


def test_racing_starts_start_one_daemon(tmp_path: pathlib.Path) -> None:
    assert "race ['refused', 'started']" in ok(run("racing_starts", tmp_path))


def test_stop_on_the_reactor_thread_starts_the_stop_and_returns(tmp_path: pathlib.Path) -> None:
    out = ok(run("stop_on_reactor_thread", tmp_path))
    assert "reactor thread stop returned None" in out
    assert "stopped at once for callers" in out
    # a later stop() from another thread waited for that stop, reactor thread included
    assert "after stop: True []" in out


def test_callers_own_asyncio_loop_is_left_alone(tmp_path: pathlib.Path) -> None:
    assert "loops ok" in ok(run("own_loop", tmp_path))


def test_attach_to_a_running_asyncio_reactor(tmp_path: pathlib.Path) -> None:
    out = ok(run("attach", tmp_path))
    assert "attach [True, 'deadlock guard', 'from a worker thread']" in out


def test_another_reactor_is_refused(tmp_path: pathlib.Path) -> None:
    out = ok(run("wrong_reactor", tmp_path))
    assert "refused EPollReactor" in out and "asyncio reactor" in out
    assert not (tmp_path / "started").exists()


def test_forked_child_fails_at_once(tmp_path: pathlib.Path) -> None:
    out = ok(run("fork", tmp_path))
    assert "child refused after 0.0" in out and "forked after" in out
    assert "parent ok" in out


def test_log_goes_to_stdlib_logging_and_host_io_untouched(tmp_path: pathlib.Path) -> None:
    result = run("stdlib_logging", tmp_path)
    out = ok(result)
    assert "logged by ['hadaemon.daemon']" in out
    assert "the host's own warning" in result.stderr  # warnings still shown by the host


def test_facade_reaches_a_service(tmp_path: pathlib.Path) -> None:
    assert "services ok" in ok(run("services", tmp_path))


def test_facade_reaches_a_node_and_the_node_ends_with_the_program(
    tmp_path: pathlib.Path,
) -> None:
    result = run("nodes", tmp_path)
    out = ok(result)
    assert "nodes ok" in out
    node = int((tmp_path / "node.pid").read_text())
    grandchild = int((tmp_path / "grandchild.pid").read_text())
    # a node's whole process group ends with it (the timeout only guards a hang)
    poll_until(lambda: gone(node) and gone(grandchild), 60,
               f"the node and its grandchild to end\n{result.stdout}{result.stderr}")
