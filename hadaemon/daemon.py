"""The daemon: the core parts, the plugins, and their lifecycle.

Start: once the reactor runs (asyncio calls need the running loop), open the stores,
start the registry, then start the enabled plugins: each after the plugins it declares it
needs (``requires``, ``wants``: :mod:`hadaemon.plugin.order`) have settled, the others in
config order without waiting for one another; once every start has settled, publish
``lifecycle/daemon/started``. A plugin whose requirement is missing, failed or circular
does not start, and is reported with the reason.

A daemon that owns its process tells systemd (``Type=notify``, :mod:`hadaemon.systemd`):
``READY=1`` with the started event, ``WATCHDOG=1`` from the reactor while it runs,
``STOPPING=1`` when the stop begins.

Stop: publish ``lifecycle/daemon/stopping``, stop the plugins one at a time in reverse
start order, each within its own timeout and all within the stop budget (a failing or
hanging one is reported and skipped), then flush the registry and the stores.

Reload (:mod:`hadaemon.reload`, docs/reload.md): once started, the daemon's
:class:`~hadaemon.reload.Reloader` watches code files (``[daemon].reload``) and re-reads
the config on SIGHUP (where the daemon owns the process, from the main thread) or
``hadaemon reload``; it restarts plugins through :meth:`Daemon.stop_plugins` and
:meth:`Daemon.start_plugins`, which keep the start order's rules.
"""

from __future__ import annotations

import contextlib
import faulthandler
import os
import signal
import threading
import time
from collections.abc import Collection
from typing import Any

from twisted.application.service import IService, Service
from twisted.internet import defer
from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure

from hadaemon.aio import call_as_deferred
from hadaemon.bus import Bus, ErrorEvent, Level, Lifecycle
from hadaemon.config import Config
from hadaemon.logs import get_logger, set_levels
from hadaemon.plugin import Catalog, Needs, PluginContext, discover_for, plan
from hadaemon.registry import Registry
from hadaemon.reload import Reloader
from hadaemon.store import Store
from hadaemon.systemd import SystemdNotifier
from hadaemon.usercode import failure_of, guard_reactor
from hadaemon.watchdog import Watchdog

DAEMON = "daemon"
_FLUSH_RESERVE = 1.0  # seconds of the stop budget kept for flushing the stores
PID_FILE = "hadaemon.pid"  # in the state directory, while a daemon owning its process runs


class StartupError(Exception):
    """The daemon could not start its core (the stores); plugins never started."""


_running: set[Daemon] = set()
_running_lock = threading.Lock()


def running_daemons() -> list[Daemon]:
    """The daemons started and not yet stopped in this process (any thread may ask).

    Embedding refuses to start a second one: two daemons on one reactor would share it
    unawares, and two on one state directory would fight over its lock.
    """
    with _running_lock:
        return list(_running)


