"""The handle synchronous programs use: blocking calls into the daemon, safe from any thread.

Every method may be called in any thread except where noted. Blocking methods raise the
exception the work raised, ``CallTimeout`` (the work is cancelled), ``Deadlock`` when
called on the reactor thread, ``Stopped`` after ``stop()`` and ``Forked`` in a forked child.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred

from hadaemon.bus import Address, Event
from hadaemon.embed.bridge import Bridge
from hadaemon.embed.errors import (
    AlreadyRunning,
    Deadlock,
    EmbedError,
    Forked,
    StartupFailed,
    Stopped,
)
from hadaemon.embed.runtime import PROCESS, Runtime, on_exit
from hadaemon.embed.subscriptions import EventIterator, EventSubscription, Overflow, closed_all
from hadaemon.logs import get_logger

if TYPE_CHECKING:
    from hadaemon.app import Prepared
    from hadaemon.daemon import Daemon

_log = get_logger("hadaemon.embed")
DEFAULT_TIMEOUT = 30.0


class Handle:
    """A running embedded daemon."""

    def __init__(self, runtime: Runtime, prepared: Prepared) -> None:
        assert runtime.bridge is not None
        self._runtime = runtime
        self._bridge: Bridge = runtime.bridge
        self._prepared = prepared
        self._daemon: Daemon | None = None
        self._state_lock = threading.Lock()
        self._stopped = False
        self._stop_done: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._subscriptions: list[EventSubscription] = []
        self.started: concurrent.futures.Future[None] = concurrent.futures.Future()
        self.default_timeout = DEFAULT_TIMEOUT

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def reactor(self) -> Any:
        """The reactor (use it on the reactor thread only)."""
        return self._runtime.reactor

    @property
    def daemon(self) -> Daemon:
        """The daemon service (reactor thread only: from other threads use the methods)."""
        if self._daemon is None:
            raise EmbedError("the daemon has not been created yet")
        return self._daemon

    @property
    def running(self) -> bool:
        return not self._stopped and not PROCESS.forked

    def _start_daemon(self) -> Deferred[None]:
        # Reactor thread.
        from hadaemon.daemon import Daemon

        daemon = Daemon(self._prepared.config, self._runtime.reactor,
                        catalog=self._prepared.catalog)
        self._daemon = daemon
        for warning in self._prepared.warnings:
            _log.warn("{warning}", warning=warning)
        daemon.startService()

        def started(_: object) -> None:
            self.started.set_result(None)

        def failed(failure: Any) -> None:
            self.started.set_exception(
                StartupFailed(f"hadaemon could not start: {failure.getErrorMessage()}")
            )

        daemon.started.addCallbacks(started, failed)
        return daemon.started

    def wait_started(self, timeout: float | None = None) -> None:
        """Block until the daemon's "started" event (or raise why it could not start)."""
        self._check()
        self.started.result(timeout)

    def stop(self, timeout: float = 60.0) -> None:
        """Stop the daemon (and the reactor thread, if hadaemon started it); idempotent.

        From any other thread it returns once everything has stopped (or raises
        ``EmbedError`` after ``timeout`` seconds), also when a stop is already under way.
        On the reactor thread it cannot wait for itself: it starts the stop and returns at
        once; the stop goes on in later reactor turns.
        """
        with self._state_lock:
            if PROCESS.forked:
                return
            first, self._stopped = not self._stopped, True
        if first:
            closed_all(self._subscriptions)
            if self._bridge.on_reactor_thread():
                work = self._bridge.run_now(self._stop_on_reactor)
            else:
                work = self._bridge.submit(self._stop_on_reactor)
            work.add_done_callback(self._stop_finished)
        if self._bridge.on_reactor_thread():
            return
        deadline = time.monotonic() + timeout
        try:
            self._stop_done.result(timeout)
        except concurrent.futures.TimeoutError:
            raise EmbedError(f"the daemon did not stop within {timeout}s") from None
        if self._runtime.owns_reactor and not self._runtime.join(
            max(deadline - time.monotonic(), 0.1)
        ):
            raise EmbedError(f"the reactor thread did not end within {timeout}s")

    def _stop_finished(self, work: concurrent.futures.Future[Any]) -> None:
        error = work.exception()
        if error is None:
            self._stop_done.set_result(None)
        else:
            self._stop_done.set_exception(error)

    def _stop_on_reactor(self) -> Deferred[None] | None:
        if self._daemon is None or not self._daemon.running:
            self._runtime.stop_reactor()
            return None
        stopping = self._daemon.stopService()

        def done(result: object) -> object:
            self._runtime.stop_reactor()
            return result

        return stopping.addBoth(done)

    def _check(self) -> None:
        if PROCESS.forked:
            raise Forked(
                "this process was forked after hadaemon.embed.start(): the reactor thread "
                "exists only in the parent. Use the handle in the parent, or start "
                "children with the 'spawn' method (multiprocessing.set_start_method)."
            )
        if self._stopped:
            raise Stopped("the embedded daemon was stopped; this handle cannot be used")

    # -- calls -----------------------------------------------------------------------------

    def call(self, fn: Callable[..., Any], *args: Any, timeout: float | None = None,
             **kwargs: Any) -> Any:
        """Run ``fn(*args, **kwargs)`` on the reactor thread and return its result.

        ``fn`` may be plain, return a Deferred, or be ``async def`` (an asyncio task that
        may await asyncio futures and Deferreds). Its exception is raised here. After
        ``timeout`` seconds (default: ``default_timeout``) the work is cancelled and
        ``CallTimeout`` raised. On the reactor thread: ``Deadlock``, at once.
        """
        self._check()
        return self._bridge.call(
            fn, *args, timeout=self.default_timeout if timeout is None else timeout, **kwargs
        )

    def submit(self, fn: Callable[..., Any], *args: Any,
               **kwargs: Any) -> concurrent.futures.Future[Any]:
        """Like ``call`` without waiting: a Future of the result (any thread)."""
        self._check()
        return self._bridge.submit(fn, *args, **kwargs)

    # -- the facade ------------------------------------------------------------------------

    def publish(self, event: Event, *, timeout: float | None = None) -> None:
        """Publish an event on the bus."""
        self.call(lambda: self.daemon.bus.publish(event), timeout=timeout)

    def send(self, address: str | Address, message: Any, *,
             timeout: float | None = None) -> Any:
        """Send to any bus address (``node:n1/0``, ``service:x_py/act``, ``device:5``) and
        return the destination's answer."""
        return self.call(lambda: self.daemon.bus.send(address, message), timeout=timeout)

    def post(self, address: str | Address, message: Any) -> None:
        """Send without waiting; failures are logged by the bus."""
        self._check()
        self._bridge.submit(lambda: self.daemon.bus.post(address, message))

    def get_value(self, peer_id: int, channel: int, name: str, *,
                  timeout: float | None = None) -> Any:
        """A device variable's current value (``hadaemon.registry.UNKNOWN`` if unreported)."""
        return self.call(lambda: self.daemon.registry.get_value(peer_id, channel, name),
                         timeout=timeout)

    def set_value(self, peer_id: int, channel: int, name: str, value: Any, *,
                  confirm: bool = False, timeout: float | None = None) -> None:
        """Write a device variable through its adapter (``confirm``: wait for the device)."""
        self.call(lambda: self.daemon.registry.set_value(peer_id, channel, name, value,
                                                         confirm=confirm), timeout=timeout)

    def put_values(self, peer_id: int, channel: int, values: Mapping[str, Any], *,
                   confirm: bool = False, timeout: float | None = None) -> None:
        """Write several variables of one channel at once."""
        self.call(lambda: self.daemon.registry.put_values(peer_id, channel, dict(values),
                                                          confirm=confirm), timeout=timeout)

    def devices(self, *, timeout: float | None = None) -> list[dict[str, Any]]:
        """A snapshot of every device: peer id, name, source, key, type, values per channel."""

        def snapshot() -> list[dict[str, Any]]:
            return [
                {
                    "peer_id": d.peer_id,
                    "name": d.name,
                    "source": d.source,
                    "key": d.key,
                    "type": d.type,
                    "values": d.values(),
                }
                for d in self.daemon.registry.devices()
            ]

        result: list[dict[str, Any]] = self.call(snapshot, timeout=timeout)
        return result

    def get_system_variable(self, name: str, *, timeout: float | None = None) -> Any:
        return self.call(lambda: self.daemon.registry.get_system_variable(name), timeout=timeout)

    def set_system_variable(self, name: str, value: Any, *,
                            timeout: float | None = None) -> None:
        self.call(lambda: self.daemon.registry.set_system_variable(name, value), timeout=timeout)

    def delete_system_variable(self, name: str, *, timeout: float | None = None) -> None:
        self.call(lambda: self.daemon.registry.delete_system_variable(name), timeout=timeout)

    def system_variables(self, *, timeout: float | None = None) -> dict[str, Any]:
        result: dict[str, Any] = self.call(self._system_variables, timeout=timeout)
        return result

    def _system_variables(self) -> dict[str, Any]:
        return self.daemon.registry.system_variables()

    def subscribe(self, pattern: str, callback: Callable[[Event], object], *,
                  queue_size: int = 1000, overflow: Overflow = "drop_oldest") -> EventSubscription:
        """Call ``callback(event)`` in a worker thread for each matching bus event, in order.

        The queue between the reactor and the worker holds ``queue_size`` events; see
        ``hadaemon.embed.subscriptions`` for the overflow policy.
        """
        holder: list[Any] = []
        sub = EventSubscription(pattern, callback, queue_size=queue_size, overflow=overflow,
                                unsubscribe=lambda: self._unsubscribe(holder))
        self._attach(sub, pattern, holder)
        return sub

    def events(self, pattern: str = "#", *, queue_size: int = 1000,
               overflow: Overflow = "drop_oldest", timeout: float | None = None) -> EventIterator:
        """A blocking iterator over matching bus events (ends when closed or stopped)."""
        holder: list[Any] = []
        it = EventIterator(pattern, queue_size=queue_size, overflow=overflow,
                           unsubscribe=lambda: self._unsubscribe(holder), timeout=timeout)
        self._attach(it, pattern, holder)
        return it

    def _attach(self, sub: EventSubscription, pattern: str, holder: list[Any]) -> None:
        if self._bridge.on_reactor_thread():
            holder.append(self.daemon.bus.subscribe(pattern, sub.deliver,
                                                    name=f"embed subscriber {pattern}"))
        else:
            holder.append(self.call(lambda: self.daemon.bus.subscribe(
                pattern, sub.deliver, name=f"embed subscriber {pattern}")))
        self._subscriptions.append(sub)

    def _unsubscribe(self, holder: list[Any]) -> None:
        if not holder or self._stopped or PROCESS.forked:
            return
        bus_sub = holder.pop()
        if self._bridge.on_reactor_thread():
            bus_sub.cancel()
        else:
            self._bridge.submit(bus_sub.cancel)

    # -- context manager -------------------------------------------------------------------

    def __enter__(self) -> Handle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start(
    config: Any = "etc/hadaemon.toml",
    *,
    base_dir: Any = None,
    environ: Mapping[str, str] | None = None,
    timeout: float = 60.0,
    log: str = "stdlib",
) -> Handle:
    """Start hadaemon inside this program and return its handle once it has started.

    ``config`` is a config file path, a mapping of sections, or a validated
    ``hadaemon.config.Config``. The reactor runs in a background thread (or, if an
    asyncio reactor already runs in this program, hadaemon attaches to it). Called on
    the reactor thread itself, ``start`` does not block: use ``handle.started``.
    ``log="stdlib"`` sends the daemon's log to the ``logging`` module; ``"none"`` leaves
    Twisted's logging as the program set it up.
    """
    from hadaemon.app import Prepared, prepare
    from hadaemon.config import Config
    from hadaemon.plugin import discover_for

    if PROCESS.forked:
        raise Forked("hadaemon.embed.start() in a process forked after start()")
    _refuse_a_second_daemon()
    if isinstance(config, Config):
        prepared = Prepared(config, discover_for(config.core))
    else:
        prepared = prepare(config, base_dir=base_dir, environ=environ, strict=False)
    prepared.raise_for_errors()
    if log == "stdlib":
        from hadaemon.embed import logbridge

        logbridge.install(logbridge.StdlibBridge())
    elif log != "none":
        raise ValueError(f"log must be 'stdlib' or 'none', not {log!r}")
    with PROCESS.lock:
        _refuse_a_second_daemon()  # again: another thread may have started one meanwhile
        runtime = Runtime.acquire(timeout)
        handle = Handle(runtime, prepared)
        PROCESS.handle = handle
        if runtime.owns_reactor:
            on_exit(lambda: handle.stop(prepared.config.core.stop_timeout + 5))
    assert runtime.bridge is not None
    runtime.bridge.submit(handle._start_daemon)
    if runtime.bridge.on_reactor_thread():
        return handle
    try:
        handle.started.result(timeout)
    except BaseException as exc:
        with contextlib.suppress(Exception):
            handle.stop(timeout=10)
        if isinstance(exc, concurrent.futures.TimeoutError):
            raise StartupFailed(f"hadaemon did not start within {timeout}s") from None
        raise
    return handle


def _refuse_a_second_daemon() -> None:
    # One daemon per process: a second one would share the reactor unawares (another
    # state directory) or fail on the state store's lock (the same one).
    from hadaemon.daemon import running_daemons

    previous: Handle | None = PROCESS.handle
    if previous is not None and previous.running:
        raise AlreadyRunning(
            "a hadaemon daemon already runs in this process (started by "
            "hadaemon.embed.start(), state directory "
            f"{previous._prepared.config.core.state_dir}): one daemon per process; use "
            "its handle, or stop() it before starting another"
        )
    running = running_daemons()
    if running:
        raise AlreadyRunning(
            "a hadaemon daemon already runs in this process (state directory "
            f"{running[0].config.core.state_dir}): one daemon per process; reach it "
            "through its bus and plugins instead of starting another"
        )


__all__ = ["DEFAULT_TIMEOUT", "Deadlock", "Handle", "start"]
