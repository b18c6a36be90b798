"""mosquitto as a child process of the daemon, driven by the reactor.

Why a small Python launcher runs first: the child must die with the daemon however the
daemon dies (``kill -9`` included), and Linux does that for us only with a parent-death
signal, set in the child before it execs mosquitto (a ``preexec_fn`` is unsafe in a
process with threads, and Twisted may start the child with ``posix_spawn``). The
launcher also puts mosquitto in a session of its own, so a Ctrl+C in the daemon's
terminal reaches the daemon only, which then stops mosquitto after its clients.

The child's exit is seen through a pidfd as well as through Twisted's SIGCHLD handling:
an embedded daemon (``hadaemon.embed``) runs the reactor without signal handlers, and
then nothing else would reap it.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sys
from collections import deque
from collections.abc import Callable
from typing import Any, Final

from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import ProcessDone
from twisted.internet.interfaces import IDelayedCall, IReadDescriptor
from twisted.internet.protocol import ProcessProtocol
from twisted.internet.task import LoopingCall
from twisted.python.failure import Failure
from zope.interface import implementer

__all__ = ["LAUNCHER", "MosquittoProcess"]

# Run as ``python -I -S -c LAUNCHER <daemon pid> <mosquitto> <args>``.
LAUNCHER: Final = """\
import os, signal, sys
try:
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
except (ImportError, OSError, AttributeError):
    pass  # not Linux: the daemon's stop is then the only way it ends
if os.getppid() != int(sys.argv[1]):
    os._exit(70)  # the daemon died before the signal was armed
