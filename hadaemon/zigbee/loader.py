"""Loading an automation file with pyziggy's module names, without a ``pyziggy`` package.

Every module of the automation (the file, and its sibling modules and packages, each
automation in a private namespace like plugin directories) is executed with its own
``__builtins__`` whose ``__import__`` resolves ``pyziggy...`` and
``pyziggy_autogenerate...`` to the modules hadaemon made for that automation; every
other import goes to the normal machinery. Nothing named ``pyziggy`` ever enters
``sys.modules``, so a real pyziggy installed next to hadaemon is not shadowed, and code
outside the automation cannot see the hook. (``importlib.import_module("pyziggy...")``
bypasses ``__import__`` and is therefore not covered.)
"""

from __future__ import annotations

import builtins
import hashlib
import importlib.util
import pathlib
import sys
import types
from collections.abc import Mapping, Sequence
from typing import Any

HOOKED = ("pyziggy", "pyziggy_autogenerate")


class AutomationImporter:
    """Imports one automation and the modules next to it, with the scoped hook."""

    def __init__(self, path: pathlib.Path, compat: Mapping[str, types.ModuleType],
                 instance: str = "") -> None:
        self.path = path.resolve()
        self.directory = self.path.parent
        self.compat = dict(compat)
        digest = hashlib.sha1(f"{self.path}:{instance}".encode(),
                              usedforsecurity=False).hexdigest()[:10]
        self.package = f"_hadaemon_automation_{digest}"
        self.modules: dict[str, types.ModuleType] = {}
        self._elsewhere: set[str] = set()
        self.builtins: dict[str, Any] = dict(builtins.__dict__)
        self.builtins["__import__"] = self._import

    def load(self) -> types.ModuleType:
        """Execute the automation file; raises what its code raises."""
        package = types.ModuleType(self.package, f"automation {self.path}")
        package.__path__ = []  # its submodules are ours to load, never the path finder's
        package.__package__ = self.package
        sys.modules[self.package] = package
        return self._load_file(self.path.stem, self.path, is_package=False)

    def unload(self) -> None:
        """Forget the automation's modules (they stay alive while referenced)."""
        for name in [n for n in sys.modules if n == self.package
                     or n.startswith(self.package + ".")]:
            del sys.modules[name]
        self.modules.clear()

    # -- the hook --------------------------------------------------------------------------

    def _import(self, name: str, globals: Mapping[str, Any] | None = None,
                locals: Any = None, fromlist: Sequence[str] | None = (),
                level: int = 0) -> types.ModuleType:
        fromlist = fromlist or ()
        if level == 0:
            top = name.partition(".")[0]
            if top in HOOKED:
                return self._compat(name, fromlist)
            if top in self._elsewhere or (
                top not in self.modules and self._find(top, self.directory) is None
            ):
                self._elsewhere.add(top)  # not a sibling: never look on disk again
                return builtins.__import__(name, globals, locals, fromlist, level)
            absolute = f"{self.package}.{name}"
        else:
            package = (globals or {}).get("__package__") or ""
            if package != self.package and not package.startswith(self.package + "."):
                return builtins.__import__(name, globals, locals, fromlist, level)
            absolute = importlib.util.resolve_name("." * level + name, package)
        short = absolute[len(self.package) + 1:] if absolute != self.package else ""
        if not short:
            for item in fromlist:
                self._sibling(item)
            return sys.modules[self.package]
        module = self._sibling(short)
        for item in fromlist:
            if item != "*" and hasattr(module, "__path__") and not hasattr(module, item):
                self._sibling(f"{short}.{item}", missing_ok=True)
        if fromlist or level > 0:
            return module
        return self._sibling(short.partition(".")[0])

    def _compat(self, name: str, fromlist: Sequence[str]) -> types.ModuleType:
        module = self.compat.get(name)
        if module is None:
            available = ", ".join(sorted(self.compat))
            raise ModuleNotFoundError(
                f"No module named {name!r} inside hadaemon (automations get: {available})",
                name=name,
            )
        if fromlist:
            return module
        return self.compat[name.partition(".")[0]]

    # -- sibling modules ---------------------------------------------------------------------

    def _sibling(self, short: str, missing_ok: bool = False) -> types.ModuleType:
        if short in self.modules:
            return self.modules[short]
        parent_short, _, last = short.rpartition(".")
        directory = self.directory
        if parent_short:
            parent = self._sibling(parent_short)
            directory = pathlib.Path(getattr(parent, "__file__", "")).parent
        found = self._find(last, directory)
        if found is None:
            if missing_ok:
                return self.modules[parent_short]
            raise ModuleNotFoundError(f"No module named {short!r} next to {self.path}",
                                      name=short)
        path, is_package = found
        module = self._load_file(short, path, is_package)
        if parent_short:
            setattr(self.modules[parent_short], last, module)
        return module

    @staticmethod
    def _find(name: str, directory: pathlib.Path) -> tuple[pathlib.Path, bool] | None:
        if (directory / name / "__init__.py").is_file():
            return directory / name / "__init__.py", True
        if (directory / f"{name}.py").is_file():
            return directory / f"{name}.py", False
        return None

    def _load_file(self, short: str, path: pathlib.Path, is_package: bool) -> types.ModuleType:
        full = f"{self.package}.{short}"
        module = types.ModuleType(full)
        module.__file__ = str(path)
        module.__package__ = full if is_package else full.rpartition(".")[0]
        module.__builtins__ = self.builtins  # type: ignore[attr-defined]
        if is_package:
            module.__path__ = []
        self.modules[short] = module
        sys.modules[full] = module  # dataclasses and typing look modules up there
        try:
            code = compile(path.read_bytes(), str(path), "exec")
            exec(code, module.__dict__)
        except BaseException:
            self.modules.pop(short, None)
            sys.modules.pop(full, None)
            raise
        return module


def package_module(name: str, **attributes: Any) -> types.ModuleType:
    """A module object standing for a package (``pyziggy``) with given attributes."""
    module = types.ModuleType(name)
    module.__path__ = []
    module.__dict__.update(attributes)
    return module
