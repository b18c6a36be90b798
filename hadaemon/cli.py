"""The ``hadaemon`` command: ``run``, ``check``, ``reload``, ``plugins``, ``version``."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from typing import Any

from hadaemon._version import __version__


def main(argv: Sequence[str] | None = None) -> int:
    """Console-script entry point; returns the process exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    result: int = args.func(args)
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hadaemon",
        description="Home-automation plugin daemon: Node-BLUE Python nodes, zigbee2mqtt "
        "automations and microServiceBus-style services in one Twisted process.",
    )
    parser.add_argument("--version", action="version", version=f"hadaemon {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="run the daemon in the foreground")
    run.add_argument("--config", "-c", required=True, help="the TOML config file")
    run.set_defaults(func=_cmd_run)

    check = sub.add_parser("check", help="validate a config without starting anything")
    check.add_argument("--config", "-c", required=True, help="the TOML config file")
    check.add_argument("--quiet", "-q", action="store_true", help="print only problems")
    check.set_defaults(func=_cmd_check)

    reload = sub.add_parser(
        "reload", help="make the running daemon re-read its config (docs/reload.md)",
        description="Through the HTTP API (POST /api/reload) when the config enables the "
        "web plugin and an API token is at hand (--token or $HADAEMON_TOKEN); otherwise "
        "SIGHUP to the daemon's process, found by the pid file in its state directory, "
        "after checking the config here as hadaemon check does.")
    reload.add_argument("--config", "-c", required=True, help="the daemon's TOML config file")
    reload.add_argument("--url", help="the API's base URL (default: $HADAEMON_URL, the "
                        "config's [web])")
    reload.add_argument("--token", help="an API token (default: $HADAEMON_TOKEN)")
    reload.add_argument("--cafile", help="CA certificate to trust for https (self-signed)")
    reload.add_argument("--timeout", type=float, default=120.0,
                        help="seconds to wait for the API's answer (default 120)")
    reload.add_argument("--signal", action="store_true",
                        help="send SIGHUP even when the API could be used")
    reload.set_defaults(func=_cmd_reload)

    plugins = sub.add_parser("plugins", help="list the plugins a config can enable")
    plugins.add_argument("--config", "-c", required=True, help="the TOML config file")
    plugins.set_defaults(func=_cmd_plugins)

    version = sub.add_parser("version", help="print the version")
    version.set_defaults(func=_cmd_version)
    _add_plugin_commands(sub)
    return parser


COMMANDS_GROUP = "hadaemon.commands"


def _add_plugin_commands(sub: Any) -> None:
    # Adapters add their own subcommands (e.g. "hadaemon zigbee generate") through the
    # hadaemon.commands entry-point group: each is register(subparsers) -> None, and sets
    # func(args) -> int on its parsers.
    from importlib.metadata import entry_points

    for ep in sorted(entry_points(group=COMMANDS_GROUP), key=lambda e: e.name):
        try:
            ep.load()(sub)
        except Exception as exc:  # a broken adapter must not break the other commands
            print(f"hadaemon: command {ep.name!r} unavailable: {exc}", file=sys.stderr)


def _cmd_version(args: argparse.Namespace) -> int:
    print(f"hadaemon {__version__}")
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    status, enabled = _check(args.config)
    if status == 0 and not args.quiet:
        print(f"{args.config}: OK ({', '.join(enabled) or 'no plugins'})")
    return status


def _check(config: str) -> tuple[int, list[str]]:
    # hadaemon check's checks and messages (stderr); the enabled plugins if it passes.
    from hadaemon.app import prepare
    from hadaemon.config import ConfigErrors

    try:
        prepared = prepare(config, strict=True)
    except ConfigErrors as exc:
        for error in exc.errors:
            print(error, file=sys.stderr)
        return 1, []
    for warning in prepared.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for problem in prepared.errors:
        print(problem, file=sys.stderr)
    if prepared.errors:
        print(f"{config}: {len(prepared.errors)} error(s)", file=sys.stderr)
        return 1, []
    return 0, list(prepared.config.core.plugins)


def _cmd_reload(args: argparse.Namespace) -> int:
    from hadaemon.reload.command import (
        ReloadError,
        daemon_pid,
        reload_through_api,
        send_sighup,
        uses_api,
    )

    try:
        if not args.signal and uses_api(args):
            return reload_through_api(args)
        pid = daemon_pid(args.config)  # first: no daemon, no need to check
        status, _enabled = _check(args.config)
        if status:
            print(f"hadaemon reload: {args.config} is refused (as above); nothing sent, the "
                  "daemon keeps its running config", file=sys.stderr)
            return status
        send_sighup(pid)
    except ReloadError as exc:
        print(f"hadaemon reload: {exc}", file=sys.stderr)
        return 1
    print(f"sent SIGHUP to the daemon (pid {pid}): it re-reads {args.config} and logs what "
          "it applied")
    return 0


def _cmd_plugins(args: argparse.Namespace) -> int:
    from hadaemon.app import prepare
    from hadaemon.config import ConfigErrors
    from hadaemon.plugin import describe

    try:
        prepared = prepare(args.config, strict=False)
    except ConfigErrors as exc:
        print(exc, file=sys.stderr)
        return 1
    enabled = {name: True for name in prepared.config.core.plugins}
    for line in describe(prepared.catalog, enabled):
        print(line)
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    # The asyncio reactor goes in before anything can import the default one.
    from hadaemon.reactor import install_asyncio_reactor

    reactor = install_asyncio_reactor()

    from twisted.logger import globalLogBeginner

    from hadaemon.app import add_file_log, prepare
    from hadaemon.config import ConfigErrors
    from hadaemon.daemon import Daemon
    from hadaemon.logs import get_logger, make_output_observer

    try:
        prepared = prepare(args.config, strict=False)
        prepared.raise_for_errors()
    except ConfigErrors as exc:
        for line in str(exc).splitlines():
            print(line.lstrip(": "), file=sys.stderr)
        return 1
    config = prepared.config
    if config.core.log_file == "-":
        globalLogBeginner.beginLoggingTo(
            [make_output_observer(config.core.log_format, sys.stdout)],
            redirectStandardIO=False,
        )
    else:
        globalLogBeginner.beginLoggingTo([], redirectStandardIO=False)
        add_file_log(config)
    log = get_logger("hadaemon.cli")
    for warning in prepared.warnings:
        log.warn("{warning}", warning=warning)
    daemon = Daemon(config, reactor, catalog=prepared.catalog, owns_process=True)
    status = {"code": 0}

    def startup_failed(failure: Any) -> None:
        status["code"] = 1  # the daemon already stopped the reactor

    daemon.started.addErrback(startup_failed)
    reactor.addSystemEventTrigger("before", "shutdown", daemon.stopService)
    reactor.callWhenRunning(_install_signal_handlers, reactor, log)
    daemon.startService()
    reactor.run()
    return status["code"]


def _install_signal_handlers(reactor: Any, log: Any) -> None:
    # Twisted's own handlers ignore a second Ctrl+C while stopping; people expect it to
    # force the exit, so the second SIGINT/SIGTERM ends the process at once.
    received: list[int] = []

    def handler(signum: int, _frame: object) -> None:
        received.append(signum)
        if len(received) == 1:
            name = signal.Signals(signum).name
            reactor.callFromThread(_stop, reactor, log, name)
        else:
            import os

            os.write(2, b"hadaemon: second signal, exiting without a clean stop\n")
            os._exit(128 + signum)

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def _stop(reactor: Any, log: Any, name: str) -> None:
    log.info("received {signal}, stopping", signal=name)
    if reactor.running:
        reactor.stop()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
