"""twistd's view of hadaemon: ``twistd [-n] hadaemon --config FILE``.

Importing this module installs the asyncio reactor: twistd imports it while parsing the
command line, before it imports the default reactor (``-r asyncio`` works too; any other
reactor is refused with a clear error).
"""

from __future__ import annotations

from typing import Any

from twisted.python import usage

from hadaemon.reactor import WrongReactorError, install_asyncio_reactor

try:
    _reactor = install_asyncio_reactor()
except WrongReactorError as _exc:
    _install_error: WrongReactorError | None = _exc
else:
    _install_error = None


class Options(usage.Options):
    """Command-line options of ``twistd hadaemon``."""

    optParameters = [
        ["config", "c", None, "The TOML config file (required)."],
    ]

    def postOptions(self) -> None:
        if _install_error is not None:
            raise usage.UsageError(str(_install_error))
        if not self["config"]:
            raise usage.UsageError("--config FILE is required")
        from hadaemon.app import prepare
        from hadaemon.config import ConfigErrors

        try:
            prepared = prepare(self["config"], strict=False)
        except ConfigErrors as exc:
            raise usage.UsageError(str(exc)) from None
        if prepared.errors:
            raise usage.UsageError("\n".join(prepared.errors))
        self.prepared = prepared


def makeService(options: Options) -> Any:
    """Build the daemon service; twistd starts it after daemonizing."""
    from hadaemon.app import add_file_log
    from hadaemon.daemon import Daemon
    from hadaemon.logs import get_logger

    prepared = options.prepared
    add_file_log(prepared.config)
    log = get_logger("hadaemon.tap")
    for warning in prepared.warnings:
        log.warn("{warning}", warning=warning)
    # Under twistd, code is not watched unless [daemon].reload says so (docs/reload.md).
    return Daemon(prepared.config, _reactor, catalog=prepared.catalog, owns_process=True,
                  reload_default="off")
