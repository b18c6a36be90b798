"""Type-checking automations with mypy, against the generated module, as pyziggy does.

mypy runs in a subprocess with a search path holding small stub packages named
``pyziggy`` and (when nothing was generated next to the automation) ``pyziggy_autogenerate``;
they re-export hadaemon's modules, so no ``pyziggy`` package is ever installed. mypy is an
optional dependency (the ``zigbee`` extra): without it the check says so clearly.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import subprocess
import sys
import tempfile
from collections.abc import Sequence

_PYZIGGY_STUBS = {
    "pyziggy/__init__.pyi": (
        "from hadaemon.zigbee.compat import EmkyootConfig as EmkyootConfig\n"
        "from hadaemon.zigbee.compat import PyziggyConfig as PyziggyConfig\n"
        "from hadaemon.zigbee.compat import pyziggy as pyziggy\n"
        "from hadaemon.zigbee.compat import run as run\n"
        "from . import message_loop as message_loop\n"
        "from . import parameters as parameters\n"
        "from . import devices_client as devices_client\n"
        "from . import broadcasters as broadcasters\n"
    ),
    "pyziggy/message_loop.pyi": "from hadaemon.zigbee.compat.message_loop import *\n",
    "pyziggy/parameters.pyi": "from hadaemon.zigbee.compat.parameters import *\n",
    "pyziggy/devices_client.pyi": "from hadaemon.zigbee.compat.devices_client import *\n",
    "pyziggy/broadcasters.pyi": "from hadaemon.zigbee.compat.broadcasters import *\n",
}
_DYNAMIC_STUBS = {
    "pyziggy_autogenerate/__init__.pyi": "",
    "pyziggy_autogenerate/available_devices.pyi":
        "from hadaemon.zigbee.compat.available_devices import *\n",
}

MISSING_MYPY = (
    "mypy is not installed, so automations cannot be type-checked: install it with "
    "pip install 'hadaemon[zigbee]' (or set [zigbee2mqtt].typecheck = false)"
)


def mypy_available() -> bool:
    return importlib.util.find_spec("mypy") is not None


def write_stubs(directory: pathlib.Path, *, dynamic: bool) -> None:
    """The stub packages mypy needs to resolve pyziggy's module names."""
    stubs = dict(_PYZIGGY_STUBS)
    if dynamic:
        stubs.update(_DYNAMIC_STUBS)
    for relative, text in stubs.items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def run_mypy(files: Sequence[pathlib.Path], *, cache_dir: pathlib.Path | None = None,
             extra_path: Sequence[pathlib.Path] = (), strict: bool = False,
             timeout: float = 300.0) -> tuple[int, str]:
    """Run mypy on ``files``; returns (status, output)."""
    with tempfile.TemporaryDirectory(prefix="hadaemon-mypy-") as tmp:
        stubs = pathlib.Path(tmp) / "stubs"
        dynamic = not all((f.parent / "pyziggy_autogenerate").is_dir() for f in files)
        write_stubs(stubs, dynamic=dynamic)
        config = pathlib.Path(tmp) / "mypy.ini"
        config.write_text("[mypy]\nplugins = mypy_zope:plugin\n"
                          if importlib.util.find_spec("mypy_zope") else "[mypy]\n")
        command = [
            sys.executable, "-m", "mypy", "--config-file", str(config),
            "--check-untyped-defs", "--ignore-missing-imports", "--no-error-summary",
            "--show-error-codes", "--hide-error-context",
            "--cache-dir", str(cache_dir or pathlib.Path(tmp) / "cache"),
        ]
        if strict:
            command.append("--strict")
        env = dict(os.environ)
        search = [str(p) for p in extra_path] + [str(stubs)]
        env["MYPYPATH"] = os.pathsep.join(search)
        result = subprocess.run(
            [*command, *(str(f) for f in files)], capture_output=True, text=True,
            timeout=timeout, env=env, check=False,
        )
    return result.returncode, (result.stdout + result.stderr).strip()


def check_automations(paths: Sequence[pathlib.Path], *, typecheck: bool = True,
                      cache_dir: pathlib.Path | None = None) -> list[str]:
    """Problems with the automations: missing files, syntax errors, type errors."""
    problems: list[str] = []
    ok: list[pathlib.Path] = []
    for path in paths:
        try:
            compile(path.read_bytes(), str(path), "exec")
        except SyntaxError as exc:
            problems.append(f"automation {path}:{exc.lineno}: {exc.msg}")
            continue
        except OSError as exc:
            problems.append(f"automation {path}: {exc.strerror}")
            continue
        ok.append(path)
    if not typecheck or not ok:
        return problems
    if not mypy_available():
        return [*problems, MISSING_MYPY]
    for path in ok:  # one run per automation: each has its own generated module
        status, output = run_mypy([path], cache_dir=cache_dir)
        if status not in (0, 1):
            problems.append(f"automation {path}: mypy failed: {output[-2000:]}")
        elif status == 1:
            problems.extend(f"automation {line}" for line in output.splitlines()
                            if line.strip() and ": note:" not in line)
    return problems
