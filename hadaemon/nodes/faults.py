"""Faults: the errors a node's call gets back, as Homegear shapes them.

A fault is ``{"faultCode": int, "faultString": str}`` (exactly those two keys) on every
wire. Registry errors carry their Homegear code (``fault_code``); hadaemon's own codes
for the node wire sit in the JSON-RPC server-error range.
"""

from __future__ import annotations

from typing import Any

NOT_FOUND = -1
UNKNOWN_DEVICE = -2
UNKNOWN_PARAMSET = -3
UNKNOWN_PARAMETER = -5
READ_ONLY = -6
APPLICATION_ERROR = -32500
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
AUTH_REFUSED = -32001
"""Unknown node, bad token: the client exits (it is an orphan of an earlier daemon)."""
NOT_AUTHENTICATED = -32002
FORBIDDEN = -32003
"""A node method carrying another node's id, or a status for another node."""


class Fault(Exception):
    """An error to send back to the calling node."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def as_dict(self) -> dict[str, Any]:
        return {"faultCode": self.code, "faultString": self.message}

    def __repr__(self) -> str:
        return f"Fault({self.code}, {self.message!r})"


def method_not_found() -> Fault:
    """Homegear's exact words (node code may compare them); the daemon logs the name."""
    return Fault(METHOD_NOT_FOUND, "Requested method not found.")


def invalid_params(method: str, problem: str) -> Fault:
    return Fault(INVALID_PARAMS, f"{method}: {problem}")


def from_exception(exc: BaseException | None) -> Fault:
    """A fault for any exception: its own code if it has one (registry errors)."""
    if isinstance(exc, Fault):
        return exc
    code = getattr(exc, "fault_code", None)
    if isinstance(code, int) and not isinstance(code, bool):
        return Fault(code, str(exc))
    return Fault(APPLICATION_ERROR, f"{type(exc).__name__}: {exc}")
