"""Plugin discovery from directories and entry points; broken plugins are reported."""

from __future__ import annotations

import pathlib
import textwrap

import pytest

from hadaemon.plugin import discover

GOOD = '''
from hadaemon.config import Section, Str
from hadaemon.plugin import Plugin

class Greeter(Plugin):
    """Says hello."""
    name = "greeter"
    schema = Section({"greeting": Str(default="hello")})

class NotAPluginBecauseNoName(Plugin):
    pass
'''


def write(directory: pathlib.Path, name: str, text: str) -> pathlib.Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(textwrap.dedent(text))
    return path


def test_plugins_from_a_directory(tmp_path: pathlib.Path) -> None:
    write(tmp_path / "plugins", "greeter.py", GOOD)
    catalog = discover([tmp_path / "plugins"], entry_points=False)
    assert list(catalog.plugins) == ["greeter"]
    info = catalog.plugins["greeter"]
    assert info.description == "Says hello."
    assert info.schema is not None and "greeting" in info.schema.fields
    assert str(tmp_path / "plugins" / "greeter.py") in info.origin
    assert catalog.problems == []


def test_broken_plugin_files_are_problems_not_crashes(tmp_path: pathlib.Path) -> None:
    plugins = tmp_path / "plugins"
    write(plugins, "greeter.py", GOOD)
    write(plugins, "syntax.py", "def broken(:\n")
    write(plugins, "raises.py", "raise RuntimeError('import-time failure')\n")
    write(plugins, "exits.py", "import sys\nsys.exit(3)\n")
    write(plugins, "empty.py", "x = 1\n")
    write(plugins, "_private.py", "raise RuntimeError('never imported')\n")
    catalog = discover([plugins, tmp_path / "missing"], entry_points=False)
    assert list(catalog.plugins) == ["greeter"]
    problems = {p.origin.rsplit("/", 1)[-1]: p for p in catalog.problems}
    assert "SyntaxError" in problems["syntax.py"].message
    assert "import-time failure" in problems["raises.py"].message
    assert "import-time failure" in problems["raises.py"].traceback
    assert "SystemExit" in problems["exits.py"].message
    assert "no Plugin subclass" in problems["empty.py"].message
    assert problems["missing"].message == "plugin directory does not exist"
    assert "_private.py" not in problems
    assert catalog.schemas()["raises"] is None  # its section is not flagged unknown


def test_same_module_name_in_two_directories_does_not_collide(tmp_path: pathlib.Path) -> None:
    for n in (1, 2):
        write(tmp_path / f"d{n}", "helpers.py", f"VALUE = {n}\n")
        write(
            tmp_path / f"d{n}",
            "plug.py",
            f"""
            from hadaemon.plugin import Plugin
            from . import helpers

            class P{n}(Plugin):
                name = "p{n}"
                value = helpers.VALUE
            """,
        )
    catalog = discover([tmp_path / "d1", tmp_path / "d2"], entry_points=False)
    assert catalog.plugins["p1"].factory.value == 1
    assert catalog.plugins["p2"].factory.value == 2


def test_duplicate_names_are_reported(tmp_path: pathlib.Path) -> None:
    write(tmp_path / "a", "greeter.py", GOOD)
    write(tmp_path / "b", "greeter.py", GOOD)
    catalog = discover([tmp_path / "a", tmp_path / "b"], entry_points=False)
    assert str(tmp_path / "a") in catalog.plugins["greeter"].origin
    (problem,) = catalog.problems
    assert "also used by" in problem.message


def make_distribution(site: pathlib.Path, entry_points: str, modules: dict[str, str]) -> None:
    dist = site / "fakeplug-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fakeplug\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[hadaemon.plugins]\n" + entry_points)
    for name, text in modules.items():
        write(site, name, text)


def test_plugins_from_entry_points(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_distribution(
        tmp_path / "site",
        "viaep = fakeplug_mod:EntryPlugin\nbrokenep = fakeplug_missing:Nothing\n",
        {
            "fakeplug_mod.py": """
                from hadaemon.plugin import Plugin
                class EntryPlugin(Plugin):
                    name = "viaep"
                    description = "from an entry point"
            """
        },
    )
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    catalog = discover([], entry_points=True)
    assert catalog.plugins["viaep"].description == "from an entry point"
    assert catalog.plugins["viaep"].origin == "entry point viaep = fakeplug_mod:EntryPlugin"
    # hadaemon's own plugins come through the same entry point group
    assert {"heartbeat", "changelog", "demo"} <= set(catalog.plugins)
    (problem,) = catalog.problems_for("brokenep")
    assert "ModuleNotFoundError" in problem.message


def test_shipped_example_plugins_load(tmp_path: pathlib.Path) -> None:
    root = pathlib.Path(__file__).resolve().parents[2]
    catalog = discover([root / "plugins"], entry_points=False)
    assert catalog.problems == []
    assert catalog.plugins


def test_missing_default_directory_is_quiet_but_configured_one_is_reported(
    tmp_path: pathlib.Path,
) -> None:
    from hadaemon.app import prepare

    (tmp_path / "c.toml").write_text("[daemon]\n")
    assert not [w for w in prepare(tmp_path / "c.toml").warnings if "does not exist" in w]
    (tmp_path / "d.toml").write_text('[daemon]\nplugin_dirs = ["nowhere"]\n')
    warnings = prepare(tmp_path / "d.toml").warnings
    assert any("nowhere" in w and "does not exist" in w for w in warnings)
    write(tmp_path / "plugins", "greeter.py", GOOD)
    assert "greeter" in prepare(tmp_path / "c.toml").catalog.plugins
