"""The daemon's side of the node spawner and reaper (see :mod:`hadaemon.nodes.reaper_process`).

Everything here runs on the reactor thread and never waits: a spawn is one packet sent
(queued while the socket is full), its pid and the node's exit come back as packets.
"""

from __future__ import annotations

import contextlib
import errno
import marshal
import os
import signal
import socket
import subprocess
import sys
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorFDSet
from twisted.logger import Logger

from hadaemon.backoff import Backoff
from hadaemon.nodes import reaper_process
from hadaemon.nodes.spawn import Descriptor, ExitWatcher

SCRIPT = os.path.abspath(reaper_process.__file__)
_MAX_PACKET = 65536
_STABLE_AFTER = 10.0  # seconds a spawner must run for its exit to count as not quick


class SpawnError(OSError):
    """A node could not be handed to the spawner (it is not running, or the request
    is too large)."""


@dataclass(frozen=True)
class Child:
    """What to call about one node process: its exec failed (the text), it exited (its
    exit status, a signal as its negative number; None: unknown, the spawner died)."""

    on_failed: Callable[[str], None]
    on_exit: Callable[[int | None], None]


_CMDLINE_ROOM = 4096  # bytes the zygote's arguments reserve for a forked node's cmdline


def zygote_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The zygote spawner's environment: the one nodes start with (the daemon's, stdio
    unbuffered as the supervisor makes it), without PYTHONPATH, which is each node's."""
    env = {k: v for k, v in environ.items() if k != "PYTHONPATH"}
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


