"""The store's file primitives: whole writes and reads, the lock, fsync, a snapshot file.

Plain functions on file descriptors, safe to run in a thread (fsync and the snapshot of a
compaction do); they know records only to write a snapshot.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os

from hadaemon.store import records
from hadaemon.store.errors import StoreLocked

CHUNK = 1 << 20


def write_all(fd: int, data: bytes) -> int:
    written = 0
    while written < len(data):  # a regular file writes short only when the disk is full
        written += os.write(fd, memoryview(data)[written:]) or _raise(errno.ENOSPC)
    return written


def _raise(code: int) -> int:
    raise OSError(code, os.strerror(code))


def pread_all(fd: int, start: int, end: int) -> bytes:
    parts = []
    while start < end:
        parts.append(os.pread(fd, min(CHUNK, end - start), start))
        start += len(parts[-1]) or _raise(errno.EIO)
    return b"".join(parts)


def lock(fd: int, path: str) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise StoreLocked(f"{path} is in use by another process") from None


def fsync_and_close(fd: int, directory: str | None = None) -> None:
    """fsync and close ``fd``, then ``directory``: a rename must not become durable before
    the data it names."""
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    if directory is not None:
        fsync_and_close(os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))


def write_snapshot(path: str, snapshot: dict[str, bytes], mode: int) -> tuple[int, int]:
    """Thread side of a compaction: the live data as a new log, fsynced, fd left open."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, mode)
    try:
        os.fchmod(fd, mode)  # exactly the log's mode (0600 for secrets), whatever the umask
        lock(fd, path)  # it becomes the log: hold the lock before anyone can open it
        puts = (records.encode_put(key, packed) for key, packed in snapshot.items())
        size = write_all(fd, b"".join([records.HEADER, *puts]))
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
    return fd, size
