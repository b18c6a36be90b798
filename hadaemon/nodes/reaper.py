"""The daemon's side of the node reaper (see :mod:`hadaemon.nodes.reaper_process`)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger

from hadaemon.nodes import reaper_process
from hadaemon.nodes.spawn import ExitWatcher

SCRIPT = os.path.abspath(reaper_process.__file__)


class Reaper:
    """Keeps the reaper process told which node process groups exist (reactor thread)."""

    def __init__(self, reactor: Any, log: Logger) -> None:
        self._reactor = reactor
        self._log = log
        self._proc: subprocess.Popen[bytes] | None = None
        self._exited: Deferred[None] | None = None
        self._broken = False

    @property
    def pid(self) -> int | None:
        """The reaper's pid while it runs (None once it exited and was reaped)."""
        proc = self._proc
        return proc.pid if proc is not None and proc.returncode is None else None

    def start(self) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-I", "-S", SCRIPT],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            close_fds=True,
            start_new_session=True,
        )
        self._exited = Deferred()
        ExitWatcher(self._reactor, self._proc.pid, self._reap, "node reaper")

    def _reap(self) -> None:
        if self._proc is not None:
            self._proc.wait()
        if self._exited is not None and not self._exited.called:
            self._exited.callback(None)

    def _tell(self, line: bytes) -> None:
        proc = self._proc
        if proc is None or proc.stdin is None or self._broken:
            return
        try:
            proc.stdin.write(line)
            proc.stdin.flush()
        except OSError as exc:
            # Nodes still die with the daemon (parent-death signal); only what they
            # spawned might outlive a killed daemon now.
            self._broken = True
            self._log.error("the node reaper is gone ({error}): processes spawned by "
                            "nodes may outlive a killed daemon", error=str(exc))

    def watch(self, pgid: int) -> None:
        self._tell(b"+%d\n" % pgid)

    def forget(self, pgid: int) -> None:
        self._tell(b"-%d\n" % pgid)

    def stop(self) -> Deferred[None]:
        """Close the pipe (the reaper exits); fires once it was reaped."""
        proc = self._proc
        if proc is None or self._exited is None:
            return succeed(None)
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        return self._exited
