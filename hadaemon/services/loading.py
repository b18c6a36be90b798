"""Loading service files: ``<Name>.py`` defining ``class <Name>(CustomService)``.

Each configured directory is its own import namespace, a private package
``_hadaemon_services_<n>`` whose ``__path__`` is the directory, so two directories may both
hold a ``utils.py``. Service files were written for a flat layout (``import utils``,
``from base_service import CustomService``), so modules loaded from a directory get an
``__import__`` of their own (through their ``__builtins__``), scoped to that directory:

- ``base_service`` and ``queue_message`` are hadaemon's :mod:`hadaemon.services.base` and
  :mod:`hadaemon.services.message`; nothing is installed in site-packages and no
  ``sys.path`` entry is added;
- a top-level name that is a module or package in the directory (like the script's
  directory on ``sys.path``) is that directory's module, ``<namespace>.utils``;
- everything else is the ordinary import.

A meta-path finder, which only answers for the private namespaces, gives every module of a
directory (siblings, packages, their submodules) that same ``__import__``. Nothing outside
service loading is affected, and :meth:`ServiceLoader.close` forgets the modules.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import itertools
import pathlib
import sys
import threading
import traceback
import types
from collections.abc import Mapping, Sequence
from typing import Any

from hadaemon.services.errors import ServiceLoadError
from hadaemon.sourceloader import FreshSourceLoader
from hadaemon.usercode import UserCodeExit, contain

SHIMS: Mapping[str, str] = {
    "base_service": "hadaemon.services.base",
    "queue_message": "hadaemon.services.message",
}
_PREFIX = "_hadaemon_services_"
_counter = itertools.count(1)
_lock = threading.Lock()


class DirectoryNamespace:
    """One directory's import namespace: its package name and its ``__builtins__``."""

    def __init__(self, directory: pathlib.Path) -> None:
        self.directory = directory.resolve()
        self.package = f"{_PREFIX}{next(_counter)}"
        self._siblings: dict[str, bool] = {}
        # Who imports what among the namespace's modules ("<package>.utils" imported by
        # "<package>.Reader"), recorded by the import statements as they run: what a
        # service depends on, for reloading it when one of those files changes.
        self.imports: dict[str, set[str]] = {}
        self.builtins: dict[str, Any] = dict(builtins.__dict__)
        self.builtins["__import__"] = self._import
        module = types.ModuleType(self.package, f"hadaemon services from {self.directory}")
        module.__path__ = [str(self.directory)]
        module.__package__ = self.package
        module.__file__ = None
        self.module = module

    def install(self) -> None:
        sys.modules[self.package] = self.module
        _FINDER.add(self)

    def close(self) -> None:
        """Forget this namespace and every module imported into it."""
        _FINDER.remove(self)
        prefix = self.package + "."
        for name in [n for n in sys.modules if n == self.package or n.startswith(prefix)]:
            del sys.modules[name]

    def is_sibling(self, name: str) -> bool:
        """Whether ``name`` is a module or package file in this directory."""
        known = self._siblings.get(name)
        if known is None:
            path = self.directory / name
            known = (path.with_name(name + ".py")).is_file() or (path / "__init__.py").is_file()
            self._siblings[name] = known
        return known

    def _import(
        self,
        name: str,
        globals: Mapping[str, Any] | None = None,
        locals: Mapping[str, Any] | None = None,
        fromlist: Sequence[str] | None = (),
        level: int = 0,
    ) -> types.ModuleType:
        if level == 0:
            top = name.partition(".")[0]
            shim = SHIMS.get(name)
            if shim is not None:
                return importlib.import_module(shim)
            if self.is_sibling(top):
                full = f"{self.package}.{name}"
                try:
                    leaf = builtins.__import__(full, globals, locals, fromlist, 0)
                finally:
                    self._record(globals, full, fromlist)
                if fromlist:
                    return leaf
                return sys.modules[f"{self.package}.{top}"]
        elif globals is not None and isinstance(globals.get("__package__"), str):
            package = globals["__package__"]
            if package == self.package or package.startswith(self.package + "."):
                try:
                    return builtins.__import__(name, globals, locals, fromlist or (), level)
                finally:
                    with contextlib.suppress(ImportError, ValueError):
                        full = importlib.util.resolve_name("." * level + name, package)
                        self._record(globals, full, fromlist)
        return builtins.__import__(name, globals, locals, fromlist or (), level)

    def _record(self, globals: Mapping[str, Any] | None, full: str,
                fromlist: Sequence[str] | None) -> None:
        """Remember that the importing module depends on ``full`` (and on the submodules
        its ``from ... import`` named); kept even when the import failed, so fixing that
        file reloads the importer."""
        importer = globals.get("__name__") if globals is not None else None
        if not isinstance(importer, str):
            return
        needed = self.imports.setdefault(importer, set())
        parts = full.split(".")
        needed.update(".".join(parts[:n]) for n in range(2, len(parts) + 1))  # packages too
        for item in fromlist or ():
            needed.add(f"{full}.{item}")  # (a submodule, or a name: then no file is found)

    def dependencies(self, module: str) -> set[pathlib.Path]:
        """The files of ``module`` and of every module of this namespace it imports,
        directly or not (those imported so far, and those whose import failed)."""
        seen: set[str] = set()
        todo = [module]
        files: set[pathlib.Path] = set()
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            todo.extend(self.imports.get(name, ()))
            files.update(self._files_of(name))
        return files

    def _files_of(self, name: str) -> list[pathlib.Path]:
        """Where module ``name`` of this namespace is (or would be), resolved."""
        loaded = sys.modules.get(name)
        file = getattr(loaded, "__file__", None) if loaded is not None else None
        if isinstance(file, str):
            return [pathlib.Path(file).resolve()]
        if not name.startswith(self.package + "."):
            return []
        base = self.directory.joinpath(*name[len(self.package) + 1:].split("."))
        return [p for p in (base.with_name(base.name + ".py"), base / "__init__.py")
                if p.is_file()]

    def import_module(self, stem: str) -> types.ModuleType:
        return importlib.import_module(f"{self.package}.{stem}")


