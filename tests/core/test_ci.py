""".ci/run keeps the README's test command verbatim; .ci/find-python picks the second Python."""

from __future__ import annotations

import pathlib
import re
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIND = ROOT / ".ci" / "find-python"


def test_readme_test_command_is_verbatim_in_ci() -> None:
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"Run the tests.*?```sh\n(.+?)\n```", readme, re.S)
    assert match, "README.md lost its test command"
    command = match.group(1)
    assert command.endswith(".venv/bin/python -m pytest"), command
    assert command in (ROOT / ".ci" / "run").read_text()


def _fake_python(directory: pathlib.Path, name: str, body: str) -> None:
    path = directory / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


def _find(bin_dir: pathlib.Path, exclude: str) -> subprocess.CompletedProcess[str]:
    # No HOME, no pyenv on PATH: as CI runs it (root, without a login shell).
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "PYENV_ROOT": str(bin_dir / "no-pyenv")}
    return subprocess.run(["/bin/bash", str(FIND), exclude], capture_output=True, text=True,
                          env=env, timeout=60)


def test_find_python_takes_the_newest_other_working_python(tmp_path: pathlib.Path) -> None:
    _fake_python(tmp_path, "python3.40", "echo 3.40")
    _fake_python(tmp_path, "python3.39", "echo 3.39")
    _fake_python(tmp_path, "python3.10", "echo 3.10")  # older than python_requires
    _fake_python(tmp_path, "python3.50", "exit 1")  # broken (say, no venv module)
    _fake_python(tmp_path, "python3.60-config", "echo 3.60")  # not an interpreter
    found = _find(tmp_path, "3.11")
    assert (found.returncode, found.stdout) == (0, f"3.40 {tmp_path}/python3.40\n"), found
    found = _find(tmp_path, "3.40")  # the default's version is skipped
    assert (found.returncode, found.stdout) == (0, f"3.39 {tmp_path}/python3.39\n"), found
