"""Finding plugins: modules in the configured directories and ``hadaemon.plugins`` entry points.

Discovery imports plugin code (it has to, to read the schemas) but starts nothing. A plugin
that fails to import is a :class:`PluginProblem` with its name and traceback, never an
exception that stops the daemon or the other plugins.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import pathlib
import sys
import threading
import traceback
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hadaemon.config.core import CoreSettings
from hadaemon.config.schema import Section
from hadaemon.plugin.base import Plugin, PluginFactory
from hadaemon.sourceloader import fresh_spec
from hadaemon.usercode import pass_real_interrupt

ENTRY_POINT_GROUP = "hadaemon.plugins"


@dataclass(frozen=True)
class PluginInfo:
    """A plugin that can be enabled by ``name``."""

    name: str
    factory: PluginFactory
    schema: Section | None
    origin: str
    description: str = ""


@dataclass(frozen=True)
class PluginProblem:
    """A plugin (or plugin file) that could not be loaded; ``name`` when it is known."""

    name: str | None
    origin: str
    message: str
    traceback: str = ""

    def __str__(self) -> str:
        who = f"plugin {self.name!r}" if self.name else "plugin file"
        return f"{who} ({self.origin}): {self.message}"


@dataclass
class Catalog:
    """The plugins found, and what went wrong while looking."""

    plugins: dict[str, PluginInfo] = field(default_factory=dict)
    problems: list[PluginProblem] = field(default_factory=list)

    def schemas(self) -> dict[str, Section | None]:
        """Section schemas by plugin name (None for plugins that failed to load)."""
        out: dict[str, Section | None] = {p.name: None for p in self.problems if p.name}
        out.update({name: info.schema for name, info in self.plugins.items()})
        return out

    def problems_for(self, name: str) -> list[PluginProblem]:
        return [p for p in self.problems if p.name == name]

    def _add(self, info: PluginInfo) -> None:
        existing = self.plugins.get(info.name)
        if existing is not None:
            self.problems.append(
                PluginProblem(
                    info.name,
                    info.origin,
                    f"the name {info.name!r} is also used by {existing.origin}; "
                    f"keeping that one",
                )
            )
            return
        self.plugins[info.name] = info


def discover(
    plugin_dirs: Iterable[pathlib.Path], *, entry_points: bool = True, missing_ok: bool = False
) -> Catalog:
    """Plugins from directories (first) and installed entry points (any thread)."""
    catalog = Catalog()
    # One scan at a time: a plugin file's module is in sys.modules while it executes, so
    # a second thread's scan would take the half-imported module for the plugin.
    with _SCANNING:
        for directory in plugin_dirs:
            if missing_ok and not pathlib.Path(directory).exists():
                continue
            _scan_directory(pathlib.Path(directory), catalog)
        if entry_points:
            _scan_entry_points(catalog)
    return catalog


_SCANNING = threading.RLock()


def discover_for(core: CoreSettings) -> Catalog:
    """The plugins a config can enable (its directories, then entry points)."""
    return discover(core.plugin_dirs, missing_ok=not core.plugin_dirs_explicit)


def _scan_directory(directory: pathlib.Path, catalog: Catalog) -> None:
    if not directory.is_dir():
        catalog.problems.append(
            PluginProblem(None, str(directory), "plugin directory does not exist")
        )
        return
    package = _directory_package(directory)
    for path in sorted(directory.glob("*.py")):
        if path.name.startswith("_"):
            continue
        module_name = f"{package.__name__}.{path.stem}"
        try:
            module = sys.modules.get(module_name) or _import_file(module_name, path)
        except BaseException as exc:
            pass_real_interrupt(exc)  # anything else the plugin raised is its problem
            catalog.problems.append(
                PluginProblem(
                    _guess_name(path),
                    str(path),
                    f"failed to import: {type(exc).__name__}: {exc}",
                    traceback.format_exc(),
                )
            )
            continue
        infos = _plugins_in(module, path)
        for info in infos:
            catalog._add(info)
        if not infos:
            catalog.problems.append(
                PluginProblem(
                    None,
                    str(path),
                    "defines no Plugin subclass with a name (class attribute 'name')",
                )
            )


def _plugins_in(module: types.ModuleType, path: pathlib.Path) -> list[PluginInfo]:
    return [
        _info(value.name, value, f"{path}:{value.__qualname__}")
        for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, Plugin)
        and value.__module__ == module.__name__ and value.name
    ]


def reimport(path: pathlib.Path) -> list[PluginInfo]:
    """Import the plugin file ``path`` (in a plugin directory) afresh: its plugins.

    Hot reload (:mod:`hadaemon.reload`). Raises what the file's code raises, or
    ImportError if it defines no plugin; either way the module imported before stays
    the one in ``sys.modules``, so the plugins running keep their code.
    """
    package = _directory_package(path.parent)
    module_name = f"{package.__name__}.{path.stem}"
    with _SCANNING:
        previous = sys.modules.get(module_name)
        try:
            module = _import_file(module_name, path)
            infos = _plugins_in(module, path)
            if not infos:
                raise ImportError(f"{path} defines no Plugin subclass with a name "
                                  "(class attribute 'name')")
        except BaseException:
            if previous is not None:
                sys.modules[module_name] = previous
            else:
                sys.modules.pop(module_name, None)
            raise
    return infos


def plugin_file(info: PluginInfo) -> pathlib.Path | None:
    """The file in a plugin directory that defines ``info`` (None for entry points)."""
    module = sys.modules.get(getattr(info.factory, "__module__", "") or "")
    if module is None or not module.__name__.startswith("_hadaemon_plugins_"):
        return None
    file = getattr(module, "__file__", None)
    return pathlib.Path(file) if file else None


def _directory_package(directory: pathlib.Path) -> types.ModuleType:
    # Each directory is its own namespace: two directories may both hold "utils.py",
    # and a plugin can import its siblings relatively ("from . import utils").
    resolved = directory.resolve()
    digest = hashlib.sha1(str(resolved).encode(), usedforsecurity=False).hexdigest()[:10]
    name = f"_hadaemon_plugins_{digest}"
    package = sys.modules.get(name)
    if package is None:
        package = types.ModuleType(name, f"hadaemon plugins from {resolved}")
        package.__path__ = [str(resolved)]
        package.__package__ = name
        sys.modules[name] = package
    return package


def _import_file(module_name: str, path: pathlib.Path) -> types.ModuleType:
    spec = fresh_spec(module_name, path)  # never a stale .pyc after a quick re-save
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


def _scan_entry_points(catalog: Catalog) -> None:
    for ep in sorted(
        importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name
    ):
        origin = f"entry point {ep.name} = {ep.value}"
        try:
            factory = ep.load()
        except BaseException as exc:
            pass_real_interrupt(exc)  # anything else the plugin raised is its problem
            catalog.problems.append(
                PluginProblem(
                    ep.name,
                    origin,
                    f"failed to import: {type(exc).__name__}: {exc}",
                    traceback.format_exc(),
                )
            )
            continue
        if not callable(factory):
            catalog.problems.append(PluginProblem(ep.name, origin, "is not callable"))
            continue
        catalog._add(_info(ep.name, factory, origin))


def _info(name: str, factory: Any, origin: str) -> PluginInfo:
    schema = getattr(factory, "schema", None)
    if schema is not None and not isinstance(schema, Section):
        schema = None
    description = getattr(factory, "description", "") or (factory.__doc__ or "").strip()
    return PluginInfo(
        name,
        factory,
        schema if schema is not None else Section(),
        origin,
        description.splitlines()[0] if description else "",
    )


def _guess_name(path: pathlib.Path) -> str:
    return path.stem


def describe(catalog: Catalog, enabled: Mapping[str, Any] | None = None) -> list[str]:
    """Human-readable lines listing the catalog (``hadaemon plugins``)."""
    lines = []
    for name, info in sorted(catalog.plugins.items()):
        mark = "*" if enabled and name in enabled else " "
        lines.append(f"{mark} {name:<16} {info.description}  [{info.origin}]")
    for problem in catalog.problems:
        lines.append(f"! {problem}")
    return lines