class _ServiceFileLoader(FreshSourceLoader):
    """A source loader that gives the module its namespace's ``__builtins__`` first (and
    compiles the source afresh: a reload never runs a stale ``.pyc``)."""

    def __init__(self, fullname: str, path: str, namespace: DirectoryNamespace) -> None:
        super().__init__(fullname, path)
        self.namespace = namespace

    def exec_module(self, module: types.ModuleType) -> None:
        module.__dict__["__builtins__"] = self.namespace.builtins
        super().exec_module(module)


class _NamespaceFinder(importlib.abc.MetaPathFinder):
    """Finds modules of the private service namespaces only; everything else: not mine."""

    def __init__(self) -> None:
        self.namespaces: dict[str, DirectoryNamespace] = {}

    def add(self, namespace: DirectoryNamespace) -> None:
        with _lock:
            self.namespaces[namespace.package] = namespace
            if self not in sys.meta_path:
                sys.meta_path.insert(0, self)

    def remove(self, namespace: DirectoryNamespace) -> None:
        with _lock:
            self.namespaces.pop(namespace.package, None)
            if not self.namespaces and self in sys.meta_path:
                sys.meta_path.remove(self)

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        top, dot, rest = fullname.partition(".")
        namespace = self.namespaces.get(top)
        if namespace is None or not dot:
            return None
        leaf = rest.rpartition(".")[2]
        for entry in path or [str(namespace.directory)]:
            base = pathlib.Path(entry)
            package_init = base / leaf / "__init__.py"
            if package_init.is_file():
                loader = _ServiceFileLoader(fullname, str(package_init), namespace)
                return importlib.util.spec_from_file_location(
                    fullname, package_init, loader=loader,
                    submodule_search_locations=[str(base / leaf)],
                )
            module_file = base / f"{leaf}.py"
            if module_file.is_file():
                loader = _ServiceFileLoader(fullname, str(module_file), namespace)
                return importlib.util.spec_from_file_location(fullname, module_file, loader=loader)
        return None  # e.g. an extension module: the ordinary finders take it


_FINDER = _NamespaceFinder()


