"""The node spawner and reaper: a small process that starts the nodes and outlives a
killed daemon to end their process groups.

Why a process of its own: starting a node from the daemon costs its reactor a fork of a
large process, or (vfork) a wait until the child has exec'd, which on a busy machine
means waiting for a CPU: tens of milliseconds per node. This process is small and has no
reactor to hold up; the daemon only sends it a message (``python -I -S``, standard
library only, nothing from hadaemon: it starts in milliseconds).

The daemon starts it once, in a process group of its own (so killing the daemon's process
group spares it; terminal signals are ignored) but in the daemon's session (the nodes
share the daemon's scheduling autogroup, as when the daemon started them itself), with a
``SOCK_SEQPACKET`` socket as its stdin; the daemon holds the only other end. One JSON
object per packet.

Daemon to spawner:

- ``{"op": "spawn", "id", "argv", "env", "cwd", "gate", "parent_env"}`` with three
  file descriptors
  attached (``SCM_RIGHTS``): the node's stdout and stderr (pipes the daemon reads) and
  one more that becomes the node's fd 3 (the read end of a pipe the daemon writes the
  node's token into once it knows the pid; ``gate``: the node is not exec'd before that
  pipe reaches end-of-file, for clients that cannot read a token, whose identity is
  their pid; ``parent_env``: an environment variable to set to this process's pid).
  The node is forked and exec'd here: leader of its own process group, stdin
  ``/dev/null``, its parent-death signal armed (SIGKILL when this process dies), no other
  file descriptor.
- ``{"op": "signal", "pid", "sig"}``: signal the node's process group, if the node has
  not been reaped (a zombie keeps its pid, and so its group id, reserved: an unrelated
  process that reused the number is never hit).

Spawner to daemon: ``{"op": "spawned", "id", "pid"}`` at once after the fork;
``{"op": "failed", "pid", "error"}`` when the exec failed; ``{"op": "exited", "pid",
"code"}`` (a signal as its negative number) once the node exited, after whatever was
left in its process group was killed and the node reaped.

End-of-file from the daemon (a clean stop, or the daemon died, however it died): every
node group still there gets SIGKILL, and this process exits.
"""

import contextlib
import fcntl
import json
import os
import select
import signal
import socket
import sys
from typing import Any

_PR_SET_PDEATHSIG = 1
_MAX_PACKET = 1 << 22
_STAGE = 64  # descriptors are staged above this while they are moved into place
# Ignored here (terminal signals) or by Python (SIGPIPE, SIGXFSZ); a node starts with none.
_RESTORED = (signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGTSTP, signal.SIGPIPE,
             signal.SIGXFSZ)


def _prctl() -> Any:
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except Exception:
        return None


