"""Node processes: start, watch, restart with backoff, stop (an explicit state machine).

::

    STOPPED --start--> STARTING --answered ping--> RUNNING
       ^                  |  \\                       |
       |                  |   `---- exited ----------+--> BACKOFF --delay--> STARTING
       |                  v                                  (crash loop: flagged)
       +--- exited --- STOPPING <--stop (SIGTERM; SIGKILL after the grace period)

- A node that exits unexpectedly is restarted after a delay that doubles with every
  quick exit, up to a cap; running ``stable_after`` seconds starts it over. Exiting
  ``crash_loop_restarts`` times within ``crash_loop_window`` marks it crash-looping
  (log, status, lifecycle event) while it keeps being retried at the capped delay.
  Other nodes are never touched.
- Nodes are started, signalled and reaped by the spawner process
  (:mod:`hadaemon.nodes.reaper`): the reactor never forks. When a node's process exits,
  whatever is left in its process group is killed before the process is reaped; its
  token is revoked, so nothing can act as it any more.
- Every spawn gets a fresh token, handed over on the node's fd 3 once its pid is known
  here (see :mod:`hadaemon.nodes.auth`).

Reactor thread only.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import signal
from collections import deque
from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any

from twisted.internet.defer import Deferred, DeferredList, succeed
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure

from hadaemon.nodes.auth import Tokens
from hadaemon.nodes.client import CLIENT_DIR
from hadaemon.nodes.client._homegear_rpc import (
    ENV_CALL_TIMEOUT,
    ENV_DAEMON_PID,
    ENV_NODE_ID,
    ENV_TOKEN_FD,
    TOKEN_FD,
)
from hadaemon.nodes.flows import WIRE_BINRPC, resolve_interpreter
from hadaemon.nodes.reaper import Child, Reaper
from hadaemon.nodes.runtime import NodeRuntime
from hadaemon.nodes.settings import NodesSettings
from hadaemon.nodes.spawn import LineReader, reserve_descriptors


class ProcessState(Enum):
    STOPPED = "stopped"
    STARTING = "starting"
    RUNNING = "running"
    BACKOFF = "backoff"
    STOPPING = "stopping"


StateListener = Callable[[NodeRuntime, str, dict[str, Any]], None]
"""``listener(runtime, event, details)``: "spawned", "started", "exited", "crash_loop",
"recovered", "stopped"."""


class NodeProcess:
    """The process side of one node (see the module docstring)."""

    def __init__(self, supervisor: Supervisor, runtime: NodeRuntime) -> None:
        self.supervisor = supervisor
        self.runtime = runtime
        self.state = ProcessState.STOPPED
        self.pid: int | None = None
        self.pgid: int | None = None
        self._spawning = False  # asked the spawner, no pid yet
        self._gate: int | None = None  # write end of the node's fd 3 until it has its pid
        self._token: str | None = None
        self.started_at = 0.0
        self.spawned_at: float | None = None
        self.ready_after: float | None = None  # seconds from spawn to answering ping
        self.exits: deque[float] = deque()
        self.backoff = supervisor.policy.restart_backoff()  # quick exits in a row
        self.crash_loop = False
        self.restarts = 0
        self.last_exit: int | None = None
        self._restart_call: IDelayedCall | None = None
        self._stable_call: IDelayedCall | None = None
        self._readers: list[LineReader] = []
        self._stopped: list[Deferred[None]] = []

    @property
    def id(self) -> str:
        return self.runtime.id

    def _set(self, state: ProcessState) -> None:
        self.state = state
        self.runtime.process = state.value

    # -- start --------------------------------------------------------------------------

    def start(self) -> None:
        if self.state not in (ProcessState.STOPPED, ProcessState.BACKOFF):
            return
        self._restart_call = None
        sup = self.supervisor
        spec = self.runtime.spec
        interpreter = resolve_interpreter(spec.interpreter or sup.interpreter, sup.base_dir)
        env = dict(os.environ)
        env.update(spec.env)
        env.setdefault("PYTHONUNBUFFERED", "1")  # print() lines reach the log at once
        binary = spec.wire == WIRE_BINRPC
        if not binary:
            # hadaemon's client first on the path; it reads the token from its fd 3 and
            # proves the node with it from this very process (see hadaemon.nodes.auth).
            existing = env.get("PYTHONPATH")
            env["PYTHONPATH"] = CLIENT_DIR + (os.pathsep + existing if existing else "")
            env[ENV_TOKEN_FD] = str(TOKEN_FD)
            env[ENV_NODE_ID] = spec.id
            env[ENV_CALL_TIMEOUT] = repr(sup.policy.call_timeout)
        # (Homegear's binary wire: the node imports whatever homegear module its Python
        # has, the real one; it is known by its pid, and gets nothing of hadaemon's.)
        self._set(ProcessState.STARTING)
        self.started_at = sup.reactor.seconds()
        self.ready_after = None
        if interpreter is None:
            self._not_started(f"interpreter {spec.interpreter or sup.interpreter!r} not found")
            return
        # The node's stdout and stderr, and its fd 3: the token (hadaemon's client) or a
        # gate that holds the exec (the binary wire), written and closed once the pid is
        # known here, so a node can never prove itself before the daemon knows its pid.
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        gate_r, self._gate = os.pipe()
        self._readers = [
            LineReader(sup.reactor, out_r, self._stdout, f"node {spec.id} stdout"),
            LineReader(sup.reactor, err_r, self._stderr, f"node {spec.id} stderr"),
        ]
        self._token = None if binary else sup.tokens.issue(spec.id)
        self._spawning = True
        argv = [interpreter, str(spec.file), sup.socket_path, spec.id]
        sup.reaper.spawn(
            argv, env, str(spec.file.parent), (out_w, err_w, gate_r),
            Child(self._exec_failed, self._exited), gate=binary,
            # hadaemon's client checks that its parent, the spawner, is still there.
            parent_env=None if binary else ENV_DAEMON_PID,
        ).addCallbacks(self._spawned, self._spawn_failed)

    def _spawned(self, pid: int) -> None:
        sup = self.supervisor
        self._spawning = False
        self.pid = self.pgid = pid  # the leader of its own group
        self.runtime.pid = pid
        self._open_gate()
        self._stable_call = sup.reactor.callLater(sup.policy.stable_after, self._stable)
        self.runtime.log.info("node {node} started: pid {pid}", node=self.id, pid=pid)
        sup.notify(self.runtime, "spawned", {"pid": pid})
        if self.state is ProcessState.STOPPING:  # stopped while it was being spawned
            sup.reaper.signal(pid, signal.SIGTERM)

    def _open_gate(self) -> None:
        gate, self._gate = self._gate, None
        token, self._token = self._token, None
        if gate is None:
            return
        # (A pipe takes far more than a token: never blocks. A node that is already gone,
        # e.g. a syntax error, closed its end: its exit is on its way.)
        with contextlib.suppress(BrokenPipeError):
            if token is not None:
                os.write(gate, token.encode())
        os.close(gate)

    def _spawn_failed(self, failure: Failure) -> None:
        self._spawning = False
        self._drop_gate()
        self._not_started(failure.getErrorMessage())

    def _drop_gate(self) -> None:
        gate, self._gate, self._token = self._gate, None, None
        if gate is not None:
            os.close(gate)

    def _not_started(self, error: str) -> None:
        self.supervisor.tokens.revoke(self.id)
        self.runtime.log.error("cannot start node {node}: {error}", node=self.id, error=error)
        self._close_readers()
        if self._finish_stop(None):
            return
        self._unexpected_exit(None)

    def _exec_failed(self, error: str) -> None:
        self.runtime.log.error("cannot start node {node}: {error}", node=self.id, error=error)

    def _stdout(self, line: str) -> None:
        self.runtime.log.info("{line}", line=line, node=self.id, stream="stdout")

    def _stderr(self, line: str) -> None:
        self.runtime.log.error("{line}", line=line, node=self.id, stream="stderr")

    def ready(self) -> None:
        """The process answered ping."""
        if self.state is ProcessState.STARTING:
            self._set(ProcessState.RUNNING)
            self.ready_after = self.supervisor.reactor.seconds() - self.started_at
            self.supervisor.notify(self.runtime, "started", {"pid": self.runtime.pid})

    def _stable(self) -> None:
        self._stable_call = None
        self.backoff.reset()
        if self.crash_loop:
            self.crash_loop = False
            self.runtime.log.info("node {node} runs again after a crash loop", node=self.id)
            self.supervisor.notify(self.runtime, "recovered", {})

    # -- exit ---------------------------------------------------------------------------

    def _exited(self, code: int | None) -> None:
        # The spawner killed whatever the node left in its group before reaping it.
        sup = self.supervisor
        self._drop_gate()
        self._close_readers()
        self.pid = self.pgid = None
        self.runtime.pid = None
        self.last_exit = code
        sup.tokens.revoke(self.id)
        sup.disconnect(self.runtime)
        if self._stable_call is not None and self._stable_call.active():
            self._stable_call.cancel()
        self._stable_call = None
        if self._finish_stop(code):
            return
        self._unexpected_exit(code)

    def _close_readers(self) -> None:
        for reader in self._readers:
            reader.close()
        self._readers = []

    def _finish_stop(self, code: int | None) -> bool:
        """If the node was being stopped: it is now; tell whoever waits."""
        if self.state is not ProcessState.STOPPING:
            return False
        self._set(ProcessState.STOPPED)
        self.runtime.log.info("node {node} stopped ({how})", node=self.id,
                              how=describe_exit(code))
        self.supervisor.notify(self.runtime, "stopped", {"code": code})
        stopped, self._stopped = self._stopped, []
        for d in stopped:
            d.callback(None)
        return True

    def _unexpected_exit(self, code: int | None) -> None:
        sup = self.supervisor
        policy = sup.policy
        now = sup.reactor.seconds()
        self.exits.append(now)
        while self.exits and now - self.exits[0] > policy.crash_loop_window:
            self.exits.popleft()
        delay = self.backoff.next_delay()
        entering = not self.crash_loop and len(self.exits) >= policy.crash_loop_restarts
        if entering:
            self.crash_loop = True
        self._set(ProcessState.BACKOFF)
        self.restarts += 1
        details = {"code": code, "restart_in": delay, "crash_loop": self.crash_loop,
                   "exits": len(self.exits)}
        self.runtime.log.error(
            "node {node} exited unexpectedly ({how}); restarting in {delay:.2f} s{loop}",
            node=self.id, how=describe_exit(code), delay=delay,
            loop=" (crash loop)" if self.crash_loop else "",
        )
        sup.notify(self.runtime, "exited", details)
        if entering:
            self.runtime.log.critical(
                "node {node} is crash-looping: {count} exits within {window:g} s; it is "
                "retried at most every {cap:g} s", node=self.id, count=len(self.exits),
                window=policy.crash_loop_window, cap=policy.restart_delay_max,
            )
            sup.notify(self.runtime, "crash_loop", details)
        self._restart_call = sup.reactor.callLater(delay, self.start)

    # -- stop ---------------------------------------------------------------------------

    def terminate(self) -> Deferred[None]:
        """SIGTERM to the node's group; fires once the node exited (see :meth:`kill`)."""
        if self._restart_call is not None and self._restart_call.active():
            self._restart_call.cancel()
        self._restart_call = None
        if self.pid is None and not self._spawning:
            self._set(ProcessState.STOPPED)
            return succeed(None)
        self._set(ProcessState.STOPPING)
        if self.pid is not None:  # (still being spawned: signalled once it is)
            self.supervisor.reaper.signal(self.pid, signal.SIGTERM)
        d: Deferred[None] = Deferred()
        self._stopped.append(d)
        return d

    def kill(self) -> None:
        """SIGKILL to the node's group (after the grace period)."""
        if self.pid is not None:
            self.runtime.log.warn("node {node} did not stop within the grace period; "
                                  "killing it", node=self.id)
            self.supervisor.reaper.signal(self.pid, signal.SIGKILL)


