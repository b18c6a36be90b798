"""Where the reactor of an embedded daemon runs: a thread of ours, or a reactor already running.

Process-wide facts handled here, measured in docs/embedding.md:
- The asyncio reactor is installed in the reactor thread, whose new event loop becomes
  that thread's current loop; the caller's own loop is left alone.
- No signal handlers in a background thread: the host keeps its SIGINT/SIGTERM behaviour.
  Without a SIGCHLD handler exited children are reaped by a periodic sweep.
- At interpreter exit (including a main thread that simply ends, or ends with an
  uncaught KeyboardInterrupt) ``threading._register_atexit`` hooks run before threads are
  joined: the daemon is stopped cleanly there. ``atexit`` would run too late.
- A fork after start leaves the child without a reactor thread: handles there refuse
  to work (``Forked``) instead of hanging.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

from hadaemon.embed.bridge import Bridge
from hadaemon.embed.errors import EmbedError, NotRestartable, WrongReactor
from hadaemon.logs import get_logger
from hadaemon.usercode import guard_reactor

_log = get_logger("hadaemon.embed")


class _Process:
    """What this process has done with the reactor so far (one reactor per process)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.forked = False
        self.reactor_finished = False
        self.exit_hooks: list[Callable[[], None]] = []
        self.exit_hook_installed = False
        # The handle of the last start(): set at once (under the lock), before its daemon
        # exists, so that two start() calls racing each other are told apart too.
        self.handle: Any = None


PROCESS = _Process()


def _after_fork_in_child() -> None:
    PROCESS.forked = True


os.register_at_fork(after_in_child=_after_fork_in_child)


def _run_exit_hooks() -> None:
    if PROCESS.forked:
        return
    for hook in list(PROCESS.exit_hooks):
        try:
            hook()
        except Exception as exc:  # the host is exiting: report, never raise
            print(f"hadaemon: stopping at exit failed: {exc}", file=sys.stderr)


def on_exit(hook: Callable[[], None]) -> None:
    """Run ``hook`` when the interpreter shuts down, before threads are joined."""
    with PROCESS.lock:
        PROCESS.exit_hooks.append(hook)
        if not PROCESS.exit_hook_installed:
            register = getattr(threading, "_register_atexit", None)
            if register is None:  # pragma: no cover - CPython has had it since 3.9
                import atexit

                atexit.register(_run_exit_hooks)
            else:
                register(_run_exit_hooks)
            PROCESS.exit_hook_installed = True


class Runtime:
    """The reactor an embedded daemon uses, and how to reach it from other threads."""

    def __init__(self) -> None:
        self.reactor: Any = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: threading.Thread | None = None
        self.owns_reactor = False
        self.bridge: Bridge | None = None
        self._installed = threading.Event()
        self._error: BaseException | None = None

    @classmethod
    def acquire(cls, timeout: float = 30.0) -> Runtime:
        """Attach to a running asyncio reactor, or start one in a new thread."""
        runtime = cls()
        existing = sys.modules.get("twisted.internet.reactor")
        if existing is not None:
            from twisted.internet.asyncioreactor import AsyncioSelectorReactor

            if not isinstance(existing, AsyncioSelectorReactor):
                raise WrongReactor(
                    f"{type(existing).__module__}.{type(existing).__name__} is installed in "
                    "this process, but hadaemon runs on Twisted's asyncio reactor (asyncio "
                    "services and Twisted code share its loop). Install it first: call "
                    "hadaemon.reactor.install_asyncio_reactor() (or "
                    "twisted.internet.asyncioreactor.install()) before anything imports "
                    "twisted.internet.reactor, or let hadaemon.embed.start() do it."
                )
            runtime.reactor = existing
            runtime.loop = existing._asyncioEventloop
            if existing.running:
                from twisted.python import threadable

                runtime.bridge = Bridge(runtime.loop, int(threadable.ioThread or 0))
                return runtime
            if existing._startedBefore:
                raise NotRestartable(
                    "the reactor of this process already ran and stopped; Twisted cannot "
                    "restart it, so hadaemon cannot start again in this process"
                )
        if PROCESS.reactor_finished:
            raise NotRestartable(
                "hadaemon was stopped in this process and Twisted's reactor cannot be "
                "restarted; start a new process to run it again"
            )
        runtime._start_thread(timeout)
        return runtime

    def _start_thread(self, timeout: float) -> None:
        self.owns_reactor = True
        self.thread = threading.Thread(target=self._run, name="hadaemon-reactor", daemon=True)
        self.thread.start()
        if not self._installed.wait(timeout):
            raise EmbedError(f"the reactor thread did not start within {timeout}s")
        if self._error is not None:
            raise EmbedError(f"the reactor thread failed: {self._error}") from self._error

    def _run(self) -> None:
        try:
            if self.reactor is None:
                from hadaemon.reactor import install_asyncio_reactor

                self.reactor = install_asyncio_reactor()  # new loop, current in this thread
                self.loop = self.reactor._asyncioEventloop
            else:
                asyncio.set_event_loop(self.loop)
            assert self.loop is not None
            guard_reactor(self.reactor)  # our loop: user code's escapes must not end it
            self.bridge = Bridge(self.loop, threading.get_ident())
            self.reactor.callWhenRunning(self._reap_children_periodically)
        except BaseException as exc:
            self._error = exc
            self._installed.set()
            return
        self._installed.set()
        try:
            self.reactor.run(installSignalHandlers=False)
        except BaseException:
            _log.failure("the reactor thread ended with an error")
        finally:
            PROCESS.reactor_finished = True

    def _reap_children_periodically(self) -> None:
        # No SIGCHLD handler in a background thread: children spawned with
        # reactor.spawnProcess would never be reaped without this sweep.
        from twisted.internet.process import reapAllProcesses
        from twisted.internet.task import LoopingCall

        sweep = LoopingCall(reapAllProcesses)
        sweep.clock = self.reactor
        sweep.start(0.5, now=False)

    def stop_reactor(self) -> None:
        """Stop the reactor we own (reactor thread only)."""
        if self.owns_reactor and self.reactor.running:
            self.reactor.stop()

    def join(self, timeout: float) -> bool:
        """Wait for the reactor thread to end; False if it is still running."""
        if self.thread is None or self.thread is threading.current_thread():
            return True
        self.thread.join(timeout)
        return not self.thread.is_alive()
