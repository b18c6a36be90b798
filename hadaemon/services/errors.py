"""Errors of the services world; each message names the service and what went wrong."""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """Base of the services plugin's own errors."""


class ServiceLoadError(ServiceError):
    """A service file could not be loaded (missing, wrong class name, duplicate id...).

    ``traceback`` is the traceback of the service code that failed, if any ran.
    """

    def __init__(self, message: str, traceback: str = "") -> None:
        super().__init__(message)
        self.traceback = traceback


class Undeliverable(ServiceError):
    """A message the destination refuses; reported back to the sender as a warning."""


class ActionRefused(Undeliverable):
    """The action is missing, private, not async, or part of the CustomService API."""


class ServiceNotRunning(Undeliverable):
    """The destination is stopped, disabled, stopping or failed for good."""

    def __init__(self, service_id: str, state: str) -> None:
        super().__init__(f"service {service_id} is {state}; the message was not delivered")
        self.service_id = service_id
        self.state = state


class PipPackageMissing(ServiceError, ImportError):
    """``AddPipPackage``'s module is not installed and run-time installation is disabled."""


class InvalidRequirement(ServiceError, ValueError):
    """A package string that is not a plain requirement (``name[extras]>=version``)."""


class PipInstallFailed(ServiceError):
    """``pip install`` failed; the message carries the end of pip's output."""


class PipInstallPending(ServiceError):
    """The package is being installed off the reactor thread; Start is retried when done.

    ``pending`` is a Deferred firing when the installation finished (or failed).
    """

    def __init__(self, package: str, pending: Any) -> None:
        super().__init__(
            f"package {package!r} is being installed in the background; the service's Start "
            "is called again once it is installed"
        )
        self.package = package
        self.pending = pending