class Reaper:
    """Starts node processes through the spawner process and reports their exits.

    ``zygote``: the spawner forks nodes from a preloaded interpreter (``[nodes] spawn =
    "fork"``), with hadaemon's node client (``client_dir``) imported when given.
    """

    def __init__(self, reactor: Any, log: Logger, *, zygote: bool = False,
                 client_dir: str = "") -> None:
        self._reactor = reactor
        self._log = log
        self._zygote = zygote
        self._client_dir = client_dir
        self.started = {"fork": 0, "exec": 0}
        """Nodes started so far, by how."""
        self._told: set[str] = set()
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._channel: Descriptor | None = None
        self._writing = False
        self._outgoing: deque[tuple[bytes, Sequence[int], int | None]] = deque()
        self._requests: dict[int, tuple[Deferred[int], Child]] = {}
        self._children: dict[int, Child] = {}
        self._next_id = 0
        self._stopping = False
        self._exited: Deferred[None] | None = None
        self._started_at = 0.0
        # Exits soon after a start: the next start waits longer (one that ran long is
        # replaced at once).
        self._backoff = Backoff(0.5, 30.0)
        self._restart: IDelayedCall | None = None

    @property
    def forks_without_client(self) -> bool:
        """The spawner forks nodes but did not import hadaemon's node client (all nodes
        were on the binary wire when it started)."""
        return self._zygote and not self._client_dir

    @property
    def pid(self) -> int | None:
        """The spawner's pid while it runs (None once it exited and was reaped)."""
        proc = self._proc
        return proc.pid if proc is not None and proc.returncode is None else None

    def start(self) -> None:
        self._restart = None
        self._started_at = self._reactor.seconds()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        if self._zygote:  # started as a node's interpreter is (see reaper_process)
            # (the blank: room for a forked node's command line, see reaper_process)
            argv = [sys.executable, SCRIPT, "--zygote", self._client_dir, " " * _CMDLINE_ROOM]
            env: dict[str, str] | None = zygote_environment(os.environ)
        else:
            argv, env = [sys.executable, "-I", "-S", SCRIPT], None
        try:
            self._proc = subprocess.Popen(
                argv,
                env=env,
                stdin=theirs.fileno(),
                stdout=subprocess.DEVNULL,
                close_fds=True,
                # A process group of its own, so that signalling the daemon's spares it;
                # the same session (its nodes share the daemon's scheduling autogroup).
                process_group=0,
            )
        finally:
            theirs.close()
        ours.setblocking(False)
        self._sock = ours
        self._channel = Descriptor(ours.fileno(), self._read, "node spawner", self._flush)
        self._reactor.addReader(self._channel)
        self._exited = Deferred()
        ExitWatcher(self._reactor, self._proc.pid, self._reap, "node spawner")
        self._flush()  # what waited for it

    # -- requests -------------------------------------------------------------------------

    def spawn(
        self, argv: Sequence[str], env: Mapping[str, str], cwd: str, fds: Sequence[int],
        child: Child, *, gate: bool = False, parent_env: str | None = None,
    ) -> Deferred[int]:
        """Start a node; fires with its pid. ``fds`` (closed here once sent) become the
        node's stdout, stderr and fd 3; ``gate``: the node is exec'd only once its fd 3
        reached end-of-file; ``parent_env``: a variable set to its parent's (the
        spawner's) pid in its environment. While a new spawner is about to start, the
        request waits for it."""
        if self._stopping or (self._sock is None and self._restart is None):
            for fd in fds:
                os.close(fd)
            return fail(SpawnError("the node spawner is not running"))
        self._next_id += 1
        request = {"op": "spawn", "id": self._next_id, "argv": list(argv), "env": dict(env),
                   "cwd": cwd, "gate": gate, "parent_env": parent_env}
        d: Deferred[int] = Deferred()
        self._requests[self._next_id] = (d, child)
        self._send(marshal.dumps(request), fds, self._next_id)
        return d

    def signal(self, pid: int, sig: int) -> None:
        """Signal a node's process group, if the node was not reaped yet."""
        if pid in self._children:
            self._send(marshal.dumps({"op": "signal", "pid": pid, "sig": int(sig)}), ())

    def _send(self, data: bytes, fds: Sequence[int], request: int | None = None) -> None:
        self._outgoing.append((data, fds, request))
        if not self._writing:
            self._flush()

    def _flush(self) -> None:
        sock = self._sock
        while self._outgoing and sock is not None:
            data, fds, request = self._outgoing[0]
            try:
                if fds:
                    socket.send_fds(sock, [data], list(fds))
                else:
                    sock.send(data)
            except BlockingIOError:
                if not self._writing and self._channel is not None:
                    self._writing = True
                    self._reactor.addWriter(self._channel)
                return
            except OSError as exc:
                if exc.errno != errno.EMSGSIZE:
                    return  # the spawner is gone: its exit is seen by the watcher
                self._outgoing.popleft()
                for fd in fds:
                    os.close(fd)
                if request is not None:  # e.g. an environment too large to send
                    d, _child = self._requests.pop(request)
                    d.errback(SpawnError(f"the start request is too large for the "
                                          f"spawner ({len(data)} bytes): {exc.strerror}"))
                continue
            self._outgoing.popleft()
            for fd in fds:
                os.close(fd)
        if self._writing and self._channel is not None:
            self._writing = False
            reactor_fds: IReactorFDSet = self._reactor
            reactor_fds.removeWriter(self._channel)

    # -- answers --------------------------------------------------------------------------

    def _read(self) -> None:
        sock = self._sock
        while sock is not None:
            try:
                data = sock.recv(_MAX_PACKET)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._close_channel()  # the spawner exited: the watcher reaps it
                return
            self._answer(marshal.loads(data))

    def _answer(self, answer: dict[str, Any]) -> None:
        op = answer.get("op")
        if op == "spawned":
            d, child = self._requests.pop(answer["id"])
            self._children[answer["pid"]] = child
            mode = answer.get("mode", "exec")
            self.started[mode] = self.started.get(mode, 0) + 1
            why = answer.get("why")
            if why and why not in self._told:  # (once per reason: restarts repeat it)
                self._told.add(why)
                self._log.info("node process {pid} is started by exec, not forked from "
                               "the spawner: {why}", pid=answer["pid"], why=why)
            d.callback(answer["pid"])
        elif op == "failed":
            known = self._children.get(answer["pid"])
            if known is not None:
                known.on_failed(str(answer["error"]))
        elif op == "exited":
            gone = self._children.pop(answer["pid"], None)
            if gone is not None:
                gone.on_exit(answer["code"])

    # -- the spawner's end ----------------------------------------------------------------

    def _close_channel(self) -> None:
        reactor_fds: IReactorFDSet = self._reactor
        if self._channel is not None:
            reactor_fds.removeReader(self._channel)
            if self._writing:
                reactor_fds.removeWriter(self._channel)
            self._channel = None
        self._writing = False
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        for _data, fds, _request in self._outgoing:
            for fd in fds:
                os.close(fd)
        self._outgoing.clear()

    def _reap(self) -> None:
        if self._proc is not None:
            self._proc.wait()
        self._read()  # what it said last (exits it reported just before it went)
        self._close_channel()
        requests, self._requests = self._requests, {}
        children, self._children = self._children, {}
        if self._stopping:
            if self._exited is not None and not self._exited.called:
                self._exited.callback(None)
            return
        code = self._proc.returncode if self._proc is not None else None
        if self._reactor.seconds() - self._started_at < _STABLE_AFTER:
            delay = self._backoff.next_delay()
        else:
            self._backoff.reset()
            delay = 0.0
        self._log.error("the node spawner exited unexpectedly (status {code}); its nodes "
                        "died with it: starting a new one in {delay:g} s", code=code,
                        delay=delay)
        if delay:
            self._restart = self._reactor.callLater(delay, self.start)
        else:
            self.start()
        for pid in children:
            # The nodes died with it (parent-death signal); what they spawned goes now.
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
        for d, _child in requests.values():
            d.errback(SpawnError("the node spawner exited before it started the node"))
        for child in children.values():
            child.on_exit(None)

    def stop(self) -> Deferred[None]:
        """Close the socket (the spawner ends what is left and exits); fires once it was
        reaped."""
        self._stopping = True
        if self._restart is not None and self._restart.active():
            self._restart.cancel()
        self._restart = None
        if self.pid is None or self._exited is None:  # (none running, or waiting to restart)
            return succeed(None)
        self._close_channel()
        return self._exited
