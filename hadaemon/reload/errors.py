"""Code that does not load, told as the file and line to fix.

A reload that meets a syntax error or a failing import keeps the previous version
running; what the user needs is where the problem is. :func:`code_error` finds it in the
exception (a ``SyntaxError`` carries it; for anything else, the innermost frame in the
changed file or a module beside it, or else the innermost frame);
:func:`report_code_error` logs and publishes it the same way for every world.
"""

from __future__ import annotations

import os
import pathlib
from dataclasses import dataclass
from types import TracebackType

from twisted.logger import Logger

from hadaemon.bus import Bus, ErrorEvent, Level


@dataclass(frozen=True)
class CodeError:
    """Where code failed to load (``line`` None when unknown) and what the error was."""

    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.message}"


def code_error(exc: BaseException, path: pathlib.Path | None = None) -> CodeError:
    """The file, line and message of ``exc``, raised while loading ``path``: where in
    ``path``'s directory (the file itself, or a module beside it) the error was raised,
    else ``path`` without a line; without ``path``, where it was raised."""
    original = getattr(exc, "original", None)  # a UserCodeEscape: what was raised
    if isinstance(original, BaseException):
        exc = original
    text = str(exc)
    message = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    if isinstance(exc, SyntaxError):
        message = f"{type(exc).__name__}: {exc.msg}"
        return CodeError(exc.filename or (str(path) if path else "?"), exc.lineno, message)
    frames = list(_frames(exc.__traceback__))
    chosen = None
    if path is not None:
        # The innermost frame in the user's code: the file, or a module next to it that
        # it imports (not hadaemon's loader, nor a library it called).
        directory = os.path.dirname(os.path.abspath(path)) + os.sep
        chosen = next((f for f in reversed(frames)
                       if os.path.abspath(f[0]).startswith(directory)), None)
        if chosen is None:  # raised before any of its code ran (unreadable, null bytes)
            return CodeError(str(path), None, message)
    if chosen is None and frames:
        chosen = frames[-1]
    if chosen is None:
        return CodeError("?", None, message)
    return CodeError(chosen[0], chosen[1], message)


def _frames(tb: TracebackType | None) -> list[tuple[str, int]]:
    out = []
    while tb is not None:
        out.append((tb.tb_frame.f_code.co_filename, tb.tb_lineno))
        tb = tb.tb_next
    return out


def report_code_error(bus: Bus | None, log: Logger, source: str, error: CodeError,
                      what: str) -> str:
    """Log ``<what>: <file>:<line>: <message>`` and publish it as an ErrorEvent of
    ``source``; returns the text."""
    text = f"{what}: {error}"
    log.error("{text}", text=text)
    if bus is not None:
        bus.publish(ErrorEvent(source, text, Level.ERROR,
                               {"file": error.file, "line": error.line}))
    return text


__all__ = ["CodeError", "code_error", "report_code_error"]
