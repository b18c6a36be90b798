"""Watching source files: inotify where the system has it, else a look every so often.

Editors save in bursts (a write, a rename onto the file, a ``chmod``, a backup file), so
changes are collected until none came for ``settle`` seconds (at most ``20 * settle``
after the first), then each file's content is compared with what it was: only files
whose bytes changed (or that appeared or vanished) are reported, once per burst. A save
of identical bytes, or a generated file rewritten as it was, reloads nothing.

With inotify the *directories* of the files are watched, not the files: a save that
writes a new file and renames it over the old one replaces the inode a file watch
would follow. A directory that is removed or renamed away has its files polled until it
is back, then watched again. Reactor thread only.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pathlib
from collections.abc import Callable, Iterable
from typing import Any

from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger
from twisted.python.filepath import FilePath

from hadaemon.logs import get_logger

# (Twisted adds IN_DELETE_SELF to every watch, and closes the INotify on it.)
_MASK_NAMES = ("IN_CLOSE_WRITE", "IN_MODIFY", "IN_CREATE", "IN_DELETE", "IN_MOVED_FROM",
               "IN_MOVED_TO", "IN_ATTRIB", "IN_MOVE_SELF")
_IN_DELETE_SELF = 0x400
_SETTLE_LIMIT = 20  # a burst is reported at most this many settle periods after it began


def fingerprint(path: pathlib.Path) -> str | None:
    """What the file holds (a digest), None if it cannot be read (missing, a directory)."""
    try:
        return hashlib.sha1(path.read_bytes(), usedforsecurity=False).hexdigest()
    except OSError:
        return None


def _stat(path: pathlib.Path) -> tuple[int, int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_mtime_ns, info.st_size, info.st_ino)


class FileWatcher:
    """Calls ``on_change(paths)`` with the watched files whose content changed."""

    def __init__(self, reactor: Any, on_change: Callable[[frozenset[pathlib.Path]], object],
                 *, settle: float = 0.05, poll_interval: float = 1.0,
                 use_inotify: bool = True, log: Logger | None = None) -> None:
        self.reactor = reactor
        self.on_change = on_change
        self.settle = settle
        self.poll_interval = poll_interval
        self.log = log or get_logger("hadaemon.reload")
        self._files: dict[pathlib.Path, str | None] = {}  # watched file -> fingerprint
        self._stats: dict[pathlib.Path, tuple[int, int, int] | None] = {}
        self._directories: dict[pathlib.Path, FilePath[str]] = {}
        self._pending: set[pathlib.Path] = set()
        self._settle_call: IDelayedCall | None = None
        self._burst_began: float | None = None
        self._poll_call: IDelayedCall | None = None
        self._notifier: Any = None
        self.mode = "off"
        self._use_inotify = use_inotify
        self.running = False

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Begin watching: inotify if it is available, else polling."""
        if self.running:
            return
        self.running = True
        if self._use_inotify:
            self._notifier = self._open_inotify()
        self.mode = "polling" if self._notifier is None else "inotify"
        for path in list(self._files):
            self._watch_directory(path.parent)
        self._schedule_poll()

    def _open_inotify(self) -> Any:
        try:
            from twisted.internet import inotify

            notifier = inotify.INotify(self.reactor)
            notifier.startReading()
        except Exception as exc:  # no inotify here (not Linux, or out of instances)
            self.log.info("inotify unavailable ({error}); looking at the watched files "
                          "every {interval}s", error=str(exc), interval=self.poll_interval)
            return None
        self._mask = 0
        for name in _MASK_NAMES:
            self._mask |= getattr(inotify, name)
        return notifier

    def _renew_inotify(self) -> None:
        # Twisted's INotify closes itself, every watch with it, when a watched directory
        # is deleted: a new one watches the directories still there, and what changed
        # meanwhile is looked for.
        if not self.running:
            return
        self._directories.clear()
        self._notifier = self._open_inotify()
        if self._notifier is None:
            self.mode = "polling"
        for path in list(self._files):
            self._watch_directory(path.parent)
        self._changed(set(self._files))

    def stop(self) -> None:
        """Stop watching; nothing is reported after this."""
        self.running = False
        for call in (self._settle_call, self._poll_call):
            if call is not None and call.active():
                call.cancel()
        self._settle_call = self._poll_call = None
        self._pending.clear()
        if self._notifier is not None:
            self._notifier.loseConnection()
            self._notifier = None
        self._directories.clear()
        self.mode = "off"

    # -- what is watched ---------------------------------------------------------------------

    def watch(self, paths: Iterable[pathlib.Path]) -> None:
        """Watch exactly ``paths`` from now on (files; they need not exist yet)."""
        wanted = {pathlib.Path(os.path.abspath(p)) for p in paths}
        for path in list(self._files):
            if path not in wanted:
                del self._files[path]
                self._stats.pop(path, None)
                self._pending.discard(path)
        for path in wanted - set(self._files):
            self._files[path] = fingerprint(path)
            self._stats[path] = _stat(path)
            if self.running:
                self._watch_directory(path.parent)
        directories = {path.parent for path in self._files}
        for directory in list(self._directories):
            if directory not in directories:
                self._unwatch_directory(directory)

    @property
    def files(self) -> frozenset[pathlib.Path]:
        return frozenset(self._files)

    def _watch_directory(self, directory: pathlib.Path) -> None:
        if self._notifier is None or directory in self._directories:
            return
        target = FilePath(str(directory))
        try:
            self._notifier.watch(target, mask=self._mask, callbacks=[self._notified])
        except Exception as exc:  # missing directory, too many watches: polled instead
            self.log.debug("cannot watch {directory} with inotify ({error}); polling it",
                           directory=str(directory), error=str(exc))
            return
        self._directories[directory] = target

    def _unwatch_directory(self, directory: pathlib.Path) -> None:
        target = self._directories.pop(directory, None)
        if target is not None and self._notifier is not None:
            with contextlib.suppress(KeyError):  # already forgotten
                self._notifier.ignore(target)

    def _polled(self) -> list[pathlib.Path]:
        # Every file under polling, and under inotify those whose directory it cannot
        # watch (it did not exist yet, say).
        return [p for p in self._files if p.parent not in self._directories]

    # -- changes -----------------------------------------------------------------------------

    def _notified(self, _ignored: object, filepath: FilePath[Any], mask: int) -> None:
        path = pathlib.Path(os.fsdecode(filepath.path))  # inotify hands over bytes
        if path in self._files:
            self._changed({path})
        elif path in self._directories:
            # The directory itself went. Its files are polled until it is back, then
            # watched again.
            if mask & _IN_DELETE_SELF:
                # Twisted drops the watch and closes this INotify: a new one, next turn.
                self._directories.pop(path)
                self.reactor.callLater(0, self._renew_inotify)
            else:
                self._unwatch_directory(path)  # renamed: the watch would follow it
            self._changed({file for file in self._files if file.parent == path})
        elif path.parent not in self._directories:
            self._changed(set(self._files))  # the kernel's queue overflowed

    def _schedule_poll(self) -> None:
        if self.running:
            self._poll_call = self.reactor.callLater(self.poll_interval, self._poll)

    def _poll(self) -> None:
        self._poll_call = None
        changed = set()
        polled = self._polled()
        for directory in {path.parent for path in polled}:
            self._watch_directory(directory)  # back (or there at last): inotify again
        for path in polled:
            stat = _stat(path)
            if stat != self._stats.get(path):
                self._stats[path] = stat
                changed.add(path)
        if changed:
            self._changed(changed)
        self._schedule_poll()

    def _changed(self, paths: set[pathlib.Path]) -> None:
        if not self.running:
            return
        self._pending |= paths
        now = self.reactor.seconds()
        if self._burst_began is None:
            self._burst_began = now
        if self._settle_call is not None and self._settle_call.active():
            self._settle_call.cancel()
        latest = self._burst_began + self.settle * _SETTLE_LIMIT
        self._settle_call = self.reactor.callLater(
            max(0.0, min(self.settle, latest - now)), self._report)

    def _report(self) -> None:
        self._settle_call = None
        self._burst_began = None
        pending, self._pending = self._pending, set()
        changed = set()
        for path in pending:
            if path not in self._files:
                continue
            now = fingerprint(path)
            self._stats[path] = _stat(path)
            if now != self._files[path]:
                self._files[path] = now
                changed.add(path)
        if changed:
            self.on_change(frozenset(changed))


__all__ = ["FileWatcher", "fingerprint"]
