"""AddPipPackage: import only by default; installing only when allowed, never via a shell."""

from __future__ import annotations

import base64
import hashlib
import pathlib
import sys
import zipfile
from typing import Any

import pytest

from hadaemon.services import InvalidRequirement
from hadaemon.services.pip import check_requirement, pip_command
from hadaemon.testing import capture_logs, run_in_reactor, wait_until

from .helpers import make_config, running

IMPORTER = '''
from base_service import CustomService

class Importer(CustomService):
    async def Start(self):
        package, module, name = self.GetPropertyValue("static", "wanted")
        found = self.AddPipPackage(package, module, name)
        await self.SubmitAction("node:probe", "found", repr(found))
'''


def _start_errors(run: Any) -> list[str]:
    return [e.message for e in run.events.errors("service:importer_py")
            if e.details.get("action") == "Start"]


def test_default_only_imports(tmp_path: pathlib.Path) -> None:
    config = make_config(
        tmp_path, {"Importer": IMPORTER},
        {"Importer": {"static": {"wanted": ["msgpack", "msgpack", "packb"]}}},
    )

    async def scenario(reactor: Any) -> list[Any]:
        async with running(config, reactor) as run:
            return await run.probe.wait(reactor, "found")

    found = run_in_reactor(scenario, timeout=10)
    assert found[0].startswith("<built-in function packb") or "packb" in found[0]


def test_default_missing_module_is_a_clear_error(tmp_path: pathlib.Path) -> None:
    config = make_config(
        tmp_path, {"Importer": IMPORTER},
        {"Importer": {"static": {"wanted": ["azure-iot-device", "azure_nowhere.aio", "X"]}}},
        restart="never",
    )

    async def scenario(reactor: Any) -> list[str]:
        async with running(config, reactor) as run:
            await wait_until(reactor, lambda: _start_errors(run))
            return _start_errors(run)

    with capture_logs() as logs:
        errors = run_in_reactor(scenario, timeout=10)
    assert errors[0].startswith(
        "Start failed: PipPackageMissing: AddPipPackage('azure-iot-device', "
        "'azure_nowhere.aio', 'X'): module 'azure_nowhere.aio' is not installed"
    )
    assert "[services].pip_install = true" in errors[0]
    assert "installing azure-iot-device" not in logs.text()  # pip never ran


def test_injection_string_is_refused_and_nothing_runs(tmp_path: pathlib.Path) -> None:
    pwned = tmp_path / "pwned"
    config = make_config(
        tmp_path, {"Importer": IMPORTER},
        {"Importer": {"static": {"wanted": [f"x; touch {pwned}", "no_such_module_xyz", "X"]}}},
        restart="never", pip_install=True,
    )

    async def scenario(reactor: Any) -> list[str]:
        async with running(config, reactor) as run:
            await wait_until(reactor, lambda: _start_errors(run))
            assert not run.orchestrator.pip._installs  # pip was never started
            return _start_errors(run)

    with capture_logs() as logs:
        errors = run_in_reactor(scenario, timeout=10)
    assert errors == [
        f"Start failed: InvalidRequirement: AddPipPackage: 'x; touch {pwned}' is not a plain "
        "requirement (a package name, optionally with [extras] and version specifiers like "
        ">=1.0); refused"
    ]
    assert not pwned.exists()
    assert "installing x;" not in logs.text()  # pip never ran


def _wheel(directory: pathlib.Path, name: str, version: str, source: str) -> pathlib.Path:
    """A minimal pure-Python wheel, written by hand (no network, no build backend)."""
    module = name.replace("-", "_")
    dist_info = f"{module}-{version}.dist-info"
    files = {
        f"{module}/__init__.py": source.encode(),
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
                                 .encode(),
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: hadaemon-tests\n"
                              b"Root-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{dist_info}/RECORD,,")
    files[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    directory.mkdir(parents=True, exist_ok=True)
    wheel = directory / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return wheel


def test_install_when_allowed_then_start_again(tmp_path: pathlib.Path) -> None:
    name = "hadaemon-pip-probe"
    wheels, site = tmp_path / "wheels", tmp_path / "site"
    _wheel(wheels, name, "1.0", "VALUE = 42\n")
    config = make_config(
        tmp_path, {"Importer": IMPORTER},
        {"Importer": {"static": {"wanted": [f"{name}==1.0", "hadaemon_pip_probe", "VALUE"]}}},
        pip_install=True, pip_target=str(site),
        pip_options=["--no-index", "--find-links", str(wheels), "--no-cache-dir"],
    )

    async def scenario(reactor: Any) -> tuple[list[Any], list[Any]]:
        async with running(config, reactor) as run:
            found = await run.probe.wait(reactor, "found", timeout=60)
            lifecycle = [(e.state, dict(e.details)) for e in run.events.events
                         if getattr(e, "component", "") == "service:importer_py"]
            return found, lifecycle

    try:
        found, lifecycle = run_in_reactor(scenario, timeout=90)
    finally:
        if str(site) in sys.path:
            sys.path.remove(str(site))
        sys.modules.pop("hadaemon_pip_probe", None)
    assert found == ["42"]
    assert ("failed", {"waiting_for": f"{name}==1.0"}) in lifecycle
    assert (site / "hadaemon_pip_probe" / "__init__.py").exists()


@pytest.mark.parametrize(
    "text",
    ["paho-mqtt", "azure-iot-device", "requests[socks]", "numpy>=1.20,<2", "a.b_c-d==1.0.*",
     " six ", "pkg[a, b] ~= 1.4"],
)
def test_plain_requirements_are_accepted(text: str) -> None:
    assert check_requirement(text) == text.strip()


@pytest.mark.parametrize(
    "text",
    ["x; touch /tmp/pwned", "x && rm -rf /", "-r requirements.txt", "--index-url=http://evil",
     "pkg @ https://evil/pkg.whl", "git+https://evil/x", "./local", "x y", "pkg$(id)",
     "pkg`id`", "", "pkg; python_version<'3.8'", "pkg\nother", 42],
)
def test_everything_else_is_refused(text: Any) -> None:
    with pytest.raises(InvalidRequirement, match="not a plain requirement"):
        check_requirement(text)


def test_pip_runs_with_this_interpreter_as_an_argument_list(tmp_path: pathlib.Path) -> None:
    argv = pip_command("paho-mqtt>=2", target=tmp_path, options=["--index-url", "https://x"])
    assert argv[:4] == [sys.executable, "-m", "pip", "install"]
    assert argv[-2:] == ["--", "paho-mqtt>=2"]
    assert argv[argv.index("--target") + 1] == str(tmp_path)
    with pytest.raises(InvalidRequirement):
        pip_command("x; touch /tmp/pwned")
