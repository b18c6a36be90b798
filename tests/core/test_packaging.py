"""pip install . and pip install -e . both make twistd list the hadaemon plugin."""

from __future__ import annotations

import pathlib
import shutil
import site
import subprocess
import sys
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
IGNORE = shutil.ignore_patterns(
    ".venv", ".git", "build", "dist", "*.egg-info", "__pycache__", "var", "dropin.cache",
    ".mypy_cache", ".ruff_cache", ".hypothesis", ".pytest_cache",
)
PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check"]


def run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)  # type: ignore[call-overload]
    assert result.returncode == 0, f"{cmd} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture
def source(tmp_path: pathlib.Path) -> pathlib.Path:
    copy = tmp_path / "src"
    shutil.copytree(ROOT, copy, ignore=IGNORE)
    return copy


def new_venv(path: pathlib.Path) -> pathlib.Path:
    run([sys.executable, "-m", "venv", "--without-pip", str(path)])
    python = path / "bin" / "python"
    purelib = run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"])
    return pathlib.Path(purelib.stdout.strip())


def share_dependencies(purelib: pathlib.Path) -> None:
    # Twisted & co. from the test environment, without reinstalling them: a path in a
    # .pth is not a site directory, so that environment's own hadaemon stays invisible.
    (purelib / "zz_test_deps.pth").write_text(site.getsitepackages()[0] + "\n")


def twistd_help(venv: pathlib.Path) -> str:
    code = (
        "import sys; from twisted.scripts.twistd import run; "
        "sys.argv = ['twistd', '--help']; run()"
    )
    return run([str(venv / "bin" / "python"), "-c", code], cwd="/").stdout


def test_wheel_install(source: pathlib.Path, tmp_path: pathlib.Path) -> None:
    run([*PIP, "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"), str(source)])
    (wheel,) = (tmp_path / "dist").glob("hadaemon-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "twisted/plugins/hadaemon_plugin.py" in names
    assert "hadaemon/py.typed" in names
    assert "hadaemon/config/schema.py" in names and "hadaemon/builtin/demo.py" in names
    assert not [n for n in names if n.endswith("dropin.cache")]
    assert "twisted/__init__.py" not in names and "twisted/plugins/__init__.py" not in names
    assert not [n for n in names if n.startswith(("plugins/", "tests/", "etc/"))]
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "hadaemon = hadaemon.cli:main" in text and "[hadaemon.plugins]" in text
    venv = tmp_path / "venv"
    purelib = new_venv(venv)
    zipfile.ZipFile(wheel).extractall(purelib)  # what pip does for a pure wheel
    share_dependencies(purelib)
    assert "hadaemon" in twistd_help(venv)


def test_editable_install(source: pathlib.Path, tmp_path: pathlib.Path) -> None:
    venv = tmp_path / "venv"
    purelib = new_venv(venv)
    run([*PIP, "--python", str(venv / "bin" / "python"), "install", "-q", "--no-deps",
         "-e", str(source)])
    share_dependencies(purelib)
    assert "hadaemon" in twistd_help(venv)
    # and it really is the editable tree that is used
    where = run([str(venv / "bin" / "python"), "-c", "import hadaemon; print(hadaemon.__file__)"],
                cwd="/")
    assert where.stdout.strip() == str(source / "hadaemon" / "__init__.py")
