"""A source loader that never uses cached bytecode, for user code that hot reload imports
again when its file changes.

A ``.pyc`` is trusted when the source's mtime (whole seconds) and size match what it
recorded, so a file saved twice within one second at the same size (``VALUE = 1`` ->
``VALUE = 2``) would run its old code after the reload. Compiling from the source every
time costs a compile per import of a user file, which is what a reload does anyway.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import pathlib
import types


class FreshSourceLoader(importlib.machinery.SourceFileLoader):
    """Reads and compiles the source at every import; writes no bytecode either."""

    def get_code(self, fullname: str) -> types.CodeType:
        source = self.get_data(self.path)
        return self.source_to_code(source, self.path)


def fresh_spec(
    module_name: str, path: pathlib.Path, loader: FreshSourceLoader | None = None,
    submodule_search_locations: list[str] | None = None,
) -> importlib.machinery.ModuleSpec:
    """``spec_from_file_location`` with a :class:`FreshSourceLoader`."""
    spec = importlib.util.spec_from_file_location(
        module_name, path, loader=loader or FreshSourceLoader(module_name, str(path)),
        submodule_search_locations=submodule_search_locations,
    )
    if spec is None:
        raise ImportError(f"cannot load {path}")
    return spec
