"""The one thread that writes the history file.

The reactor thread hands batches over (:meth:`Writer.submit`) and never waits for the
disk; the thread writes each batch in one transaction and reports back through
``reactor.callFromThread``. Everything crossing threads goes through this module: a
``queue.SimpleQueue`` one way, ``callFromThread`` the other. How many changes may wait
is the recorder's business (:mod:`hadaemon.history.recorder`), which counts them.
"""

from __future__ import annotations

import pathlib
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from hadaemon.history.database import (
    BatchResult,
    HistoryFile,
    HistoryFileError,
    Row,
    SeriesKey,
    SeriesMeta,
)

Job = tuple[str, tuple[Any, ...], Callable[[object], None]]
"""What the thread is asked to do: a kind, its arguments, where its outcome goes (a
callable run in the reactor thread with the result or a Failure)."""


class Writer:
    """Owns the writing connection and its thread; the public methods are for the
    reactor thread only, the ones named ``_in_thread...`` for the writer's thread."""

    def __init__(self, path: pathlib.Path, reactor: Any) -> None:
        self.path = path
        self._reactor = reactor
        self._jobs: queue.SimpleQueue[Job] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._purge: Iterator[int] | None = None
        self._purge_done: Callable[[object], None] | None = None
        self._purged = 0

    # -- reactor thread --------------------------------------------------------------

    def start(self) -> Deferred[float | None]:
        """Open the file in the thread; fires with the cutoff of its last purge (None:
        never purged), fails with HistoryFileError naming the file."""
        opened: Deferred[float | None] = Deferred()
        self._thread = threading.Thread(
            target=self._in_thread_run, args=(self._outcome(opened),),
            name=f"history writer ({self.path.name})", daemon=True,
        )
        self._thread.start()
        return opened

    def submit(
        self, rows: Sequence[Row], meta: Mapping[SeriesKey, SeriesMeta],
        done: Callable[[object], None],
    ) -> None:
        """Write ``rows`` in one transaction; ``done(BatchResult or Failure)`` after."""
        self._jobs.put(("batch", (rows, meta), done))

    def purge(self, cutoff: float) -> Deferred[int]:
        """Delete what is older than ``cutoff`` (in steps between batches); fires with
        the number of changes deleted."""
        d: Deferred[int] = Deferred()
        self._jobs.put(("purge", (cutoff,), self._outcome(d)))
        return d

    def flush(self) -> Deferred[None]:
        """Fires once everything submitted before it is written (or has failed)."""
        d: Deferred[None] = Deferred()
        self._jobs.put(("flush", (), self._outcome(d)))
        return d

    def close(self) -> Deferred[None]:
        """Write what was submitted, close the file and end the thread."""
        d: Deferred[None] = Deferred()
        if self._thread is None:
            d.callback(None)
            return d
        self._jobs.put(("stop", (), self._outcome(d)))
        return d

    def _outcome(self, d: Deferred[Any]) -> Callable[[object], None]:
        def fire(result: object) -> None:
            if isinstance(result, Failure):
                d.errback(result)
            else:
                d.callback(result)

        return fire

    # -- the writer's thread ---------------------------------------------------------

    def _in_thread_run(self, opened: Callable[[object], None]) -> None:
        try:
            history = HistoryFile.open(self.path)
        except HistoryFileError:
            self._reactor.callFromThread(opened, Failure())
            return
        self._reactor.callFromThread(opened, history.purged_before)
        stopped: Callable[[object], None] | None = None
        try:
            while stopped is None:
                job = self._in_thread_next()
                if job is None:
                    continue
                if job[0] == "stop":
                    stopped = job[2]
                else:
                    self._in_thread_do(history, job)
        finally:
            # An unfinished purge goes on at the next one; what it deleted is counted.
            self._in_thread_finish_purge(self._purged)
            history.close()
            if stopped is not None:
                self._reactor.callFromThread(stopped, None)

    def _in_thread_next(self) -> Job | None:
        # A purge runs in steps while no batch waits: writing never stalls behind it.
        if self._purge is None:
            return self._jobs.get()
        try:
            return self._jobs.get_nowait()
        except queue.Empty:
            pass
        try:
            self._purged += next(self._purge)
        except StopIteration:
            self._in_thread_finish_purge(self._purged)
        except Exception:
            self._in_thread_finish_purge(Failure())
        return None

    def _in_thread_finish_purge(self, outcome: object) -> None:
        done, self._purge, self._purge_done = self._purge_done, None, None
        if done is not None:
            self._reactor.callFromThread(done, outcome)

    def _in_thread_do(self, history: HistoryFile, job: Job) -> None:
        kind, args, done = job
        outcome: object
        try:
            if kind == "batch":
                outcome = history.write(*args)
            elif kind == "purge":
                if self._purge is not None:  # one at a time: the newer cutoff wins later
                    self._in_thread_finish_purge(0)
                self._purge, self._purge_done, self._purged = (
                    history.purge_steps(args[0]), done, 0)
                return
            else:
                outcome = None
        except sqlite3.Error as exc:
            outcome = Failure(HistoryFileError(f"writing {self.path} failed: {exc}"))
        except Exception:
            outcome = Failure()
        self._reactor.callFromThread(done, outcome)


__all__ = ["BatchResult", "Writer"]
