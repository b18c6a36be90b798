"""The daemon's reloader: watched code, the re-read config, plugin restarts.

One per :class:`~hadaemon.daemon.Daemon`, started once the daemon has started. Every
reload (a burst of saved files, a config re-read, a retry) runs alone, in the order
asked: a config reload never meets a half-restarted plugin.

- Files: with ``[daemon].reload = "auto"``, the files plugins name
  (:class:`~hadaemon.reload.interfaces.WatchesFiles`) and the files of the plugins found
  in plugin directories are watched (:class:`~hadaemon.reload.watcher.FileWatcher`). A
  plugin's own files go to its ``files_changed``; a plugin file is imported afresh and,
  if it loads, its plugins restart, then those that require them. A file that
  does not load is reported with its file and line, and the running version stays.
- Config: :meth:`Reloader.reload_config` (SIGHUP, ``hadaemon reload``, ``POST
  /api/reload``) re-reads the file with the checks of ``hadaemon check``; a refused
  config changes nothing. Otherwise removed plugins stop, added ones start, and one
  whose section changed gets ``reconfigure`` (if it has one) or restarts, with those
  that require it; the others are not touched.
- A plugin that fails to start after a reload is tried again after
  ``[daemon].reload_retry_delay`` seconds, doubling up to ``reload_retry_delay_max``
  (:class:`hadaemon.backoff.Backoff`); the rest of the daemon runs on.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from twisted.internet import defer
from twisted.internet.defer import Deferred, DeferredLock
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.threads import deferToThreadPool

from hadaemon.aio import call_as_deferred
from hadaemon.backoff import Backoff
from hadaemon.bus import ErrorEvent, Level
from hadaemon.config import Config, ConfigErrors
from hadaemon.config.schema import Context
from hadaemon.logs import get_logger, set_levels
from hadaemon.plugin import Catalog, PluginInfo, plugin_file, reimport
from hadaemon.reload.changes import ConfigChanges, diff, with_dependents
from hadaemon.reload.errors import code_error, report_code_error
from hadaemon.reload.interfaces import Reconfigurable, RestartNeeded, WatchesFiles
from hadaemon.reload.watcher import FileWatcher
from hadaemon.usercode import failure_of

if TYPE_CHECKING:
    from hadaemon.daemon import Daemon

T = TypeVar("T")
SOURCE = "reload"


@dataclass
class ReloadResult:
    """What a config reload did, or why it refused (``applied`` False, ``errors``)."""

    applied: bool
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    reconfigured: list[str] = field(default_factory=list)
    restarted: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    needs_restart: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def summary(self) -> str:
        if not self.applied:
            return (f"config reload refused ({len(self.errors)} error(s)); the running "
                    "config stays")
        parts = [f"{what} {', '.join(names)}" for what, names in (
            ("added", self.added), ("removed", self.removed),
            ("reconfigured", self.reconfigured), ("restarted", self.restarted)) if names]
        text = "config reloaded: " + ("; ".join(parts) if parts else "nothing changed")
        if self.failed:
            text += "; failed: " + ", ".join(sorted(self.failed))
        return text


class Reloader:
    """Hot reload for one daemon (see the module docstring). Reactor thread only."""

    def __init__(self, daemon: Daemon, *, mode: str = "auto") -> None:
        self.daemon = daemon
        self.mode = mode
        self.log = get_logger("hadaemon.reload")
        self.watcher: FileWatcher | None = None
        self._lock = DeferredLock()
        self._running = False
        # watched file (absolute) -> {plugin name: the path as the plugin gave it}
        self._owners: dict[pathlib.Path, dict[str, pathlib.Path]] = {}
        self._code: dict[pathlib.Path, set[str]] = {}  # plugin file -> plugin names
        self._retries: dict[str, tuple[Backoff, IDelayedCall | None]] = {}
        self.reloads = 0  # config reloads applied (tests, status)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """The daemon started: watch files (if ``auto``)."""
        if self._running:
            return
        self._running = True
        self._apply_mode()

    async def stop(self, timeout: float) -> None:
        """No more reloads; wait (up to ``timeout``) for one under way."""
        self._running = False
        if self.watcher is not None:
            self.watcher.stop()
            self.watcher = None
        for _backoff, call in self._retries.values():
            if call is not None and call.active():
                call.cancel()
        self._retries.clear()
        if self._lock.locked:
            waiting = self._lock.acquire()
            waiting.addTimeout(timeout, self.daemon.reactor)
            try:
                await waiting
            except defer.TimeoutError:
                self.log.error("a reload did not finish within {timeout}s; stopping anyway",
                               timeout=timeout)
                return
            self._lock.release()

    def stopped(self) -> bool:
        """Not (or no longer) reloading: before the daemon started, once it stops."""
        return not self._running

    def _apply_mode(self) -> None:
        core = self.daemon.config.core
        if self.mode == "auto" and self.watcher is None:
            self.watcher = FileWatcher(
                self.daemon.reactor, self._files_changed, settle=core.reload_settle,
                poll_interval=core.reload_poll_interval, log=self.log)
            self.watcher.start()
            self.log.info("watching code for changes ({mode})", mode=self.watcher.mode)
        elif self.mode == "off" and self.watcher is not None:
            self.watcher.stop()
            self.watcher = None
            self.log.info("no longer watching code for changes")
        if self.watcher is not None:
            self.watcher.settle = core.reload_settle
            self.watcher.poll_interval = core.reload_poll_interval
        self.refresh()

    def refresh(self) -> None:
        """Ask the plugins again which files to watch."""
        self._owners.clear()
        self._code.clear()
        if self.watcher is None:
            return
        for name, service in self._services():
            if not isinstance(service, WatchesFiles):
                continue
            try:
                paths = list(service.watched_files())
            except Exception as exc:
                self.log.failure("plugin {plugin}: watched_files() failed",
                                 failure=failure_of(exc), plugin=name)
                continue
            for given in paths:
                absolute = pathlib.Path(os.path.abspath(given))
                self._owners.setdefault(absolute, {})[name] = pathlib.Path(given)
        catalog = self.daemon.catalog
        for name, info in catalog.plugins.items():
            file = plugin_file(info)
            if file is not None:
                self._code.setdefault(pathlib.Path(os.path.abspath(file)), set()).add(name)
        for problem in catalog.problems:  # plugin files that failed to import: fixed?
            origin = pathlib.Path(os.path.abspath(problem.origin))
            if problem.name and origin.suffix == ".py" and origin.is_file():
                self._code.setdefault(origin, set()).add(problem.name)
        self.watcher.watch([*self._owners, *self._code])

    def _services(self) -> list[tuple[str, Any]]:
        return [(name, service) for name, service in self.daemon.plugins
                if name not in self.daemon.failed and service.running]

    def _exclusively(self, work: Callable[[], Awaitable[T]]) -> Deferred[T]:
        async def run() -> T:
            return await work()

        return self._lock.run(lambda: Deferred.fromCoroutine(run()))

    # -- files -------------------------------------------------------------------------------

    def _files_changed(self, paths: frozenset[pathlib.Path]) -> None:
        self.log.info("changed: {files}", files=", ".join(sorted(str(p) for p in paths)))
        self._exclusively(lambda: self._apply_files(paths)).addErrback(
            lambda failure: self.log.failure("reloading changed files failed", failure))

    async def _apply_files(self, paths: frozenset[pathlib.Path]) -> None:
        if not self._running:
            return
        for path in sorted(paths):
            if path in self._code:
                await self._plugin_code_changed(path)
        by_plugin: dict[str, set[pathlib.Path]] = {}
        for path in paths:
            for name, given in self._owners.get(path, {}).items():
                by_plugin.setdefault(name, set()).add(given)
        for name, changed in by_plugin.items():
            service: Any = self.daemon.plugin(name)
            if not isinstance(service, WatchesFiles):
                continue  # restarted or gone meanwhile
            try:
                await call_as_deferred(service.files_changed, frozenset(changed))
            except Exception as exc:
                self._report(name, f"plugin {name}: reloading "
                             f"{', '.join(sorted(map(str, changed)))} failed", exc)
        self.refresh()

    async def _plugin_code_changed(self, path: pathlib.Path) -> None:
        daemon = self.daemon
        before = self._code.get(path, set())
        try:
            infos = reimport(path)
        except BaseException as exc:  # what the plugin file raised; a real ^C never comes here
            error = code_error(exc, path)
            for name in sorted(before) or [path.stem]:
                report_code_error(daemon.bus, self.log, f"plugin:{name}", error,
                                  f"plugin {name} not reloaded, the previous version "
                                  "keeps running")
            return
        problems = self._validate_sections(infos)
        if problems:
            for problem in problems:
                self.log.error("{problem}", problem=problem)
                daemon.bus.publish(ErrorEvent(SOURCE, problem, Level.ERROR, {"file": str(path)}))
            self.log.error("plugin file {path} not reloaded: its new schema refuses the "
                           "config; the previous version keeps running", path=str(path))
            return
        catalog = daemon.catalog
        names = {info.name for info in infos}
        for name in before - names:
            catalog.plugins.pop(name, None)
        catalog.problems[:] = [p for p in catalog.problems
                               if p.origin != str(path) and p.name not in names]
        for info in infos:
            catalog.plugins[info.name] = info
        enabled = daemon.config.core.plugins
        restart = [name for name in enabled if name in names | before]
        if not restart:
            self.log.info("plugin file {path} reloaded (none of its plugins is enabled)",
                          path=str(path))
            return
        self.log.info("plugin file {path} reloaded: restarting {plugins}", path=str(path),
                      plugins=", ".join(restart))
        await self._restart(restart)

    def _validate_sections(self, infos: Iterable[PluginInfo]) -> list[str]:
        # The new schema validates the section as written in the running config's file.
        daemon = self.daemon
        raw = daemon.config.raw
        ctx = Context(raw.source, raw.base_dir, raw.environ)
        sections = dict(daemon.config.sections)
        for info in infos:
            value = raw.data.get(info.name, {})
            if info.schema is None or not isinstance(value, dict) or (
                    info.name not in raw.data and info.name not in daemon.config.core.plugins):
                continue
            sections[info.name] = info.schema.validate(value, ctx, (info.name,))
        if ctx.errors:
            return [str(error) for error in ctx.errors]
        daemon.config = dataclasses.replace(daemon.config, sections=sections)
        return []

    # -- restarts ----------------------------------------------------------------------------

    async def _restart(self, names: Collection[str],
                       start_also: Collection[str] = ()) -> list[str]:
        """Restart ``names`` and what depends on them (stop in reverse start order,
        start in start order), start ``start_also``; returns those restarted."""
        daemon = self.daemon
        enabled = daemon.config.core.plugins
        everything = with_dependents(names, enabled, daemon.catalog, daemon.config.section)
        everything = [name for name in everything if name in enabled]
        for name in everything:
            self._cancel_retry(name)
        await daemon.stop_plugins(everything)
        await daemon.start_plugins([*everything, *start_also])
        self._after_start([*everything, *start_also])
        return everything

    def _after_start(self, names: Iterable[str]) -> None:
        for name in names:
            failed = self.daemon.failed.get(name)
            if failed is None:
                self._retries.pop(name, None)
            elif (not failed.startswith("not started:")
                  and name in self.daemon.catalog.plugins):
                # Its own start failed. (One not started for want of another restarts
                # when that one's retry succeeds: it depends on it. One whose code is
                # gone waits for its file to be saved again.)
                self._schedule_retry(name)

    def _schedule_retry(self, name: str) -> None:
        if not self._running or name not in self.daemon.config.core.plugins:
            return
        core = self.daemon.config.core
        backoff, call = self._retries.get(name, (None, None))
        if backoff is None:
            backoff = Backoff(core.reload_retry_delay, core.reload_retry_delay_max,
                              clock=self.daemon.reactor)
        if call is not None and call.active():
            return
        delay = backoff.next_delay()
        self.log.warn("plugin {plugin} failed to start ({error}); trying again in "
                      "{delay:.1f}s", plugin=name, error=self.daemon.failed.get(name, "?"),
                      delay=delay)
        call = self.daemon.reactor.callLater(delay, self._retry, name)
        self._retries[name] = (backoff, call)

    def _cancel_retry(self, name: str) -> None:
        _backoff, call = self._retries.get(name, (None, None))
        if call is not None and call.active():
            call.cancel()
        if name in self._retries:
            self._retries[name] = (self._retries[name][0], None)

    def _retry(self, name: str) -> None:
        backoff, _call = self._retries.get(name, (None, None))
        if backoff is not None:
            self._retries[name] = (backoff, None)

        async def retry() -> None:
            if self._running and name in self.daemon.failed:
                await self._restart([name])
                self.refresh()

        self._exclusively(retry).addErrback(
            lambda failure: self.log.failure("retrying plugin {plugin} failed", failure,
                                             plugin=name))

    # -- config ------------------------------------------------------------------------------

    def on_signal(self) -> None:
        """SIGHUP (handed over to the reactor thread): re-read the config."""
        self.log.info("received SIGHUP, re-reading the config")
        self.reload_config()

    def reload_config(self) -> Deferred[ReloadResult]:
        """Re-read and check the config file; apply it, or refuse it and keep the old."""
        return self._exclusively(self._reload_config)

    async def _reload_config(self) -> ReloadResult:
        daemon = self.daemon
        raw = daemon.config.raw
        if not self._running:
            result = ReloadResult(False, ["the daemon is not running (starting or stopping): "
                                          "nothing reloaded"])
            self._refused(result)
            return result
        if raw.path is None:
            result = ReloadResult(False, ["the config was not read from a file (it was "
                                          "passed as a mapping): there is nothing to re-read"])
            self._refused(result)
            return result
        from hadaemon.app import Prepared, prepare

        # The file as it was named (messages as `hadaemon check` with that name prints
        # them), unless the working directory changed since: then its absolute path.
        source = raw.source if pathlib.Path(raw.source).resolve() == raw.path else str(raw.path)

        def check() -> Prepared:
            return prepare(source, environ=raw.environ, base_dir=raw.base_dir, strict=True)

        try:
            prepared = await deferToThreadPool(daemon.reactor, daemon.reactor.getThreadPool(),
                                               check)
        except ConfigErrors as exc:
            result = ReloadResult(False, [str(error) for error in exc.errors])
            self._refused(result)
            return result
        if prepared.errors:
            result = ReloadResult(False, list(prepared.errors), list(prepared.warnings))
            self._refused(result)
            return result
        if self.stopped():  # it began to stop while the config was being checked
            return ReloadResult(False, ["the daemon is stopping"])
        return await self._apply_config(prepared.config, prepared.catalog, prepared.warnings)

    def _refused(self, result: ReloadResult) -> None:
        for error in result.errors:
            self.log.error("{error}", error=error)
        self.log.error("{summary}", summary=result.summary())
        self.daemon.bus.publish(ErrorEvent(SOURCE, result.summary(), Level.ERROR,
                                           {"errors": list(result.errors)}))

    async def _apply_config(self, new: Config, catalog: Catalog,
                            warnings: list[str]) -> ReloadResult:
        daemon = self.daemon
        old, old_catalog = daemon.config, daemon.catalog
        changes: ConfigChanges = diff(old, new, old_catalog, catalog)
        result = ReloadResult(True, [], list(warnings), added=list(changes.added),
                              removed=list(changes.removed),
                              needs_restart=list(changes.needs_restart))
        for warning in warnings:
            self.log.warn("{warning}", warning=warning)
        for name in changes.removed:
            self._cancel_retry(name)
            self._retries.pop(name, None)
        # Removed plugins stop while the old config (their sections) is still in force.
        await daemon.stop_plugins(changes.removed)
        daemon.config, daemon.catalog = new, catalog
        set_levels(new.core.log_level, new.core.log_levels)
        restart: list[str] = []
        for name in changes.changed:
            service = daemon.plugin(name)
            if service is None or not isinstance(service, Reconfigurable):
                restart.append(name)
                continue
            try:
                await call_as_deferred(service.reconfigure, new.section(name), new)
            except RestartNeeded as exc:
                self.log.info("plugin {plugin} restarts to apply its new section: {why}",
                              plugin=name, why=str(exc))
                restart.append(name)
            except Exception as exc:
                self._report(name, f"plugin {name}: reconfigure failed", exc)
                result.reconfigured.append(name)
            else:
                result.reconfigured.append(name)
            finally:
                _set_context(service, new.section(name), new)
        for name in changes.unchanged:
            service = daemon.plugin(name)
            if service is not None:
                _set_context(service, new.section(name), new)
        result.restarted = await self._restart(restart, start_also=changes.added)
        result.failed = {name: daemon.failed[name]
                         for name in [*result.restarted, *changes.added] if name in daemon.failed}
        for setting in changes.needs_restart:
            self.log.warn("{setting} changed: it takes effect when the daemon restarts",
                          setting=setting)
        self.mode = new.core.reload_mode(self.mode)
        self._apply_mode()
        self.reloads += 1
        self.log.info("{summary}", summary=result.summary())
        return result

    def _report(self, name: str, what: str, exc: BaseException) -> None:
        failure = failure_of(exc)
        self.log.failure("{what}", failure=failure, what=what)
        self.daemon.bus.publish(ErrorEvent(f"plugin:{name}", f"{what}: "
                                           f"{failure.getErrorMessage()}", Level.ERROR,
                                           {"traceback": failure.getTraceback()}))


def _set_context(service: Any, section: Any, config: Config) -> None:
    context = getattr(service, "context", None)
    if context is not None and hasattr(context, "config"):
        context.config = section
        context.daemon_config = config


__all__ = ["ReloadResult", "Reloader"]
