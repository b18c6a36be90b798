"""The durable key-value store: an append-only log of msgpack records, compacted behind.

Durability rules (docs/store.md has the whole story):

- A write is acknowledged when ``put``/``put_many``/``delete`` returns: its record went to
  the OS with ``os.write`` on an ``O_APPEND`` fd, so it survives ``kill -9``. Memory shows
  it only after that.
- ``fsync`` never runs on the reactor thread: the periodic one and ``sync()`` run in a
  thread, on a ``dup`` of the fd so that a compaction swapping the fd cannot make them
  fsync a closed or reused descriptor.
- Compaction writes a snapshot to ``<file>.compact`` in a thread, then appends what was
  written meanwhile and renames it over the log on the reactor thread, where writes happen:
  none can fall between the copy and the rename. Until the rename the old log is complete,
  after it the new one is, so a stale ``.compact`` is simply removed on load.
- Loading skips damaged records and saves their bytes aside (fsynced) before it changes the
  log: a torn tail is cut off; damage that records follow, or a format 1 log, is replaced
  by a snapshot of what loaded, the way a compaction replaces it.
- Reactor thread only; ``open()`` (load) does blocking I/O and is meant for start-up.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from hadaemon import values
from hadaemon.logs import get_logger
from hadaemon.store import records
from hadaemon.store.errors import StoreClosed, StoreError
from hadaemon.store.files import fsync_and_close, lock, pread_all, write_all, write_snapshot
from hadaemon.store.keyindex import KeyIndex
from hadaemon.store.replay import LogLoader, apply_changes
from hadaemon.store.threads import ThreadRunner, thread_pool_runner

__all__ = ["Store", "ThreadRunner"]  # ThreadRunner: re-exported from its own module

_COMPACT_RETRY = 60.0  # seconds before an automatic compaction is tried again after failing


def _check_key(key: object) -> None:
    if type(key) is not str:
        raise TypeError(f"store keys are str, not {type(key).__name__}")


class _Completion:
    """One outcome that any number of callers wait for (a Deferred fires only once)."""

    def __init__(self) -> None:
        self._waiters: list[Deferred[None]] | None = []
        self._failure: Failure | None = None

    def wait(self) -> Deferred[None]:
        if self._waiters is None:
            return fail(self._failure) if self._failure is not None else succeed(None)
        self._waiters.append(Deferred())
        return self._waiters[-1]

    def fire(self, failure: Failure | None) -> None:
        waiters, self._waiters, self._failure = self._waiters or [], None, failure
        for d in waiters:
            d.errback(failure) if failure is not None else d.callback(None)


@dataclass
class _FsyncJob:
    generation: int  # which log file (bumped by each compaction swap)
    seq: int  # every write up to this one is covered when it succeeds
    with_dir: bool
    waiters: list[tuple[int, Deferred[None]]] = field(default_factory=list)


class Store(Service):
    """Durable ``str``-keyed storage of values in the :mod:`~hadaemon.values` model.

    ``get`` returns a fresh object on each call (memory holds packed bytes), so mutating a
    result never changes the store behind its back. With ``secret=True`` the files are
    0600 and values never appear in logs, exception texts or ``repr``: keys only.
    Reads keep serving the last state after close; writes raise :class:`StoreClosed`.
    """

    def __init__(
        self,
        path: pathlib.Path,
        *,
        reactor: IReactorTime,
        secret: bool = False,
        fsync_interval: float = 1.0,
        compact_min_bytes: int = 1 << 20,
        compact_ratio: float = 4.0,
        run_in_thread: ThreadRunner | None = None,
        log: Logger | None = None,
    ) -> None:
        # The log is never smaller than the live data: a ratio <= 1 would compact forever.
        if fsync_interval < 0 or compact_ratio <= 1.0 or compact_min_bytes < 0:
            raise ValueError(
                "need fsync_interval >= 0, compact_ratio > 1, compact_min_bytes >= 0; got "
                f"{fsync_interval}, {compact_ratio}, {compact_min_bytes}"
            )
        self.path = pathlib.Path(path)
        self.secret = secret
        self.load_warnings: list[str] = []
        self._reactor = reactor
        self._fsync_interval = fsync_interval
        self._compact_min_bytes = compact_min_bytes
        self._compact_ratio = compact_ratio
        self._run_in_thread = run_in_thread or thread_pool_runner(reactor)
        self._log = log or get_logger("hadaemon.store")
        self._compact_path = self.path.with_name(self.path.name + ".compact")
        self._data: dict[str, bytes] = {}
        self._index = KeyIndex()  # the keys of _data, sorted: prefix queries
        self._live_size = 0
        self._loaded = False
        self._fd: int | None = None
        self._broken: str | None = None
        self._log_size = 0
        self._written_seq = 0  # writes so far (the header of a new file counts)
        self._synced_seq = 0  # writes known to be fsynced, in a file the name points to
        self._generation = 0
        self._dir_durable = True
        self._inflight: list[_FsyncJob] = []
        self._periodic_call: IDelayedCall | None = None
        self._swap_pending = False
        self._parked: list[tuple[int, Deferred[None]]] = []
        self._compaction: _Completion | None = None
        self._compact_retry_at = 0.0
        self._stopping: _Completion | None = None

    def __repr__(self) -> str:
        state = "open" if self._fd is not None else "closed" if self._loaded else "not opened"
        kind = " secret" if self.secret else ""
        return f"<Store {str(self.path)!r}{kind}: {len(self._data)} keys, {state}>"

    # -- opening and loading -----------------------------------------------------------

    def open(self) -> None:
        """Load the log (repairing a damaged tail) and open it for appending."""
        if self._fd is not None:
            return
        path = str(self.path)
        self._data, self._live_size, self.load_warnings = {}, 0, []
        self._index = KeyIndex()
        self._broken, self._stopping, self._dir_durable = None, None, True
        mode = 0o600 if self.secret else 0o666
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, mode)
        try:
            lock(fd, path)
            if self.secret:
                self._tighten_mode(fd)
            with contextlib.suppress(FileNotFoundError):
                # Until its rename a .compact is only a copy: the log itself is complete.
                self._compact_path.unlink()
                self._log.info("removed {path}, left by an unfinished compaction",
                               path=str(self._compact_path))
            loader = LogLoader(self.path, self._compact_path, secret=self.secret,
                               log=self._log, warnings=self.load_warnings)
            fd = loader.load(fd)
        except BaseException:
            os.close(fd)
            self._data, self._live_size = {}, 0
            raise
        self._data, self._live_size = loader.data, loader.live_size
        self._index = KeyIndex(self._data)
        self._log_size, self._dir_durable = loader.log_size, loader.dir_durable
        self._fd = fd
        self._loaded = True
        # What a crashed process wrote may still be only in the page cache: count it as
        # unsynced, so the periodic fsync makes it durable too.
        self._written_seq += 1
        self._schedule_fsync()
        self._log.info("opened {path}: {count} keys, {size} bytes", path=path,
                       count=len(self._data), size=self._log_size)

    def startService(self) -> None:
        if self._fd is None:
            self.open()
        Service.startService(self)

    def _tighten_mode(self, fd: int) -> None:
        mode = stat.S_IMODE(os.fstat(fd).st_mode)
        if mode & 0o077:
            os.fchmod(fd, 0o600)
            self._log.warn("{path} had mode {old:04o}; set to 0600 (it holds credentials)",
                           path=str(self.path), old=mode)

    # -- reading -----------------------------------------------------------------------

    def _check_readable(self) -> None:
        if not self._loaded:
            raise StoreClosed(f"{self.path}: store was never opened")

    def get(self, key: str, default: Any = None) -> Any:
        """A fresh copy of the value of ``key``, or ``default``."""
        self._check_readable()
        packed = self._data.get(key)
        return default if packed is None else values.unpack(packed)

    def keys(self, prefix: str = "") -> list[str]:
        """The keys starting with ``prefix``, sorted: O(log n + matches)."""
        self._check_readable()
        return self._index.prefixed(prefix)

    def items(self, prefix: str = "") -> list[tuple[str, Any]]:
        """``(key, value)`` pairs for the keys starting with ``prefix``, sorted by key."""
        return [(key, values.unpack(self._data[key])) for key in self.keys(prefix)]

    def __contains__(self, key: object) -> bool:
        self._check_readable()
        return isinstance(key, str) and key in self._data

    def __len__(self) -> int:
        self._check_readable()
        return len(self._data)

    # -- writing -----------------------------------------------------------------------

    def put(self, key: str, value: Any) -> None:
        """Store ``value`` under ``key``; durable against a crash once this returns."""
        fd = self._writable_fd()
        packed = self._pack(key, value)
        self._commit(fd, records.encode_put(key, packed), [(key, packed)])

    def put_many(self, items: Mapping[str, Any]) -> None:
        """Store several values with one record and one ``os.write``: all or none survive."""
        fd = self._writable_fd()
        changes = [(key, self._pack(key, value)) for key, value in items.items()]
        if len(changes) == 1:
            self._commit(fd, records.encode_put(*changes[0]), changes)
        elif changes:
            self._commit(fd, records.encode_batch(changes), changes)

    def delete(self, key: str) -> None:
        """Remove ``key``; a missing key is no error and writes nothing."""
        fd = self._writable_fd()
        _check_key(key)
        if key in self._data:
            self._commit(fd, records.encode_delete(key), [(key, None)])

    def _writable_fd(self) -> int:
        if self._fd is None:
            state = "closed" if self._loaded else "not open yet"
            raise StoreClosed(f"{self.path}: store is {state}; writes are refused")
        if self._broken is not None:
            raise StoreError(self._broken)
        return self._fd

    def _pack(self, key: str, value: Any) -> bytes:
        _check_key(key)
        try:
            return values.pack(value)
        except values.UnsupportedValue as exc:
            detail = exc.describe(redact_keys=self.secret)
        # Raised outside the handler: no __context__ keeps the unredacted original around.
        raise TypeError(f"store value for key {key!r}: {detail}")

    def _commit(self, fd: int, blob: bytes, changes: Sequence[records.Change]) -> None:
        try:
            self._log_size += write_all(fd, blob)
        except OSError as exc:
            # A partial record left in place would be damage that every later load skips
            # and reports (in format 1 it ended the readable log). Cut it off, or stop
            # writing.
            try:
                if os.fstat(fd).st_size != self._log_size:
                    os.ftruncate(fd, self._log_size)
            except OSError as again:
                self._broken = (
                    f"{self.path}: a failed write ({exc.strerror}) left a partial record "
                    f"that could not be removed ({again.strerror}); reopen the store"
                )
                self._log.critical("{error}", error=self._broken)
            raise
        # Only now, with the record in the OS, memory shows it.
        self._apply(changes)
        self._written_seq += 1
        self._schedule_fsync()
        self._after_write()

    def _apply(self, changes: Sequence[records.Change]) -> None:
        # The data, its live size and the sorted keys; the index changes only for keys
        # that come or go (most writes replace a value).
        data = self._data
        if len(changes) == 1:
            key, packed = changes[0]
            was = key in data
            self._live_size += apply_changes(data, changes)
            if packed is None:
                if was:
                    self._index.remove(key)
            elif not was:
                self._index.add(key)
            return
        before = {key: key in data for key, _ in changes}
        self._live_size += apply_changes(data, changes)
        self._index.update(
            added=[key for key, was in before.items() if not was and key in data],
            removed=[key for key, was in before.items() if was and key not in data])

    def _schedule_fsync(self) -> None:
        if self._periodic_call is None:
            self._periodic_call = self._reactor.callLater(self._fsync_interval, self._periodic)

    def _after_write(self) -> None:
        if self._compaction is not None or self._stopping is not None or self._broken:
            return
        limit = max(self._compact_min_bytes, self._compact_ratio * self._live_size)
        if self._log_size > limit and self._reactor.seconds() >= self._compact_retry_at:
            self._start_compaction().addErrback(lambda _: None)  # logged by the compaction

    # -- fsync ---------------------------------------------------------------------------

    def sync(self) -> Deferred[None]:
        """Fires once everything written before the call is fsynced (in a thread)."""
        if self._fd is None:
            return fail(StoreClosed(f"{self.path}: store is not open"))
        return self._sync_to(self._written_seq)

    def _periodic(self) -> None:
        self._periodic_call = None
        if self._fd is not None and self._synced_seq < self._written_seq:
            self._sync_to(self._written_seq).addErrback(lambda _: None)  # logged in _synced

    def _sync_to(self, target: int, *, force: bool = False) -> Deferred[None]:
        d: Deferred[None] = Deferred()
        if self._swap_pending:
            # A compaction is about to rename: an fsync of the old file finishing before the
            # rename would vouch for writes the copy has not made durable yet. Wait for the
            # swap and fsync the new file.
            self._parked.append((target, d))
            return d
        if not force:
            if self._synced_seq >= target:
                return succeed(None)
            for job in self._inflight:
                if job.generation == self._generation and job.seq >= target:
                    job.waiters.append((target, d))
                    return d
        if self._fd is None:
            return fail(StoreClosed(f"{self.path}: store closed before the fsync"))
        try:
            fd = os.dup(self._fd)
        except OSError:
            return fail()
        directory = None if self._dir_durable else str(self.path.parent)
        job = _FsyncJob(self._generation, self._written_seq, directory is not None, [(target, d)])
        self._inflight.append(job)
        self._run_in_thread(lambda: fsync_and_close(fd, directory)).addBoth(self._synced, job)
        return d

    def _synced(self, result: object, job: _FsyncJob) -> None:
        self._inflight.remove(job)
        if isinstance(result, Failure):
            # After a failed fsync the kernel may have dropped dirty pages: say so loudly.
            self._log.error("fsync of {path} failed: {error}; recent writes may not survive a "
                            "power loss", path=str(self.path), error=str(result.value))
            for _, d in job.waiters:
                d.errback(result)
            return
        # A job dispatched before a swap was parked covers only writes that are in the
        # copy, which is fsynced before the rename; one on a replaced file covers nothing.
        if job.generation == self._generation:
            self._synced_seq = max(self._synced_seq, job.seq)
            if job.with_dir:
                self._dir_durable = True
        for target, d in job.waiters:
            if self._synced_seq >= target:
                d.callback(None)
            else:
                self._sync_to(target).chainDeferred(d)

    def _release_parked(self) -> None:
        parked, self._parked = self._parked, []
        for target, d in parked:
            self._sync_to(target).chainDeferred(d)

    # -- compaction ----------------------------------------------------------------------

    def compact(self) -> Deferred[None]:
        """Compact now (after the running compaction, if any); for tests and tools."""
        if self._fd is None or self._stopping is not None:
            return fail(StoreClosed(f"{self.path}: store is not open"))
        if self._broken is not None:
            return fail(StoreError(self._broken))
        if self._compaction is not None:
            return self._compaction.wait().addBoth(lambda _: self.compact())
        return self._start_compaction()

    def _start_compaction(self) -> Deferred[None]:
        completion = self._compaction = _Completion()

        def finished(result: object) -> object:
            self._compaction = None
            failure = result if isinstance(result, Failure) else None
            if failure is not None:
                self._compact_retry_at = self._reactor.seconds() + _COMPACT_RETRY
                self._log.error("compaction of {path} failed: {error}", path=str(self.path),
                                error=f"{type(failure.value).__name__}: {failure.value}")
            completion.fire(failure)
            return result

        return Deferred.fromCoroutine(self._compact()).addBoth(finished)

    async def _compact(self) -> None:
        fd = self._writable_fd()
        before = start = self._log_size
        snapshot = dict(self._data)  # packed bytes are immutable: safe to hand to a thread
        mode = 0o600 if self.secret else stat.S_IMODE(os.fstat(fd).st_mode)
        tmp = str(self._compact_path)
        new_fd, size = await self._run_in_thread(lambda: write_snapshot(tmp, snapshot, mode))
        renamed = False
        try:
            # Writes made while the snapshot was written went to the old log: copy them.
            fd = self._writable_fd()
            size += write_all(new_fd, pread_all(fd, start, self._log_size))
            start = self._log_size
            # From here no fsync of the old file starts (see _sync_to); those running cover
            # only what is in the copy, which the fsync below makes durable before the
            # rename can be.
            self._swap_pending = True
            await self._run_in_thread(lambda: os.fsync(new_fd))
            fd = self._writable_fd()
            size += write_all(new_fd, pread_all(fd, start, self._log_size))
            os.rename(tmp, self.path)
            renamed = True
            # O_APPEND from its creation, so the renamed file's fd serves as the log's fd.
            self._fd = new_fd
            self._log_size = size
            self._generation += 1
            self._dir_durable = False
            with contextlib.suppress(OSError):
                os.close(fd)
        finally:
            self._swap_pending = False
            if not renamed:
                os.close(new_fd)
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
            self._release_parked()
        self._log.info("compacted {path}: {before} -> {after} bytes", path=str(self.path),
                       before=before, after=size)
        # The rename is durable only with the directory: fsync it (and the file's tail).
        await self._sync_to(self._written_seq, force=True)

    # -- stopping ------------------------------------------------------------------------

    def stopService(self) -> Deferred[None]:
        """Wait for a running compaction, fsync what is left (in a thread), close."""
        Service.stopService(self)
        if self._stopping is not None:
            return self._stopping.wait()
        if self._fd is None:
            return succeed(None)
        stopping = self._stopping = _Completion()

        def closed(result: object) -> object:
            self._close_fd()
            stopping.fire(result if isinstance(result, Failure) else None)
            return result

        return Deferred.fromCoroutine(self._flush_for_close()).addBoth(closed)

    async def _flush_for_close(self) -> None:
        while self._compaction is not None:
            with contextlib.suppress(Exception):  # a failed compaction was logged
                await self._compaction.wait()
        # Writes are still accepted until the fd closes (other services stop at the same
        # time and may save their last state): fsync until nothing new came in.
        while self._fd is not None and self._synced_seq < self._written_seq:
            await self._sync_to(self._written_seq)

    def _close_fd(self) -> None:
        if self._periodic_call is not None and self._periodic_call.active():
            self._periodic_call.cancel()
        self._periodic_call = None
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)  # also releases the lock
            self._fd = None
            self._generation += 1  # an fsync still running covers nothing of a later open
        self._log.info("closed {path}", path=str(self.path))
