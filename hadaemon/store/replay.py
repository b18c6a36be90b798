"""Loading a store's log: replay its records into memory, and repair what is damaged.

Damaged records are skipped and their bytes saved aside (fsynced) before the log changes:
a torn tail is cut off; damage that records follow, or a format 1 log, is replaced by a
snapshot of what loaded, crash-safe like a compaction (see docs/store.md).
"""

from __future__ import annotations

import contextlib
import errno
import os
import pathlib
import stat
import time
from collections.abc import Sequence

from twisted.logger import Logger

from hadaemon.store import records
from hadaemon.store.errors import StoreError, StoreFormatError
from hadaemon.store.files import CHUNK, fsync_and_close, pread_all, write_all, write_snapshot

_MAX_DAMAGE_WARNINGS = 20  # one warning each; the rest of a badly damaged log is summed up
# The live size only steers compaction: an estimate of the snapshot's record sizes will do.
_ENTRY_OVERHEAD = 16


def apply_changes(data: dict[str, bytes], changes: Sequence[records.Change]) -> int:
    """Apply ``changes`` to ``data``; returns how much the live size grew (or shrank)."""
    grown = 0
    for key, packed in changes:
        old = data.pop(key, None)
        if old is not None:
            grown -= len(key) + len(old) + _ENTRY_OVERHEAD
        if packed is not None:
            data[key] = packed
            grown += len(key) + len(packed) + _ENTRY_OVERHEAD
    return grown


class LogLoader:
    """Loads one log file at open; the store takes ``data``, the sizes and the fd after."""

    def __init__(
        self, path: pathlib.Path, compact_path: pathlib.Path, *, secret: bool, log: Logger,
        warnings: list[str],
    ) -> None:
        self.path = path
        self.secret = secret
        self.load_warnings = warnings  # the store's own list: kept if loading fails
        self.data: dict[str, bytes] = {}
        self.live_size = 0
        self.log_size = 0
        self.dir_durable = True
        self._compact_path = compact_path
        self._log = log

    def _apply(self, changes: Sequence[records.Change]) -> None:
        self.live_size += apply_changes(self.data, changes)

    def load(self, fd: int) -> int:
        """Replay the log into memory; returns the fd to append to (a rewrite swaps it)."""
        head = os.pread(fd, records.HEADER_SIZE, 0)
        try:
            version = records.read_header(head)
        except records.FormatError as exc:
            raise StoreFormatError(f"{self.path}: {exc}") from None
        if version is None:
            # Empty, or its creation was cut short: nothing was ever stored in it.
            os.ftruncate(fd, 0)
            self.log_size = write_all(fd, records.HEADER)
            self.dir_durable = False  # the new name must reach the disk too
            return fd
        decoder = records.RecordDecoder(records.HEADER_SIZE, version)
        end = records.HEADER_SIZE
        while chunk := os.pread(fd, CHUNK, end):
            end += len(chunk)
            for record in decoder.feed(chunk):
                self._apply(record.changes)
        for record in decoder.finish():
            self._apply(record.changes)
        self.log_size = end
        damage = decoder.damage
        if damage:
            self._save_damage(fd, damage, end)
        tail = damage[-1].offset if damage and damage[-1].offset + damage[-1].size == end else end
        if version != records.VERSION or any(d.offset < tail for d in damage):
            # An old format, or damage that records follow: write what loaded as a new log,
            # as a compaction would, so the damage is neither reported nor saved again.
            return self._rewrite(fd)
        if tail < end:
            # Appends after a torn record would follow bytes that are not a record.
            os.ftruncate(fd, tail)
            os.fsync(fd)
            self.log_size = tail
        return fd

    def _save_damage(self, fd: int, damage: list[records.Damage], end: int) -> None:
        """Copy the damaged bytes to ``<file>.corrupt-<time>`` (fsynced) and warn; before
        anything changes the log, so the damaged bytes are never just dropped."""
        base = f"{self.path}.corrupt-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        total = sum(d.size for d in damage)
        try:
            for name in [base, *(f"{base}.{n}" for n in range(1, 1000))]:
                with contextlib.suppress(FileExistsError):
                    out = os.open(name, flags, 0o600 if self.secret else 0o666)
                    break
            else:
                raise OSError(errno.EEXIST, "no free file name")
            try:
                for d in damage:
                    write_all(out, pread_all(fd, d.offset, d.offset + d.size))
            except BaseException:
                os.close(out)
                raise
            fsync_and_close(out, str(self.path.parent))
        except OSError as exc:
            raise StoreError(
                f"{self.path}: damaged records at offset {damage[0].offset}, and their {total} "
                f"bytes could not be saved aside ({exc.strerror}); not opening, so nothing is "
                "lost"
            ) from None
        saved_at = 0
        for d in damage[:_MAX_DAMAGE_WARNINGS]:
            where = name if saved_at == 0 else f"{name} (from its byte {saved_at})"
            saved_at += d.size
            if d.offset + d.size == end:
                warning = (
                    f"{self.path}: corrupt or truncated record at offset {d.offset} ({d.size} "
                    f"bytes ignored: {d.reason}); the damaged tail was saved to {where}"
                )
            else:
                warning = (
                    f"{self.path}: damaged record at offset {d.offset} ({d.size} bytes "
                    f"skipped: {d.reason}); the records after it were loaded; the damaged "
                    f"bytes were saved to {where}"
                )
            self._warn_on_load(warning)
        if len(damage) > _MAX_DAMAGE_WARNINGS:
            rest = damage[_MAX_DAMAGE_WARNINGS:]
            self._warn_on_load(
                f"{self.path}: {len(rest)} more damaged places from offset {rest[0].offset} on "
                f"({sum(d.size for d in rest)} bytes skipped); saved to {name} too"
            )

    def _warn_on_load(self, warning: str) -> None:
        self.load_warnings.append(warning)
        self._log.warn("{warning}", warning=warning)

    def _rewrite(self, fd: int) -> int:
        """Replace the log by a snapshot of what loaded, crash-safe like a compaction: the
        copy is complete and fsynced before the rename; the old log is whole until then."""
        tmp = str(self._compact_path)
        mode = 0o600 if self.secret else stat.S_IMODE(os.fstat(fd).st_mode)
        try:
            new_fd, size = write_snapshot(tmp, self.data, mode)
            try:
                os.rename(tmp, self.path)
            except BaseException:
                os.close(new_fd)
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError as exc:
            raise StoreError(
                f"{self.path}: could not rewrite the log after loading it ({exc.strerror}); "
                "not opening, the log is left as it was"
            ) from None
        os.close(fd)  # the old file's lock goes with it; the new one holds its own
        self.dir_durable = False  # the first fsync after open makes the rename durable
        self._log.info("rewrote {path} in format version {version}: {before} -> {after} bytes",
                       path=str(self.path), version=records.VERSION, before=self.log_size,
                       after=size)
        self.log_size = size
        return new_fd