class ServiceLoader:
    """Finds and imports service classes from directories (reactor thread; imports block
    briefly, as any import does).
    """

    def __init__(self, directories: Sequence[pathlib.Path]) -> None:
        self.directories = [pathlib.Path(d) for d in directories]
        self._namespaces: dict[pathlib.Path, DirectoryNamespace] = {}
        # Where each loaded service's module is: its namespace and module name. A
        # reloaded service has a namespace of its own (see load_fresh).
        self.loaded: dict[str, tuple[DirectoryNamespace, str]] = {}
        self._fresh: list[DirectoryNamespace] = []

    def find(self, name: str) -> pathlib.Path:
        """The file of service ``name``: ``<name>.py`` in exactly one directory.

        A file whose name differs only in case is accepted (ids are matched without
        case); the class name must then equal that file's stem.
        """
        found: list[pathlib.Path] = []
        for directory in self.directories:
            if not directory.is_dir():
                continue
            exact = directory / f"{name}.py"
            if exact.is_file():
                found.append(exact)
                continue
            lowered = f"{name}.py".lower()
            found.extend(
                p for p in sorted(directory.glob("*.py")) if p.name.lower() == lowered
            )
        if not found:
            missing = [str(d) for d in self.directories if not d.is_dir()]
            where = ", ".join(str(d) for d in self.directories) or "no directories configured"
            extra = f" (missing directories: {', '.join(missing)})" if missing else ""
            raise ServiceLoadError(f"service {name}: no file {name}.py in {where}{extra}")
        if len(found) > 1:
            raise ServiceLoadError(
                f"service {name}: found in several places ({', '.join(map(str, found))}); "
                "service ids must be unique"
            )
        return found[0]

    def load(self, name: str) -> type[Any]:
        """Import ``<name>.py`` and return its class ``<stem>`` (a CustomService subclass)."""
        path = self.find(name)
        namespace = self._namespace(path.parent)
        self.loaded[name] = (namespace, f"{namespace.package}.{path.stem}")
        return self._import(namespace, path)

    def load_fresh(self, name: str) -> tuple[type[Any], DirectoryNamespace]:
        """Import ``<name>.py`` afresh, in a new namespace of its directory (its sibling
        modules imported afresh too; the running services keep theirs). The caller
        :meth:`adopt` s the namespace once it uses the class, or :meth:`discard` s it."""
        path = self.find(name)
        namespace = DirectoryNamespace(path.parent)
        namespace.install()
        self._fresh.append(namespace)
        try:
            return self._import(namespace, path), namespace
        except BaseException:
            self.discard(namespace)
            raise

    def adopt(self, name: str, namespace: DirectoryNamespace, stem: str) -> None:
        """Service ``name`` now runs the class loaded into ``namespace``: the namespace
        it used before is forgotten once no service uses it any more."""
        old = self.loaded.get(name)
        self.loaded[name] = (namespace, f"{namespace.package}.{stem}")
        if old is not None:
            self._release(old[0])

    def discard(self, namespace: DirectoryNamespace) -> None:
        """Forget a fresh namespace that is not used (its import failed, or its class)."""
        if namespace in self._fresh:
            self._fresh.remove(namespace)
        namespace.close()

    def forget(self, name: str) -> None:
        """Service ``name`` is gone (removed from the config)."""
        old = self.loaded.pop(name, None)
        if old is not None:
            self._release(old[0])

    def _release(self, namespace: DirectoryNamespace) -> None:
        if any(ns is namespace for ns, _ in self.loaded.values()):
            return
        if namespace in self._fresh:
            self._fresh.remove(namespace)
        elif self._namespaces.get(namespace.directory) is namespace:
            del self._namespaces[namespace.directory]
        else:
            return
        namespace.close()

    def files_of(self, name: str) -> set[pathlib.Path]:
        """The files loaded service ``name`` depends on: its own and those of its
        directory it imports (directly or not)."""
        where = self.loaded.get(name)
        if where is None:
            return set()
        namespace, module = where
        return namespace.dependencies(module)

    def _import(self, namespace: DirectoryNamespace, path: pathlib.Path) -> type[Any]:
        from hadaemon.services.base import CustomService

        stem = path.stem
        try:
            module = namespace.import_module(stem)
        except BaseException as exc:
            error = contain(exc)
            what = (f"importing it called sys.exit({error.code!r}) at {error.where}"
                    if isinstance(error, UserCodeExit) else
                    f"failed to import: {type(error).__name__}: {error}")
            raise ServiceLoadError(f"{path}: {what}", traceback.format_exc()) from exc
        cls = vars(module).get(stem)
        if not isinstance(cls, type):
            classes = [
                n for n, v in vars(module).items()
                if isinstance(v, type) and v.__module__ == module.__name__
            ]
            shown = ", ".join(classes) if classes else "no class"
            raise ServiceLoadError(
                f"{path}: the file {path.name} must define class {stem}, but it defines "
                f"{shown}; the class name must match the file name"
            )
        if not issubclass(cls, CustomService):
            raise ServiceLoadError(
                f"{path}: class {stem} is not a CustomService (from base_service import "
                "CustomService)"
            )
        return cls

    def _namespace(self, directory: pathlib.Path) -> DirectoryNamespace:
        key = directory.resolve()
        namespace = self._namespaces.get(key)
        if namespace is None:
            namespace = DirectoryNamespace(key)
            namespace.install()
            self._namespaces[key] = namespace
        return namespace

    def close(self) -> None:
        """Forget every module loaded (a new loader imports the files afresh)."""
        for namespace in [*self._namespaces.values(), *self._fresh]:
            namespace.close()
        self._namespaces.clear()
        self._fresh.clear()
        self.loaded.clear()


def check_file(path: pathlib.Path) -> list[str]:
    """Problems found in a service file without running it: syntax, the class name."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except SyntaxError as exc:
        return [f"{path}:{exc.lineno}: syntax error: {exc.msg}"]
    except (OSError, UnicodeDecodeError) as exc:
        return [f"{path}: cannot read: {exc}"]
    classes = [node.name for node in tree.body if isinstance(node, ast.ClassDef)]
    if path.stem not in classes:
        shown = ", ".join(classes) if classes else "no class"
        return [
            f"{path}: the file {path.name} must define class {path.stem}, but it defines "
            f"{shown}; the class name must match the file name"
        ]
    return []


__all__ = ["SHIMS", "DirectoryNamespace", "ServiceLoader", "check_file"]
