"""Plugins are plain Twisted services that get a context: the daemon's shared parts."""

from __future__ import annotations

import pathlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.logger import Logger

from hadaemon.aio import call_as_deferred
from hadaemon.bus import Bus, Event, Subscription
from hadaemon.config.schema import Section
from hadaemon.registry import Registry
from hadaemon.watchdog import Watchdog

if TYPE_CHECKING:
    from hadaemon.config import Config
    from hadaemon.store import Store


@dataclass
class PluginContext:
    """Everything a plugin may use; all of it is for the reactor thread only.

    ``store`` is the daemon's state store, shared: keep your keys under
    ``plugin/<name>/`` (see :meth:`key`). ``credentials`` is the separate 0600 store for
    secrets, never logged. ``config`` is the plugin's own validated section.
    """

    name: str
    reactor: Any
    bus: Bus
    registry: Registry
    store: Store
    credentials: Store
    config: Mapping[str, Any]
    daemon_config: Config
    log: Logger
    state_dir: pathlib.Path
    watchdog: Watchdog | None = None
    lookup: Callable[[str], Any] | None = None

    def plugin(self, name: str) -> Any | None:
        """Another running plugin's service by name (e.g. the shared ``mqtt`` connection).

        A plugin named in this plugin's ``requires`` (or ``wants``) has started before
        this one; for any other, wait for :meth:`on_started`.
        """
        return self.lookup(name) if self.lookup is not None else None

    def key(self, *parts: object) -> str:
        """A store key in this plugin's namespace: ``plugin/<name>/<part>/...``."""
        return "/".join(["plugin", self.name, *(str(p) for p in parts)])

    def on_started(self, callback: Callable[[], object]) -> Subscription:
        """Call ``callback`` once the daemon published its "started" event."""

        def fire(event: Event) -> object:
            subscription.cancel()
            return callback()

        subscription = self.bus.subscribe(
            "lifecycle/daemon/started", fire, name=f"plugin {self.name}: on_started"
        )
        return subscription


class Plugin(Service):
    """Base class for plugins: override ``start``/``stop`` (may be ``async def``).

    Class attributes: ``name`` (the config section and the name to enable it by),
    ``schema`` (that section's fields), ``description``, ``stop_timeout`` (seconds
    this plugin may take to stop; None for the daemon's default), ``requires`` (plugins
    it cannot work without: they must be enabled, and start before it and stop after
    it) and ``wants`` (plugins it uses when enabled: the same order, if so). See
    :mod:`hadaemon.plugin.order`.
    """

    name: str = ""
    schema: ClassVar[Section] = Section()
    # Optional: a classmethod check_config(section, config) -> list[str] that
    # ``hadaemon check`` calls for enabled plugins, for checks beyond the schema.
    # Optional: a classmethod requirements(section) -> tuple[str, ...] that replaces
    # ``requires`` when what a plugin needs depends on its config section.
    description: ClassVar[str] = ""
    stop_timeout: ClassVar[float | None] = None
    requires: ClassVar[tuple[str, ...]] = ()
    wants: ClassVar[tuple[str, ...]] = ()

    def __init__(self, context: PluginContext) -> None:
        self.context = context
        self.name = context.name

    @property
    def log(self) -> Logger:
        return self.context.log

    @property
    def config(self) -> Mapping[str, Any]:
        return self.context.config

    @property
    def bus(self) -> Bus:
        return self.context.bus

    @property
    def registry(self) -> Registry:
        return self.context.registry

    @property
    def reactor(self) -> Any:
        return self.context.reactor

    def startService(self) -> Deferred[Any]:
        Service.startService(self)
        return call_as_deferred(self.start)

    def stopService(self) -> Deferred[Any]:
        Service.stopService(self)
        return call_as_deferred(self.stop)

    def start(self) -> object:
        """Start working; return a Deferred or be ``async`` to make the daemon wait."""
        return None

    def stop(self) -> object:
        """Stop working; the daemon waits (within the stop budget) for what it returns."""
        return None


PluginFactory = Callable[[PluginContext], Any]
"""What a plugin entry point or directory module provides: usually a Plugin subclass;
any callable taking the context and returning an ``IService`` works."""