class Spawner:
    """Forks nodes, reaps them, and reports both on the daemon's socket."""

    def __init__(self, control: socket.socket) -> None:
        self.control = control
        self.children: dict[int, int | None] = {}  # pid -> exec error pipe (until exec)
        self.errors: dict[int, int] = {}  # exec error pipe -> pid
        self.prctl = _prctl()
        self.pid = os.getpid()
        self.poll = select.poll()
        self.wake_r, wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        self.poll.register(control.fileno(), select.POLLIN)
        self.poll.register(self.wake_r, select.POLLIN)

    def tell(self, message: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):  # the daemon is gone: end-of-file comes next
            self.control.send(json.dumps(message).encode())

    def run(self) -> None:
        control = self.control.fileno()
        while True:
            # (An event may be stale: its descriptor closed by an earlier one of the same
            # batch, its number maybe reused already; every read here is non-blocking.)
            for fd, _events in self.poll.poll():
                if fd == self.wake_r:
                    with contextlib.suppress(OSError):
                        while os.read(self.wake_r, 4096):
                            pass
                    self.reap()
                elif fd in self.errors:
                    self.exec_result(fd)
                elif fd == control and not self.request():
                    return

    def request(self) -> bool:
        try:
            data, fds, _flags, _addr = socket.recv_fds(self.control, _MAX_PACKET, 8,
                                                       socket.MSG_DONTWAIT)
        except (InterruptedError, BlockingIOError):
            return True
        except OSError:
            return False
        try:
            if not data:
                return False
            message = json.loads(data)
            if message["op"] == "spawn":
                self.spawn(message, fds)
            elif message["op"] == "signal":
                pid = message["pid"]
                if pid in self.children:
                    with contextlib.suppress(OSError):
                        os.killpg(pid, message["sig"])
        finally:
            for fd in fds:
                os.close(fd)
        return True

    def spawn(self, message: dict[str, Any], fds: list[int]) -> None:
        error_r, error_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            self.child(message, fds, error_w)
        os.close(error_w)
        os.set_blocking(error_r, False)
        self.children[pid] = error_r
        self.errors[error_r] = pid
        self.poll.register(error_r, select.POLLIN)
        self.tell({"op": "spawned", "id": message["id"], "pid": pid})

    def child(self, message: dict[str, Any], fds: list[int], error_w: int) -> None:
        # Between fork and exec: this process is single-threaded, anything may run.
        error = error_w
        try:
            os.setpgid(0, 0)
            if self.prctl is not None:
                self.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            if os.getppid() != self.pid:
                os._exit(1)  # the spawner died before the signal was armed
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            signal.set_wakeup_fd(-1)
            for sig in _RESTORED:
                signal.signal(sig, signal.SIG_DFL)
            null = os.open(os.devnull, os.O_RDONLY)
            staged = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, _STAGE + i)
                      for i, fd in enumerate([null, *fds[:3]])]
            moved = fcntl.fcntl(error_w, fcntl.F_DUPFD_CLOEXEC, _STAGE + len(staged))
            for target, fd in enumerate(staged):
                os.dup2(fd, target, inheritable=True)
            error = os.dup2(moved, len(staged), inheritable=False)
            os.closerange(error + 1, os.sysconf("SC_OPEN_MAX"))
            if message.get("gate"):
                while os.read(3, 4096):
                    pass
                os.close(3)
            env = message["env"]
            if message.get("parent_env"):
                env[message["parent_env"]] = str(self.pid)
            os.chdir(message["cwd"])
            os.execve(message["argv"][0], message["argv"], env)
        except BaseException as exc:  # told to the daemon, never raised
            with contextlib.suppress(BaseException):
                os.write(error, str(exc).encode())
        os._exit(127)

    def exec_result(self, fd: int) -> None:
        """The node's exec error pipe: end-of-file (exec'd) or what went wrong."""
        try:
            text = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            text = b""
        pid = self.errors.pop(fd)
        self.poll.unregister(fd)
        os.close(fd)
        if pid in self.children:
            self.children[pid] = None
        if text:
            self.tell({"op": "failed", "pid": pid, "error": text.decode("utf-8", "replace")})

    def reap(self) -> None:
        while True:
            try:
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return
            if info is None:
                return
            pid = info.si_pid
            error_fd = self.children.get(pid)
            if error_fd is not None:
                self.exec_result(error_fd)  # its exec error first: written before exiting
            with contextlib.suppress(OSError):  # before reaping: the group id is still ours
                os.killpg(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
            self.children.pop(pid, None)
            self.tell({"op": "exited", "pid": pid, "code": os.waitstatus_to_exitcode(status)})

    def end(self) -> None:
        for pid in self.children:
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)


def main() -> None:
    # Terminal signals are for the daemon; this one ends only at end-of-file.
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGTSTP):
        signal.signal(sig, signal.SIG_IGN)
    spawner = Spawner(socket.socket(fileno=0))
    try:
        spawner.run()
    finally:
        spawner.end()
    sys.exit(0)


if __name__ == "__main__":
    main()