os.setsid()
os.execv(sys.argv[2], sys.argv[2:])
"""
# Logged once mosquitto has opened its listeners.
_READY: Final = re.compile(r"mosquitto version \S+ running")
_TIMESTAMP: Final = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d: ")
_AS_ROOT: Final = "should not be run as root"
_TAIL: Final = 40
_TERM_AGAIN: Final = 0.25  # seconds
_POLL: Final = 0.5  # seconds between exit checks where pidfds are missing


class MosquittoProcess:
    """One run of mosquitto: started, watched, stopped; never restarted (its owner does
    that). Reactor thread only.

    ``on_line(level, text)`` gets each log line (level: "error", "warn" or "debug"),
    ``on_exit(status)`` the exit once it was reaped (a signal as its negative number).
    """

    def __init__(
        self,
        reactor: Any,
        binary: str,
        config_path: str,
        *,
        on_line: Callable[[str, str], None],
        on_exit: Callable[[int | None], None],
    ) -> None:
        self._reactor = reactor
        self._argv = [sys.executable, "-I", "-S", "-c", LAUNCHER, str(os.getpid()), binary,
                      "-c", config_path]
        self._on_line = on_line
        self._on_exit = on_exit
        self._protocol: _Protocol | None = None
        self._ready: Deferred[None] | None = None
        self._exited: Deferred[None] = Deferred()
        self._kill: IDelayedCall | None = None
        self._term: LoopingCall | None = None
        self.tail: deque[str] = deque(maxlen=_TAIL)
        """The last lines it logged, for error messages."""
        self.status: int | None = None

    @property
    def pid(self) -> int | None:
        """Its pid until it was reaped."""
        transport = self._protocol.transport if self._protocol is not None else None
        pid = getattr(transport, "pid", None)
        return pid if isinstance(pid, int) else None

    def start(self) -> Deferred[None]:
        """Launch it; fires once it logged that it runs, fails if it exits first."""
        self._ready = Deferred()
        self._protocol = _Protocol(self)
        self._reactor.spawnProcess(
            self._protocol, self._argv[0], self._argv, env=_environment(), path="/",
            childFDs={0: "w", 1: "r", 2: "r"},
        )
        return self._ready

    def stop(self, timeout: float) -> Deferred[None]:
        """SIGTERM (again every quarter second: mosquitto 2.0 loses one that comes just
        after it logged "running", when it sets its run flag), SIGKILL to its session
        after ``timeout``; fires once it was reaped."""
        if self.pid is None:
            return succeed(None) if self._exited.called else self._exited
        self._term = LoopingCall(self._signal, signal.SIGTERM)
        self._term.clock = self._reactor
        self._term.start(_TERM_AGAIN, now=True)
        self._kill = self._reactor.callLater(timeout, self._signal, signal.SIGKILL)
        return self._exited

    def kill(self) -> None:
        """SIGKILL at once (as a crash would)."""
        self._signal(signal.SIGKILL)

    def _signal(self, sig: int) -> None:
        pid = self.pid
        if pid is not None:  # not reaped: its pid (the session's id) is still reserved
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, sig)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)  # (before setsid, its group is not its own yet)

    # -- from the protocol ----------------------------------------------------------------

    def _line(self, raw: bytes) -> None:
        text = _TIMESTAMP.sub("", raw.decode("utf-8", "replace").rstrip())
        if not text:
            return
        self.tail.append(text)
        lowered = text.lower()
        level = "error" if "error" in lowered else "warn" if "warning" in lowered else "debug"
        if _AS_ROOT in lowered:
            level = "debug"  # (as root the config says "user root" on purpose)
        self._on_line(level, text)
        ready = self._ready
        if ready is not None and not ready.called and _READY.search(text):
            ready.callback(None)

    def _ended(self, status: int | None) -> None:
        self.status = status
        if self._kill is not None and self._kill.active():
            self._kill.cancel()
        if self._term is not None and self._term.running:
            self._term.stop()
        ready = self._ready
        if ready is not None and not ready.called:
            tail = "\n".join(self.tail)
            ready.errback(Failure(RuntimeError(
                f"mosquitto exited with status {status} while starting:\n{tail}")))
        else:
            self._on_exit(status)
        self._exited.callback(None)


def _environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}


class _Protocol(ProcessProtocol):
    """Lines from the child's stdout and stderr; its end, reaped without SIGCHLD too."""

    def __init__(self, owner: MosquittoProcess) -> None:
        self._owner = owner
        self._partial = {1: b"", 2: b""}
        self._watch: _PidWatch | None = None

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.transport.closeStdin()
        pid = getattr(self.transport, "pid", None)
        if isinstance(pid, int):
            self._watch = _PidWatch(self._owner._reactor, pid, self._reap)

    def _reap(self) -> None:
        transport = self.transport
        if getattr(transport, "pid", None) is not None:
            transport.reapProcess()  # type: ignore[union-attr]
        if getattr(transport, "pid", None) is None and self._watch is not None:
            self._watch.cancel()  # reaped (here or by SIGCHLD): the pidfd stays readable
            self._watch = None

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        lines = (self._partial.get(childFD, b"") + data).split(b"\n")
        self._partial[childFD] = lines.pop()
        for line in lines:
            self._owner._line(line)

    def processEnded(self, reason: Failure) -> None:
        if self._watch is not None:
            self._watch.cancel()
        for rest in self._partial.values():
            if rest:
                self._owner._line(rest)
        value = reason.value
        status: int | None
        sig = getattr(value, "signal", None)
        if isinstance(value, ProcessDone):
            status = 0
        elif sig is not None:
            status = -int(sig)
        else:
            status = getattr(value, "exitCode", None)
        self._owner._ended(status)


@implementer(IReadDescriptor)
class _PidWatch:
    """Calls ``on_exit`` when the process exits: its pidfd turns readable (a poll every
    half second where there are no pidfds)."""

    def __init__(self, reactor: Any, pid: int, on_exit: Callable[[], None]) -> None:
        self._reactor = reactor
        self._on_exit = on_exit
        self._fd: int | None = None
        self._poll: LoopingCall | None = None
        try:
            self._fd = os.pidfd_open(pid)
        except (OSError, AttributeError):
            self._poll = LoopingCall(on_exit)
            self._poll.clock = reactor
            self._poll.start(_POLL, now=False)
        else:
            reactor.addReader(self)

    def fileno(self) -> int:
        return self._fd if self._fd is not None else -1

    def doRead(self) -> None:
        self._on_exit()

    def connectionLost(self, reason: Failure) -> None:
        self.cancel()

    def logPrefix(self) -> str:
        return "mosquitto exit watch"

    def cancel(self) -> None:
        if self._fd is not None:
            self._reactor.removeReader(self)
            os.close(self._fd)
            self._fd = None
        if self._poll is not None and self._poll.running:
            self._poll.stop()
