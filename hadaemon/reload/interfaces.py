"""What a plugin implements to take part in hot reload (docs/reload.md).

The reload core (:mod:`hadaemon.reload`) owns the file watcher, coalesces bursts of
saves, re-reads and checks the config, and calls these methods on the running plugin
services that have them (found by ``isinstance`` against the runtime-checkable
protocols, so a plugin needs no base class). All calls are on the reactor thread; each
may return a value, a Deferred or a coroutine, and the core waits for it before it
calls the same plugin again (calls to one plugin never overlap).
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from hadaemon.config import Config


class RestartNeeded(Exception):
    """Raised by ``reconfigure``: this change cannot be applied in place; the core
    restarts the plugin with the new section instead (the message says why, logged)."""


@runtime_checkable
class WatchesFiles(Protocol):
    """A plugin whose code lives in files it wants watched (nodes, services, automations)."""

    def watched_files(self) -> Iterable[pathlib.Path]:
        """Absolute paths of the files to watch (they need not exist yet: creating one
        counts as a change). Asked again after the plugin started, after every
        ``files_changed`` and every ``reconfigure``, so the set may change."""

    def files_changed(self, paths: frozenset[pathlib.Path]) -> object:
        """Some of the watched files changed (written, created, removed, renamed onto),
        after a burst of saves settled (``[daemon].reload_settle``). ``paths`` are
        among those :meth:`watched_files` returned, as returned.

        Apply what can be applied; report code that does not load with
        :func:`hadaemon.reload.errors.report_code_error` (file and line) and keep the
        old version running. What this raises is reported by the core as an error of
        this plugin's reload; the plugin keeps running."""


@runtime_checkable
class Reconfigurable(Protocol):
    """A plugin that applies a changed config section without a restart."""

    def reconfigure(self, section: Mapping[str, Any], config: Config) -> object:
        """Apply ``section``, this plugin's new validated section (``config`` the whole
        new config, already checked as ``hadaemon check`` does). Called only when the
        section differs from the running one. Raise :class:`RestartNeeded` to be
        restarted with it instead; anything else raised is reported and the plugin
        keeps running. After the call the core sets ``context.config`` and
        ``context.daemon_config`` to the new ones (whatever the outcome)."""


__all__ = ["Reconfigurable", "RestartNeeded", "WatchesFiles"]
