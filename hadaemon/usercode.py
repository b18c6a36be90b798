"""What user code raises ends that call, never the daemon.

Every world runs users' code on the reactor thread: services, automations, plugins, bus
handlers and subscribers, the embedding's calls and callbacks. An ``Exception`` there is
an ordinary failure. Any other ``BaseException`` (``KeyboardInterrupt``, the
``SystemExit`` of ``sys.exit()``, ``GeneratorExit``, a class of the user's own) would
unwind through the asyncio loop, stop the reactor and leave the process alive doing
nothing. So each place that calls user code hands what it caught to :func:`contain` (or
:func:`failure_of`), which turns it into :class:`UserCodeEscape`: an ordinary exception
that keeps the user's traceback and names the file and line it was raised at. A
cancellation (``asyncio.CancelledError``) stays what it is.

Only a real signal stops the daemon: the SIGINT/SIGTERM handlers in force while it runs
never raise (hadaemon's under ``hadaemon run``, Twisted's under twistd), and an embedded
daemon's reactor thread never gets signals, so a ``KeyboardInterrupt`` on the reactor
thread comes from user code. Where Python's own SIGINT handler is in force on the main
thread (``hadaemon check``, before the reactor runs), one may be a real Ctrl+C: it is let
through. :func:`guard_reactor` is the last line for code no call site wraps (a task the
user started with ``asyncio.create_task``, a ``loop.call_soon``): what escapes the loop is
reported and the loop goes on.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from types import TracebackType
from typing import Any

from twisted.logger import LogLevel
from twisted.python.failure import Failure

from hadaemon.logs import get_logger

_log = get_logger("hadaemon.usercode")

PASSES = (Exception, asyncio.CancelledError)
"""What user code may raise as it is: ordinary errors, and cancellations."""


class UserCodeEscape(Exception):
    """User code raised a ``BaseException`` that is no error; it ends that call only.

    ``original`` is what was raised; the message names where (the user's file and line).
    """

    def __init__(self, original: BaseException, what: str | None = None) -> None:
        self.original = original
        self.where = raised_at(original.__traceback__)
        text = what or f"user code raised {_describe(original)}"
        super().__init__(f"{text} at {self.where}" if self.where else text)


class UserCodeExit(UserCodeEscape):
    """User code called ``sys.exit()``."""

    def __init__(self, original: SystemExit) -> None:
        super().__init__(original, f"user code called sys.exit({original.code!r})")

    @property
    def code(self) -> object:
        return self.original.code  # type: ignore[attr-defined]


def raised_at(tb: TracebackType | None) -> str:
    """``file:line, in function`` of the innermost frame: where it was raised."""
    if tb is None:
        return ""
    while tb.tb_next is not None:
        tb = tb.tb_next
    code = tb.tb_frame.f_code
    return f"{code.co_filename}:{tb.tb_lineno}, in {code.co_name}"


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}({text})" if text else type(exc).__name__


def contain(exc: BaseException) -> BaseException:
    """``exc`` as the daemon passes it on: an Exception or a cancellation unchanged, any
    other BaseException as a :class:`UserCodeEscape` with the original's traceback.

    A ``KeyboardInterrupt`` that may be a real Ctrl+C (:func:`real_interrupt_possible`:
    before the reactor runs, ``hadaemon check``) is raised again, never swallowed.
    """
    if isinstance(exc, PASSES):
        return exc
    pass_real_interrupt(exc)
    escape = UserCodeExit(exc) if isinstance(exc, SystemExit) else UserCodeEscape(exc)
    escape.__suppress_context__ = True  # the traceback is the original's: shown once
    return escape.with_traceback(exc.__traceback__)


def failure_of(exc: BaseException) -> Failure:
    """A Failure of what user code raised (contained), with the user's traceback."""
    contained = contain(exc)
    return Failure(contained, type(contained), contained.__traceback__)


def real_interrupt_possible() -> bool:
    """True if a KeyboardInterrupt here may be a real Ctrl+C (Python's own handler).

    Then it cannot be told from one that user code raised, and must be let through.
    """
    return (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    )


def pass_real_interrupt(exc: BaseException) -> None:
    """Raise ``exc`` again if it is a ``KeyboardInterrupt`` that may be a real Ctrl+C."""
    if isinstance(exc, KeyboardInterrupt) and real_interrupt_possible():
        raise exc


def guard_reactor(reactor: Any) -> None:
    """Keep the asyncio reactor's loop running through what user code lets escape.

    An asyncio callback or task that raises ``KeyboardInterrupt`` or ``SystemExit``
    re-raises it out of ``run_forever`` (every other exception is only logged there). The
    guard reports it and runs the loop again, as long as the reactor itself is running
    (a stop requested in the same loop turn is then kept).
    Call it before the reactor runs, only where hadaemon runs the loop (not on a host
    program's loop); idempotent.
    """
    loop = getattr(reactor, "_asyncioEventloop", None)
    if loop is None or getattr(loop, "_hadaemon_guarded", False):
        return
    run_forever = loop.run_forever

    def guarded_run_forever() -> None:
        while True:
            try:
                run_forever()
                return
            except (KeyboardInterrupt, SystemExit) as exc:
                _log.failure(
                    "user code outside any handler raised {kind}; the daemon goes on "
                    "(only a signal stops it)",
                    failure=failure_of(exc),
                    level=LogLevel.error,  # as a failing handler's: the daemon is fine
                    kind=type(exc).__name__,
                )
                if not reactor.running:  # it stopped meanwhile: the loop had to end
                    return

    loop.run_forever = guarded_run_forever
    loop._hadaemon_guarded = True


__all__ = [
    "UserCodeEscape",
    "UserCodeExit",
    "contain",
    "failure_of",
    "guard_reactor",
    "pass_real_interrupt",
    "raised_at",
    "real_interrupt_possible",
]
