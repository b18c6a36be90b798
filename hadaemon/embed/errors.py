"""Errors that synchronous callers of the embedded daemon can tell apart."""

from __future__ import annotations


class EmbedError(RuntimeError):
    """Base of the embedding errors; also raised for a misuse that would hang."""


class WrongReactor(EmbedError):
    """A reactor other than the asyncio one is installed in this process."""


class AlreadyRunning(EmbedError):
    """``start()`` while a daemon already runs in this process: one daemon per process."""


class NotRestartable(EmbedError):
    """``start()`` after ``stop()``: Twisted's reactor runs once per process."""


class Deadlock(EmbedError):
    """A blocking call made on the reactor thread, which would wait for itself."""


class CallTimeout(EmbedError, TimeoutError):
    """A blocking call did not finish in time; the work was cancelled."""


class Stopped(EmbedError):
    """The daemon was stopped; the handle cannot be used any more."""


class Forked(EmbedError):
    """The handle is used in a process forked after ``start()``: no reactor thread there."""


class StartupFailed(EmbedError):
    """The daemon could not start; the cause is chained."""
