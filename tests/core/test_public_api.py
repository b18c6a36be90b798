"""The public face (docs/api.md): every exported name resolves, is the object its home
module holds, is documented; ``import hadaemon`` stays cheap."""

from __future__ import annotations

import importlib
import pathlib
import re
import subprocess
import sys
import types

import pytest

import hadaemon

API_DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "api.md"


@pytest.mark.parametrize("name", hadaemon.__all__)
def test_every_exported_name_resolves_to_its_home_object(name: str) -> None:
    value = getattr(hadaemon, name)
    if name == "__version__":
        assert isinstance(value, str) and value
        return
    module = next(m for m, names in hadaemon._SOURCES.items() if name in names)
    if module:
        assert value is getattr(importlib.import_module(module), name)
    else:
        assert isinstance(value, types.ModuleType)
        assert value is importlib.import_module(f"hadaemon.{name}")


def test_the_export_list_and_the_sources_agree() -> None:
    sourced = [n for names in hadaemon._SOURCES.values() for n in names]
    assert len(sourced) == len(set(sourced)), "a name exported twice"
    assert sorted(hadaemon.__all__) == sorted(["__version__", *sourced])
    assert set(hadaemon.__all__) <= set(dir(hadaemon))


def test_every_exported_name_is_documented() -> None:
    # A name counts as documented where it opens a row of a table in docs/api.md
    # (``| `Name` |``, or one of several names sharing a row).
    documented = set()
    for line in API_DOC.read_text().splitlines():
        cell = line.split("|")[1] if line.startswith("|") else ""
        documented.update(re.findall(r"`([A-Za-z_]+)`", cell))
    missing = [n for n in hadaemon.__all__ if n not in documented]
    assert not missing, f"docs/api.md does not document: {missing}"
    extra = sorted(documented - set(hadaemon.__all__))
    assert not extra, f"docs/api.md documents names that are not exported: {extra}"


def test_an_unknown_name_is_an_attribute_error_and_submodules_still_import() -> None:
    with pytest.raises(AttributeError, match="'no_such_thing'"):
        hadaemon.no_such_thing  # noqa: B018
    from hadaemon import binrpc  # a submodule, not an export: the import system finds it

    assert binrpc.__name__ == "hadaemon.binrpc"


def test_import_hadaemon_imports_neither_twisted_nor_typing() -> None:
    # The CLI and tools pay for `import hadaemon`; the exports come in on first use.
    code = ("import sys, hadaemon; print(sorted(m for m in sys.modules "
            "if m.split('.')[0] in ('twisted', 'typing', 'hadaemon')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "['hadaemon', 'hadaemon._version']"