def describe_exit(code: int | None) -> str:
    if code is None:
        return "not started"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


class Supervisor:
    """All node processes (reactor thread only)."""

    def __init__(
        self,
        reactor: Any,
        runtimes: Mapping[str, NodeRuntime],
        tokens: Tokens,
        reaper: Reaper,
        policy: NodesSettings,
        socket_path: str,
        interpreter: str,
        base_dir: pathlib.Path,
        listener: StateListener,
        disconnect: Callable[[NodeRuntime], None],
    ) -> None:
        self.reactor = reactor
        self.tokens = tokens
        self.reaper = reaper
        self.policy = policy
        self.socket_path = socket_path
        self.interpreter = interpreter
        self.base_dir = base_dir
        self._listener = listener
        self.disconnect = disconnect
        self.processes: dict[str, NodeProcess] = {
            node_id: NodeProcess(self, runtime) for node_id, runtime in runtimes.items()
        }
        self._pending: deque[NodeProcess] = deque()
        self._spawn_call: IDelayedCall | None = None
        self._table_grown = False

    def notify(self, runtime: NodeRuntime, event: str, details: dict[str, Any]) -> None:
        self._listener(runtime, event, details)

    def start_all(self) -> None:
        """Start every node, one per reactor turn (each is a packet to the spawner)."""
        self._pending.extend(self.processes.values())
        # Each node holds about three descriptors here (stdout, stderr, its socket), four
        # more while it is being started. A thread grows the table for them first (the
        # growth waits for the kernel, see reserve_descriptors): after the first node,
        # the others start once it did.
        self._table_grown = False
        grown = deferToThreadPool(self.reactor, self.reactor.getThreadPool(),
                                  reserve_descriptors, 4 * len(self.processes) + 64)
        grown.addBoth(self._grown)
        self._spawn_next()

    def _grown(self, _: object) -> None:
        self._table_grown = True  # (or it failed: then only a stall is not saved)
        if self._pending and self._spawn_call is None:
            self._spawn_call = self.reactor.callLater(0, self._spawn_next)

    def _spawn_next(self) -> None:
        self._spawn_call = None
        if self._pending:
            self._pending.popleft().start()
        if self._pending and self._table_grown:
            self._spawn_call = self.reactor.callLater(0, self._spawn_next)

    def node_ready(self, node_id: str) -> None:
        process = self.processes.get(node_id)
        if process is not None:
            process.ready()

    def restart(self, node_id: str) -> Deferred[None]:
        """Stop one node (SIGTERM, SIGKILL after the grace period) and start it again at
        once, its backoff reset; fires once it was started again. KeyError: no such node."""
        process = self.processes[node_id]
        stopped = process.terminate()
        timer = self.reactor.callLater(self.policy.grace, process.kill)

        def again(_: object) -> None:
            if timer.active():
                timer.cancel()
            process.backoff.reset()
            process.start()

        return stopped.addCallback(again)

    def add(self, runtime: NodeRuntime) -> None:
        """A node added by a reload: started at once."""
        process = self.processes[runtime.id] = NodeProcess(self, runtime)
        process.start()

    def remove(self, node_id: str) -> Deferred[None]:
        """A node removed by a reload: stopped (SIGKILL after the grace period) and
        forgotten; fires once it exited."""
        process = self.processes.pop(node_id)
        with contextlib.suppress(ValueError):
            self._pending.remove(process)
        stopped = process.terminate()
        timer = self.reactor.callLater(self.policy.grace, process.kill)

        def gone(result: object) -> object:
            if timer.active():
                timer.cancel()
            self.tokens.revoke(node_id)
            return result

        return stopped.addBoth(gone)

    async def stop_all(self) -> None:
        """SIGTERM every node, SIGKILL those still there after the grace period."""
        self._pending.clear()
        if self._spawn_call is not None and self._spawn_call.active():
            self._spawn_call.cancel()
        self._spawn_call = None
        everyone = DeferredList([p.terminate() for p in self.processes.values()])
        if self.policy.grace > 0 and not everyone.called:
            waited: Deferred[None] = Deferred()

            def over(result: object = None) -> object:
                if timer.active():
                    timer.cancel()
                if not waited.called:
                    waited.callback(None)
                return result

            timer = self.reactor.callLater(self.policy.grace, over)
            everyone.addBoth(over)
            await waited
        for process in self.processes.values():
            if process.state is ProcessState.STOPPING:
                process.kill()
        await everyone
