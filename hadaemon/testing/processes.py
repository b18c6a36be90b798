"""Child processes for tests that never outlive the test that started them.

Every child gets its own session, hence its own process group, so that stopping it also
stops whatever it spawned (a broker's helpers, a shell's children). The pytest fixture
``processes`` lives in :mod:`hadaemon.testing.fixtures`.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import weakref
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from hadaemon.broker.ports import free_tcp_port

__all__ = ["ChildProcesses", "dump_stacks_and_kill", "free_tcp_port", "kill_group", "wait_for_port"]

_POLL_INTERVAL = 0.01


def kill_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    """Send ``sig`` to ``proc``'s whole process group; a group that is gone is not an error."""
    # start_new_session makes the child the leader: its pid is the group id.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def dump_stacks_and_kill(proc: subprocess.Popen[bytes]) -> None:
    """End a child that hangs, after it wrote where: SIGUSR2 (hadaemon's daemon hands it to
    ``faulthandler``: every thread's stack to stderr), 2 s to write them, then SIGKILL to
    its group, reaped."""
    proc.send_signal(signal.SIGUSR2)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(2.0)  # (it may even end meanwhile)
    kill_group(proc, signal.SIGKILL)
    proc.wait()


def _exited_unreaped(proc: subprocess.Popen[bytes]) -> bool:
    """True once ``proc`` has exited, without reaping it.

    A zombie leader keeps its pid, so its group id cannot be reused by an unrelated
    process until we reap it: that makes the final SIGKILL to the group safe.
    """
    if proc.returncode is not None:
        return True
    try:
        info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        # Reaped behind our back (e.g. by the caller's own wait()); let Popen notice.
        return proc.poll() is not None
    return info is not None


class ChildProcesses:
    """Spawns subprocesses in their own process groups and reliably ends them all.

    ``cleanup()`` is idempotent and is also run at interpreter exit for any instance
    that was not cleaned up, so a crashed test session leaves no orphans behind.
    """

    def __init__(self) -> None:
        self._procs: list[subprocess.Popen[bytes]] = []
        _LIVE.add(self)

    @property
    def procs(self) -> tuple[subprocess.Popen[bytes], ...]:
        """The children spawned and not yet cleaned up, oldest first."""
        return tuple(self._procs)

    def __len__(self) -> int:
        return len(self._procs)

    def spawn(self, args: Sequence[str], **popen_kwargs: Any) -> subprocess.Popen[bytes]:
        """Start ``args`` as the leader of a new session and remember it."""
        if not popen_kwargs.pop("start_new_session", True):
            raise ValueError("ChildProcesses always starts children in a new session")
        if "process_group" in popen_kwargs:
            raise ValueError("ChildProcesses manages process groups itself")
        popen_kwargs.setdefault("stdin", subprocess.DEVNULL)
        proc: subprocess.Popen[bytes] = subprocess.Popen(
            list(args), start_new_session=True, **popen_kwargs
        )
        self._procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 5.0) -> int:
        """End one child's group (SIGTERM, then SIGKILL after ``timeout``) and forget it."""
        self._end([proc], timeout)
        with contextlib.suppress(ValueError):
            self._procs.remove(proc)
        assert proc.returncode is not None
        return proc.returncode

    def cleanup(self, timeout: float = 5.0) -> None:
        """End every group: SIGTERM all, wait up to ``timeout`` in total, SIGKILL all, reap."""
        procs, self._procs = self._procs, []
        self._end(procs, timeout)

    @staticmethod
    def _end(procs: Sequence[subprocess.Popen[bytes]], timeout: float) -> None:
        for proc in procs:
            if proc.returncode is None:
                kill_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        pending = [p for p in procs if not _exited_unreaped(p)]
        while pending and time.monotonic() < deadline:
            time.sleep(_POLL_INTERVAL)
            pending = [p for p in pending if not _exited_unreaped(p)]
        # SIGKILL every group, even when its leader exited: grandchildren that ignored
        # SIGTERM (or never got it because the leader died first) are still in it.
        for proc in procs:
            kill_group(proc, signal.SIGKILL)
        for proc in procs:
            proc.wait()
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()

    def __enter__(self) -> ChildProcesses:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()


_LIVE: weakref.WeakSet[ChildProcesses] = weakref.WeakSet()


@atexit.register
def _cleanup_leftovers() -> None:
    for children in list(_LIVE):
        try:
            children.cleanup(timeout=1.0)
        except Exception as exc:  # best effort at exit: keep going
            print(f"hadaemon.testing: cleanup at exit failed: {exc!r}", file=sys.stderr)


def wait_for_port(host: str, port: int, timeout: float = 10.0) -> None:
    """Block until something accepts TCP connections on ``host:port``."""
    deadline = time.monotonic() + timeout
    last: OSError | None = None
    while True:
        try:
            with socket.create_connection((host, port), timeout=min(1.0, timeout)):
                return
        except OSError as exc:
            last = exc
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"nothing accepted a TCP connection on {host}:{port} within {timeout:g} s"
                f" (last error: {last})"
            )
        time.sleep(0.02)
