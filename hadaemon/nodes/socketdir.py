"""Where the node socket lives: a private directory (mode 0700, ours), a path short
enough for a Unix socket, and no stale socket left by a killed daemon."""

from __future__ import annotations

import os
import pathlib
import socket
import stat
import tempfile

SOCKET_NAME = "nodes.sock"
_MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes on Linux; keep a margin


def socket_directory(
    configured: pathlib.Path | None, state_dir: pathlib.Path
) -> tuple[pathlib.Path, bool]:
    """The socket's directory, mode 0700; True if it is a temporary one to remove."""
    if configured is not None:
        directory = pathlib.Path(configured)
        if len(str(directory / SOCKET_NAME)) > _MAX_SOCKET_PATH:
            raise ValueError(f"[nodes].socket_dir {directory}: the socket path would be "
                             f"longer than {_MAX_SOCKET_PATH} bytes (a Unix socket limit)")
        _private_directory(directory)
        return directory, False
    directory = state_dir / "run"
    if len(str(directory / SOCKET_NAME)) <= _MAX_SOCKET_PATH:
        _private_directory(directory)
        return directory, False
    # The state directory is too deep for a Unix socket path: use a private temp dir.
    base = os.environ.get("XDG_RUNTIME_DIR") or None
    return pathlib.Path(tempfile.mkdtemp(prefix="hadaemon-nodes-", dir=base)), True


def _private_directory(directory: pathlib.Path) -> None:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = directory.stat()
    if info.st_uid != os.geteuid():
        raise PermissionError(f"{directory} belongs to uid {info.st_uid}, not to the daemon")
    if stat.S_IMODE(info.st_mode) != 0o700:
        os.chmod(directory, 0o700)


def clear_stale_socket(path: pathlib.Path) -> None:
    """Remove a socket left by a killed daemon; refuse one that still answers."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise FileExistsError(f"{path} exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError:
        path.unlink()
        return
    finally:
        probe.close()
    raise FileExistsError(f"{path} is in use by another running daemon")


__all__ = ["SOCKET_NAME", "clear_stale_socket", "socket_directory"]
