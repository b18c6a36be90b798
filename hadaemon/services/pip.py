"""``AddPipPackage``, safely.

The original ran ``pip3 install {package}`` through a shell, on the loop: a command
injection that also froze every service. Here:

- by default it only imports: ``getattr(import_module(module), name)``, and a missing
  module is a clear :class:`PipPackageMissing` saying how to install it;
- with ``[services].pip_install = true``, a missing module's package is installed with
  ``sys.executable -m pip install -- <requirement>`` (an argument list, never a shell), in a
  worker thread, one installation at a time, and only if ``package`` is a plain
  requirement string (``name``, ``name[extra]``, ``name>=1.0,<2``); anything else (``;``,
  URLs, options, spaces around words) is an :class:`InvalidRequirement`.

``AddPipPackage`` is synchronous in the original, and an installation takes seconds, so it
cannot wait: it raises :class:`PipInstallPending` and the supervisor calls the service's
``Start`` again once the installation finished (the usual place for AddPipPackage).
"""

from __future__ import annotations

import importlib
import pathlib
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from twisted.internet.defer import Deferred, DeferredLock
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure

from hadaemon.logs import get_logger
from hadaemon.services.errors import (
    InvalidRequirement,
    PipInstallFailed,
    PipInstallPending,
    PipPackageMissing,
)

_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
_VERSION = r"(?:===|==|!=|<=|>=|~=|<|>)\s*[A-Za-z0-9.*+!_-]+"
_REQUIREMENT = re.compile(
    rf"^{_NAME}(?:\[{_NAME}(?:\s*,\s*{_NAME})*\])?(?:\s*{_VERSION}(?:\s*,\s*{_VERSION})*)?$"
)
_OUTPUT_TAIL = 2000


def check_requirement(package: object) -> str:
    """``package`` if it is a plain requirement string, else :class:`InvalidRequirement`."""
    if not isinstance(package, str) or not _REQUIREMENT.match(package.strip()):
        raise InvalidRequirement(
            f"AddPipPackage: {package!r} is not a plain requirement (a package name, "
            "optionally with [extras] and version specifiers like >=1.0); refused"
        )
    return package.strip()


def pip_command(
    requirement: str, *, target: pathlib.Path | None = None, options: Sequence[str] = ()
) -> list[str]:
    """The argument list installing ``requirement`` with this interpreter's pip."""
    argv = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-input"]
    argv += list(options)
    if target is not None:
        argv += ["--target", str(target)]
    return [*argv, "--", check_requirement(requirement)]


@dataclass
class _Install:
    requirement: str
    done: bool = False
    error: str | None = None
    waiters: list[Deferred[None]] = field(default_factory=list)


class PipInstaller:
    """What ``AddPipPackage`` calls (reactor thread); installations run in a thread."""

    def __init__(
        self,
        reactor: Any,
        *,
        enabled: bool = False,
        target: pathlib.Path | None = None,
        options: Sequence[str] = (),
        timeout: float = 300.0,
        log: Logger | None = None,
        run: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run,
    ) -> None:
        self._reactor = reactor
        self.enabled = enabled
        self.target = target
        self.options = list(options)
        self.timeout = timeout
        self._log = log or get_logger("hadaemon.services.pip")
        self._run = run
        self._lock = DeferredLock()  # one pip at a time: they share one environment
        self._installs: dict[str, _Install] = {}

    def add_pip_package(self, package: str, module: str, name: str) -> Any:
        """``getattr(import_module(module), name)``; see the module docstring."""
        try:
            imported = importlib.import_module(module)
        except ImportError as exc:
            if not self.enabled:
                raise PipPackageMissing(
                    f"AddPipPackage({package!r}, {module!r}, {name!r}): module {module!r} is "
                    f"not installed ({exc}); install the package into hadaemon's environment "
                    f"({sys.executable} -m pip install <package>), or allow installing at "
                    "run time with [services].pip_install = true"
                ) from exc
            requirement = check_requirement(package)
            raise PipInstallPending(package, self._pending(requirement, module)) from exc
        try:
            return getattr(imported, name)
        except AttributeError:
            raise AttributeError(
                f"AddPipPackage({package!r}, {module!r}, {name!r}): module {module!r} has no "
                f"attribute {name!r}"
            ) from None

    def _pending(self, requirement: str, module: str) -> Deferred[None]:
        install = self._installs.get(requirement)
        if install is not None and install.done:
            if install.error is None:
                install.error = (
                    f"{requirement} was installed, but module {module!r} still cannot be "
                    "imported: check the module name"
                )
            raise PipInstallFailed(f"AddPipPackage: {install.error}")
        waiter: Deferred[None] = Deferred()
        if install is None:
            install = self._installs[requirement] = _Install(requirement)
            self._lock.run(self._install, install)
        install.waiters.append(waiter)
        return waiter

    def _install(self, install: _Install) -> Deferred[None]:
        argv = pip_command(install.requirement, target=self.target, options=self.options)
        self._log.info("installing {requirement}: {command}", requirement=install.requirement,
                       command=" ".join(argv))
        pool = self._reactor.getThreadPool()
        d: Deferred[subprocess.CompletedProcess[str]] = deferToThreadPool(
            self._reactor, pool, self._run, argv, capture_output=True, text=True,
            timeout=self.timeout, check=False,
        )

        def finished(result: subprocess.CompletedProcess[str] | Failure) -> None:
            install.done = True
            if isinstance(result, Failure):
                install.error = f"pip could not run for {install.requirement}: " \
                                f"{result.getErrorMessage()}"
            elif result.returncode != 0:
                output = ((result.stdout or "") + (result.stderr or ""))[-_OUTPUT_TAIL:]
                install.error = (
                    f"pip install {install.requirement} failed with status "
                    f"{result.returncode}:\n{output}"
                )
            else:
                if self.target is not None and str(self.target) not in sys.path:
                    sys.path.append(str(self.target))
                importlib.invalidate_caches()
            if install.error is not None:
                self._log.error("{error}", error=install.error)
            else:
                self._log.info("installed {requirement}", requirement=install.requirement)
            waiters, install.waiters = install.waiters, []
            for waiter in waiters:
                if install.error is None:
                    waiter.callback(None)
                else:
                    waiter.errback(PipInstallFailed(install.error))

        return d.addBoth(finished)


__all__ = ["PipInstaller", "check_requirement", "pip_command"]
