"""Watching processes from the reactor, in any thread mode: their exit and their output.

Node processes are started by the spawner process (:mod:`hadaemon.nodes.reaper`), not
here: the daemon only reads their stdout and stderr (pipes it made) line by line.

- A child's exit (the spawner's own) is seen at once through a pidfd the reactor
  watches: that works when the reactor runs in a background thread with no SIGCHLD
  handler, and does not depend on the child closing its stdout. Without pidfd support,
  a 0.1 s poll does the same.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import resource
from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import IReactorFDSet, IReadDescriptor, IWriteDescriptor
from twisted.internet.task import LoopingCall
from twisted.python.failure import Failure
from zope.interface import implementer

_MAX_LINE = 65536
_POLL_INTERVAL = 0.1


def reserve_descriptors(count: int) -> None:
    """Grow this process's descriptor table now to hold ``count`` more descriptors.

    The kernel grows the table as descriptors are opened, doubling it; in a process with
    threads each growth waits for an RCU grace period: 10-20 ms of whichever thread
    opened the descriptor, here the reactor starting the nodes (each holds pipes and a
    socket). Grown once up front, the table never shrinks.
    """
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    probe = os.open(os.devnull, os.O_RDONLY)
    try:
        target = min(probe + count, soft - 1)
        if target > probe:
            with contextlib.suppress(OSError):
                os.close(fcntl.fcntl(probe, fcntl.F_DUPFD_CLOEXEC, target))
    finally:
        os.close(probe)


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


@implementer(IReadDescriptor, IWriteDescriptor)
class Descriptor:
    """The minimal descriptor the reactor's addReader (and addWriter) needs."""

    def __init__(
        self, fd: int, on_read: Callable[[], None], name: str,
        on_write: Callable[[], None] | None = None,
    ) -> None:
        self._fd = fd
        self._on_read = on_read
        self._on_write = on_write
        self._name = name

    def fileno(self) -> int:
        return self._fd

    def doRead(self) -> None:
        self._on_read()

    def doWrite(self) -> None:
        if self._on_write is not None:
            self._on_write()

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
        self._reader: Descriptor | None = None
        self._poll: LoopingCall | None = None
        try:
            self._pidfd = os.pidfd_open(pid)
        except (OSError, AttributeError):
            self._pidfd = None
        if self._pidfd is not None:
            self._reader = Descriptor(self._pidfd, self._check, name)
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
    """Reads a pipe on the reactor (non-blocking from here on; closed by :meth:`close`)
    and hands over complete lines."""

    def __init__(
        self, reactor: Any, fd: int, on_line: Callable[[str], None], name: str
    ) -> None:
        self._reactor = reactor
        os.set_blocking(fd, False)
        self._fd = fd
        self._on_line = on_line
        self._partial = b""
        self._reader: Descriptor | None = Descriptor(self._fd, self._read, name)
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
            os.close(self._fd)
