"""What a re-read config changes: plugins added, removed, whose section changed, and
core settings that only a restart applies. Plain functions over two configs; no I/O."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from hadaemon.config import Config
from hadaemon.plugin import Catalog, needs_of

# Core settings the running daemon takes over as they are: read where they are used
# ([daemon].stop_timeout at the stop), applied by the reload itself ([log] levels,
# [daemon].reload*), or plugins' business ([daemon].plugins, plugin_dirs).
_LIVE = {
    ("daemon", "plugins"), ("daemon", "plugin_dirs"), ("daemon", "stop_timeout"),
    ("daemon", "service_stop_timeout"), ("daemon", "reload"), ("daemon", "reload_settle"),
    ("daemon", "reload_poll_interval"), ("daemon", "reload_retry_delay"),
    ("daemon", "reload_retry_delay_max"), ("log", "level"), ("log", "levels"),
}
CORE = ("daemon", "log", "watchdog", "store")


@dataclass
class ConfigChanges:
    """Plugins by what happens to them, in the new config's order (removed: the old's)."""

    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    needs_restart: list[str] = field(default_factory=list)  # "[section].key" of the core


def diff(old: Config, new: Config, old_catalog: Catalog, new_catalog: Catalog) -> ConfigChanges:
    """Compare the running config with the new one, plugin by plugin."""
    changes = ConfigChanges()
    before, after = old.core.plugins, new.core.plugins
    changes.removed = [name for name in before if name not in after]
    for name in after:
        if name not in before:
            changes.added.append(name)
        elif (old.section(name) != new.section(name)
              or _factory(old_catalog, name) is not _factory(new_catalog, name)):
            changes.changed.append(name)
        else:
            changes.unchanged.append(name)
    for section in CORE:
        was, now = old.section(section), new.section(section)
        for key in sorted(set(was) | set(now)):
            if (section, key) not in _LIVE and was.get(key) != now.get(key):
                changes.needs_restart.append(f"[{section}].{key}")
    return changes


def _factory(catalog: Catalog, name: str) -> Any:
    info = catalog.plugins.get(name)
    return info.factory if info is not None else None


def with_dependents(names: Collection[str], enabled: Sequence[str], catalog: Catalog,
                    section: Any) -> list[str]:
    """``names`` and every enabled plugin that requires one of them, directly or not, in
    ``enabled``'s order: what must restart when ``names`` restart (a plugin that
    requires another holds on to the instance it was given at its start; one that only
    wants another looks it up when it uses it, and is left alone)."""
    chosen = set(names)
    needs: dict[str, tuple[str, ...]] = {}
    for name in enabled:
        info = catalog.plugins.get(name)
        if info is None:
            continue
        try:
            declared = needs_of(name, info.factory, section(name))
        except ValueError:
            continue
        needs[name] = declared.requires
    grown = True
    while grown:
        grown = False
        for name, before in needs.items():
            if name not in chosen and chosen.intersection(before):
                chosen.add(name)
                grown = True
    return [name for name in enabled if name in chosen] + sorted(chosen - set(enabled))


__all__ = ["ConfigChanges", "diff", "with_dependents"]
