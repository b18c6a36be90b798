"""Hot reload: watched code and a re-read config applied to the running daemon
(docs/reload.md). Plugins take part through :mod:`hadaemon.reload.interfaces`."""

from hadaemon.reload.errors import CodeError, code_error, report_code_error
from hadaemon.reload.interfaces import Reconfigurable, RestartNeeded, WatchesFiles
from hadaemon.reload.reloader import Reloader, ReloadResult
from hadaemon.reload.watcher import FileWatcher

__all__ = [
    "CodeError",
    "FileWatcher",
    "Reconfigurable",
    "ReloadResult",
    "Reloader",
    "RestartNeeded",
    "WatchesFiles",
    "code_error",
    "report_code_error",
]
