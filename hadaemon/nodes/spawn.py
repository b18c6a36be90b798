"""Starting a node process and watching it from the reactor, in any thread mode.

- The node is executed directly (``<python> <file> <socket> <node id>``, no shell), as the
  leader of its own process group, so stopping it reaches whatever it spawned; and its
  pid is the one the Homegear binary wire identifies it by.
- A parent-death signal (``prctl(PR_SET_PDEATHSIG, SIGKILL)``) ends the node if the daemon
  dies, even by SIGKILL. It fires when the *thread* that forked exits, so nodes are
  spawned on the reactor thread. hadaemon's own client arms it itself as it is imported
  (:mod:`hadaemon.nodes.client`), so those nodes are spawned with nothing run between
  fork and exec: subprocess then uses vfork, ~0.5 ms of the reactor instead of the 8-20 ms
  a full fork of the daemon costs. Nodes on the Homegear binary wire run the real C++
  client, which cannot arm it: for them (``parent_death=True``) it is set between fork
  and exec, through ctypes, and the cost is paid. Either way the reaper
  (:mod:`hadaemon.nodes.reaper`) kills the node's whole process group too.
- Its exit is seen at once through a pidfd the reactor watches: that works when the
  reactor runs in a background thread with no SIGCHLD handler, and does not depend on
  the node closing its stdout. Without pidfd support, a 0.1 s poll does the same.
- stdout and stderr are read line by line by the reactor.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import subprocess
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from twisted.internet.interfaces import IReactorFDSet, IReadDescriptor
from twisted.internet.task import LoopingCall
from twisted.python.failure import Failure
from zope.interface import implementer

_PR_SET_PDEATHSIG = 1
_MAX_LINE = 65536
_POLL_INTERVAL = 0.1


def _load_prctl() -> Callable[..., int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        prctl: Callable[..., int] = libc.prctl
    except (OSError, AttributeError):
        return None
    return prctl


_prctl = _load_prctl()  # loaded here: the child between fork and exec must not import


def _child_setup(daemon_pid: int) -> Callable[[], None]:
    def setup() -> None:
        # Runs in the child between fork and exec: no imports, no locks.
        if _prctl is not None:
            _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != daemon_pid:
            os._exit(1)  # the daemon died before the signal was armed

    return setup


def spawn(
    argv: Sequence[str], env: Mapping[str, str], cwd: str, *, parent_death: bool = False
) -> subprocess.Popen[bytes]:
    """Start a node process (raises OSError if it cannot be started); ``parent_death``:
    arm its parent-death signal between fork and exec (a full fork, see above)."""
    proc = subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(env),
        cwd=cwd,
        close_fds=True,
        process_group=0,
        # Only a prepared ctypes call and getppid run between fork and exec: no imports,
        # no locks, so the reactor's other threads cannot deadlock the child.
        preexec_fn=_child_setup(os.getpid()) if parent_death else None,  # noqa: PLW1509
    )
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            os.set_blocking(stream.fileno(), False)
    return proc


def signal_group(pgid: int, sig: int) -> bool:
    """Send ``sig`` to a process group; False if the group is gone."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def has_exited(pid: int) -> bool:
    """True once ``pid`` (our child) exited, without reaping it.

    A zombie keeps its pid, and so its process group id, reserved: signalling the group
    before reaping can never hit an unrelated process that reused the number.
    """
    try:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return info is not None


@implementer(IReadDescriptor)
class _Readable:
    """The minimal IReadDescriptor the reactor's addReader needs."""

    def __init__(self, fd: int, on_read: Callable[[], None], name: str) -> None:
        self._fd = fd
        self._on_read = on_read
        self._name = name

    def fileno(self) -> int:
        return self._fd

    def doRead(self) -> None:
        self._on_read()

    def connectionLost(self, reason: Failure) -> None:
        pass

    def logPrefix(self) -> str:
        return self._name


class ExitWatcher:
    """Calls ``on_exit()`` on the reactor thread once ``pid`` exited (not reaped)."""

    def __init__(self, reactor: Any, pid: int, on_exit: Callable[[], None], name: str) -> None:
        self._reactor = reactor
        self._pid = pid
        self._on_exit = on_exit
        self._fired = False
        self._pidfd: int | None = None
        self._reader: _Readable | None = None
        self._poll: LoopingCall | None = None
        try:
            self._pidfd = os.pidfd_open(pid)
        except (OSError, AttributeError):
            self._pidfd = None
        if self._pidfd is not None:
            self._reader = _Readable(self._pidfd, self._check, name)
            reactor.addReader(self._reader)
        else:
            self._poll = LoopingCall(self._check)
            self._poll.clock = reactor
            self._poll.start(_POLL_INTERVAL, now=False)
        # It may have exited before the watch was set up.
        reactor.callLater(0, self._check)

    def _check(self) -> None:
        if self._fired or not has_exited(self._pid):
            return
        self.cancel()
        self._fired = True
        self._on_exit()

    def cancel(self) -> None:
        if self._reader is not None:
            reactor_fds: IReactorFDSet = self._reactor
            reactor_fds.removeReader(self._reader)
            self._reader = None
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None
        if self._poll is not None and self._poll.running:
            self._poll.stop()
        self._poll = None


class LineReader:
    """Reads a non-blocking pipe on the reactor and hands over complete lines."""

    def __init__(
        self, reactor: Any, stream: Any, on_line: Callable[[str], None], name: str
    ) -> None:
        self._reactor = reactor
        self._stream = stream
        self._fd: int = stream.fileno()
        self._on_line = on_line
        self._partial = b""
        self._reader: _Readable | None = _Readable(self._fd, self._read, name)
        reactor.addReader(self._reader)

    def _read(self) -> None:
        try:
            data = os.read(self._fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.close()
            return
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        if len(self._partial) > _MAX_LINE:
            lines.append(self._partial)
            self._partial = b""
        for line in lines:
            self._emit(line)

    def _emit(self, raw: bytes) -> None:
        text = raw.rstrip(b"\r").decode("utf-8", "replace")
        if text:
            self._on_line(text)

    def close(self) -> None:
        """Stop reading, after what is already in the pipe (a crashing node's last
        words, its traceback, are often written just before it exits)."""
        if self._reader is None:
            return
        reactor_fds: IReactorFDSet = self._reactor
        reactor_fds.removeReader(self._reader)
        self._reader = None
        for _ in range(64):  # at most 4 MiB: a pipe holds far less
            try:
                data = os.read(self._fd, 65536)
            except OSError:
                break
            if not data:
                break
            lines = (self._partial + data).split(b"\n")
            self._partial = lines.pop()
            for line in lines:
                self._emit(line)
        if self._partial:
            self._emit(self._partial)
            self._partial = b""
        with contextlib.suppress(OSError):
            self._stream.close()