class Daemon(Service):
    """The whole daemon as one Twisted service (twistd, ``hadaemon run`` and embedding)."""

    def __init__(
        self,
        config: Config,
        reactor: Any,
        *,
        catalog: Catalog | None = None,
        owns_process: bool = False,
        log: Logger | None = None,
        reload_default: str = "auto",
    ) -> None:
        self.config = config
        self.reactor = reactor
        self.name = "hadaemon"
        core = config.core
        set_levels(core.log_level, core.log_levels)
        self.log = log or get_logger("hadaemon.daemon")
        self.catalog = catalog if catalog is not None else discover_for(core)
        # A daemon that owns its process (twistd, hadaemon run) stops the reactor when it
        # cannot start, and ends the process if the stop budget is blown; an embedded
        # one never does either to its host program.
        self.owns_process = owns_process
        # Read (and removed from the environment, so children never see it) at once.
        self.systemd = SystemdNotifier(reactor) if owns_process else None
        self.watchdog = (
            Watchdog(reactor, threshold=core.watchdog_threshold) if core.watchdog_enabled else None
        )
        self.bus = Bus(reactor, watchdog=self.watchdog)
        state_dir = core.state_dir
        self.store = Store(
            state_dir / "state.db",
            reactor=reactor,
            fsync_interval=core.fsync_interval,
            compact_min_bytes=core.compact_min_bytes,
        )
        self.credentials = Store(
            state_dir / "credentials.db",
            reactor=reactor,
            secret=True,
            fsync_interval=core.fsync_interval,
        )
        self.registry = Registry(reactor, self.bus, self.store)
        self.plugins: list[tuple[str, IService]] = []
        self.failed: dict[str, str] = {}
        self.started: Deferred[None] = Deferred()
        self.startup_error: BaseException | None = None
        self._start_call: IDelayedCall | None = None
        self._opening: Deferred[None] | None = None
        self._core_started = False
        self._stopping: Deferred[None] | None = None
        self._pid_file: str | None = None
        self._previous_sighup: list[Any] = []  # the handler SIGHUP had, while ours is set
        # [daemon].reload where the config sets it, else the entry point's default
        # (twistd: off; hadaemon run and embedding: auto).
        self.reloader = Reloader(self, mode=core.reload_mode(reload_default))

    # -- start -----------------------------------------------------------------------

    def startService(self) -> None:
        Service.startService(self)
        with _running_lock:
            _running.add(self)
        if self.owns_process and not getattr(self.reactor, "running", True):
            # hadaemon runs this loop (hadaemon run, twistd): what user code lets escape
            # from a callback of its own must not stop it.
            guard_reactor(self.reactor)
        if self.owns_process:
            # `kill -USR2 <pid>` writes every thread's stack to stderr: where a stuck
            # daemon is stuck, even when its reactor cannot run a line of Python.
            # File descriptor 2 itself: twistd replaces sys.stderr by a logging file.
            faulthandler.register(signal.SIGUSR2, file=2, all_threads=True)
            self._install_sighup()
        # startService runs before the asyncio loop does (under twistd too): do the
        # real work in the first reactor turn, where asyncio calls work.
        self.reactor.callWhenRunning(self._schedule_start)

    def _schedule_start(self) -> None:
        if self.running and self._start_call is None and not self._core_started:
            self._start_call = self.reactor.callLater(0, self._start)

    def _install_sighup(self) -> None:
        # SIGHUP re-reads the config (hadaemon reload without the web plugin). Signal
        # handlers can only be set from the main thread; the handler only hands over.
        if threading.current_thread() is not threading.main_thread():
            return

        def on_sighup(_signum: int, _frame: object) -> None:
            self.reactor.callFromThread(self.reloader.on_signal)

        self._previous_sighup = [signal.signal(signal.SIGHUP, on_sighup)]

    def plugin(self, name: str) -> IService | None:
        """The running plugin service called ``name`` (None if absent or failed)."""
        if name in self.failed:
            return None
        return dict(self.plugins).get(name)

    def _start(self) -> None:
        self._start_call = None
        self.bus.bind_thread()
        if self.systemd is not None:
            self.systemd.status("starting")
            self.systemd.start_watchdog()
        if self.watchdog is not None:
            self.watchdog.start()
            self.watchdog.listeners.append(self._on_block)
        self._opening = Deferred.fromCoroutine(self._open_and_start())

    def _open_stores(self) -> None:
        # In a thread: loading a large store, or repairing a damaged one (which fsyncs),
        # must not block the reactor.
        self.config.core.state_dir.mkdir(parents=True, exist_ok=True)
        self.store.open()
        self.credentials.open()

    async def _open_and_start(self) -> None:
        try:
            await deferToThreadPool(self.reactor, self.reactor.getThreadPool(),
                                    self._open_stores)
            self.registry.start()
        except Exception as exc:
            self.startup_error = StartupError(f"cannot open the state store: {exc}")
            self.log.critical(
                "hadaemon cannot start: {error}", error=str(self.startup_error)
            )
            self.bus.publish(Lifecycle(DAEMON, Lifecycle.FAILED, {"error": str(exc)}))
            if self.systemd is not None:
                self.systemd.status(f"cannot start: {self.startup_error}")
            self.started.errback(self.startup_error)
            if self.owns_process and self.reactor.running:
                self.reactor.stop()
            return
        self._core_started = True
        if self._stopping is not None:
            # Stopped while the stores were opening: no plugin starts; _stop closes them.
            self.started.errback(StartupError("the daemon was stopped while starting"))
            return
        if self.owns_process:
            self._write_pid_file()
        for warning in [*self.store.load_warnings, *self.credentials.load_warnings]:
            self.bus.publish(ErrorEvent("store", warning, Level.WARNING))
        enabled = self.config.core.plugins
        factories = {name: info.factory for name, info in self.catalog.plugins.items()}
        order = plan(enabled, factories, self.config.section)
        for name, reason in order.refused.items():
            self._plugin_failed(name, f"not started: {reason}")
        if order.order != [name for name in enabled if name not in order.refused]:
            self.log.info("starting plugins in the order they need: {order}",
                          order=", ".join(order.order))
        settled: dict[str, Deferred[None]] = {}
        for name in order.order:
            settled[name] = self._start_after(name, order.needs.get(name, Needs()), settled)
        DeferredList(list(settled.values())).addCallback(self._all_started)

    def _write_pid_file(self) -> None:
        # How `hadaemon reload` finds this daemon to send it SIGHUP: written while the
        # store's lock is held, so a pid file beside a locked store is this process's.
        path = self.config.core.state_dir / PID_FILE
        temporary = path.with_name(f".{PID_FILE}.{os.getpid()}")
        try:
            # The pid, then the config file it runs with (what SIGHUP re-reads).
            temporary.write_text(f"{os.getpid()}\n{self.config.raw.path or ''}\n")
            os.replace(temporary, path)
        except OSError as exc:
            self.log.warn("cannot write {path}: {error} (hadaemon reload cannot find this "
                          "daemon without the web plugin)", path=str(path), error=str(exc))
            return
        self._pid_file = str(path)

    def _remove_pid_file(self) -> None:
        if self._pid_file is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._pid_file)
            self._pid_file = None

    def _start_after(self, name: str, needs: Needs,
                     settled: dict[str, Deferred[None]]) -> Deferred[None]:
        # Independent plugins start at once, without waiting for one another; a plugin
        # that needs others starts once their starts have settled (in the same turn when
        # they start synchronously), and not at all if one it requires failed.
        before = [settled[other] for other in (*needs.requires, *needs.wants)
                  if other in settled]

        def ready(_: object) -> Deferred[None]:
            if self._stopping is not None:
                return defer.succeed(None)
            failed = next((other for other in needs.requires if other in self.failed), None)
            if failed is not None:
                self._plugin_failed(name, f"not started: it requires {failed!r}, which "
                                    f"failed ({self.failed[failed]})")
                return defer.succeed(None)
            return self._start_plugin(name)

        if not before:
            return ready(None)
        after: Deferred[None] = DeferredList(before).addCallback(ready)
        return after

    # -- restarts (hadaemon.reload) -----------------------------------------------------

    async def stop_plugins(self, names: Collection[str]) -> None:
        """Stop the plugins ``names`` (running or failed) in reverse start order, each
        within its stop timeout, and forget them; the others keep running."""
        for name, service in reversed(list(self.plugins)):
            if name not in names:
                continue
            declared = getattr(service, "stop_timeout", None)
            limit = (declared if isinstance(declared, int | float) and declared
                     else self.config.core.service_stop_timeout)
            await self._stop_plugin(name, service, limit)
            self.plugins.remove((name, service))
        for name in names:
            self.failed.pop(name, None)

    def start_plugins(self, names: Collection[str]) -> Deferred[None]:
        """Start the plugins ``names`` (not running now) as at start-up: each after what
        it needs, with the current config and catalog; fires once all have settled.
        Failures are in :attr:`failed`, as at start-up."""
        factories = {name: info.factory for name, info in self.catalog.plugins.items()}
        order = plan(self.config.core.plugins, factories, self.config.section)
        for name, reason in order.refused.items():
            if name in names:
                self._plugin_failed(name, f"not started: {reason}")
        settled: dict[str, Deferred[None]] = {}
        for name in order.order:
            if name in names:
                settled[name] = self._start_after(name, order.needs.get(name, Needs()),
                                                  settled)

        def in_start_order(_: object) -> None:
            # Restarted plugins were appended: put them back where the start order has
            # them, so the daemon's stop still stops each before what it needs.
            place = {name: index for index, name in enumerate(order.order)}
            self.plugins.sort(key=lambda item: place.get(item[0], len(place)))

        done: Deferred[None] = DeferredList(list(settled.values())).addCallback(
            in_start_order)
        return done

    def _start_plugin(self, name: str) -> Deferred[None]:
        info = self.catalog.plugins.get(name)
        if info is None:
            problems = self.catalog.problems_for(name)
            if problems:
                for problem in problems:
                    self._plugin_failed(name, problem.message, problem.traceback)
            else:
                known = ", ".join(sorted(self.catalog.plugins)) or "none"
                self._plugin_failed(name, f"no such plugin (available: {known})")
            return defer.succeed(None)
        state_dir = self.config.core.state_dir / "plugins" / name
        context = PluginContext(
            name=name,
            reactor=self.reactor,
            bus=self.bus,
            registry=self.registry,
            store=self.store,
            credentials=self.credentials,
            config=self.config.section(name),
            daemon_config=self.config,
            log=get_logger(f"hadaemon.plugin.{name}"),
            state_dir=state_dir,
            watchdog=self.watchdog,
            lookup=self.plugin,
        )
        component = f"plugin {name}"
        try:
            service = self._track(component, info.factory, context)
            IService(service)
        except BaseException as exc:
            failure = failure_of(exc)
            error = failure.value
            self._plugin_failed(name, f"failed to create: {type(error).__name__}: {error}",
                                failure.getTraceback())
            return defer.succeed(None)
        self.plugins.append((name, service))
        service.parent = self
        started = self._track(component, call_as_deferred, service.startService)

        def failed(failure: Failure) -> None:
            self._plugin_failed(
                name, f"failed to start: {failure.getErrorMessage()}", failure.getTraceback()
            )

        result: Deferred[None] = started.addCallbacks(lambda _: None, failed)
        return result

    def _track(self, component: str, fn: Any, *args: Any) -> Any:
        if self.watchdog is not None:
            return self.watchdog.track(component, fn, *args)
        return fn(*args)

    def _plugin_failed(self, name: str, message: str, tb: str = "") -> None:
        self.failed[name] = message
        self.log.error(
            "plugin {plugin} {message}{tb}",
            plugin=name,
            message=message,
            tb=("\n" + tb) if tb else "",
        )
        self.bus.publish(
            ErrorEvent(f"plugin:{name}", message, Level.ERROR, {"traceback": tb})
        )

    def _all_started(self, _: object) -> None:
        if self._stopping is not None:
            return
        self.reloader.start()
        running = [name for name, _s in self.plugins if name not in self.failed]
        self.log.info(
            "hadaemon started: {count} plugin(s) running ({names}){failed}",
            count=len(running),
            names=", ".join(running) or "none",
            failed=(f"; failed: {', '.join(sorted(self.failed))}" if self.failed else ""),
        )
        self.bus.publish(
            Lifecycle(DAEMON, Lifecycle.STARTED, {"plugins": running, "failed": dict(self.failed)})
        )
        if self.systemd is not None:
            failed = f"; failed: {', '.join(sorted(self.failed))}" if self.failed else ""
            self.systemd.ready(f"running {len(running)} plugin(s){failed}")
        if not self.started.called:
            self.started.callback(None)

    def _on_block(self, report: Any) -> None:
        self.bus.publish(
            ErrorEvent(
                "watchdog",
                f"{report.component or 'an unnamed callback'} blocked the reactor for "
                f"{report.seconds:.2f}s",
                Level.WARNING,
                {"component": report.component, "seconds": report.seconds},
            )
        )

    # -- stop ------------------------------------------------------------------------

    def stopService(self) -> Deferred[None]:
        if self._stopping is None:
            Service.stopService(self)
            if self.systemd is not None:
                self.systemd.stopping()
            self._stopping = Deferred.fromCoroutine(self._stop())
        return self._stopping

    async def _stop(self) -> None:
        try:
            await self._stop_everything()
        finally:
            with _running_lock:
                _running.discard(self)

    async def _stop_everything(self) -> None:
        budget = self.config.core.stop_timeout
        deadline = self.reactor.seconds() + budget
        if self.owns_process:
            _arm_hard_exit(budget + 5.0, self.log)
        if self._start_call is not None and self._start_call.active():
            self._start_call.cancel()
            self._start_call = None
        if self._opening is not None and not self._opening.called:
            await self._opening  # never fails: its errors are reported inside
        if self._previous_sighup and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGHUP, self._previous_sighup.pop())
        # A reload under way finishes first (within a service's stop timeout).
        await self.reloader.stop(self.config.core.service_stop_timeout)
        if self._core_started:
            self.log.info("hadaemon stopping (budget {budget}s)", budget=budget)
            self.bus.publish(Lifecycle(DAEMON, Lifecycle.STOPPING))
        for name, service in reversed(self.plugins):
            remaining = deadline - self.reactor.seconds() - _FLUSH_RESERVE
            declared = getattr(service, "stop_timeout", None)
            limit = min(
                declared if isinstance(declared, int | float) and declared
                else self.config.core.service_stop_timeout,
                max(remaining, 0.1),
            )
            await self._stop_plugin(name, service, limit)
        self.plugins.clear()
        if self._core_started:
            try:
                self.registry.stop()
            except Exception:
                self.log.failure("flushing the registry failed")
            for store in (self.store, self.credentials):
                try:
                    await store.stopService()
                except Exception:
                    self.log.failure("closing {path} failed", path=str(store.path))
            self._remove_pid_file()
            self.bus.publish(Lifecycle(DAEMON, Lifecycle.STOPPED))
            self.log.info("hadaemon stopped")
        if self.watchdog is not None:
            self.watchdog.stop()
        if self.systemd is not None:
            # Pings went on while the plugins stopped: a stop that blocks the reactor
            # stops them too, and systemd then ends it (WatchdogSec).
            self.systemd.close()

    async def _stop_plugin(self, name: str, service: IService, limit: float) -> None:
        if not service.running:
            return
        stopping = self._track(f"plugin {name}", call_as_deferred, service.stopService)
        stopping.addTimeout(limit, self.reactor)
        try:
            await stopping
        except defer.TimeoutError:
            self.log.error(
                "plugin {plugin} did not stop within {limit:.1f}s; going on without it",
                plugin=name,
                limit=limit,
            )
        except BaseException as exc:
            self.log.failure("plugin {plugin} failed to stop", failure=failure_of(exc),
                             plugin=name)


def _arm_hard_exit(after: float, log: Logger) -> None:
    # Last resort when user code blocks the reactor during shutdown: the process must
    # still end. Only for processes the daemon owns (never when embedded in a program).
    def expire() -> None:
        time.sleep(after)
        log.critical("stop budget exceeded by more than 5s; exiting now")
        os._exit(1)

    threading.Thread(target=expire, name="hadaemon-hard-exit", daemon=True).start()

