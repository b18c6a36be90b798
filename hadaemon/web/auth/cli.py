"""``hadaemon passwd`` and ``hadaemon token``: the admin password and API tokens.

Registered through the ``hadaemon.commands`` entry-point group. Both open the config's
credentials store directly, so they work while the daemon is stopped; a running daemon
holds the store's lock, and then they say so and exit with status 1 (a running daemon
creates tokens through its HTTP API instead). Nothing here runs a reactor: the store's
writes are synchronous, and it is fsynced and closed before the command exits.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import getpass
import json
import os
import pathlib
import sys
import time
from collections.abc import Iterator
from typing import Any

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.task import Clock

from hadaemon.store import Store, StoreError, StoreLocked
from hadaemon.web.auth.errors import AuthError
from hadaemon.web.auth.passwords import ENV_PASSWORD, check_new_password
from hadaemon.web.auth.webauth import WebAuth


class CommandError(Exception):
    """A problem the command reports on stderr before exiting with status 1."""


def register_passwd(subparsers: Any) -> None:
    """Add ``hadaemon passwd``."""
    passwd = subparsers.add_parser(
        "passwd", help="set the admin password of the HTTP API (daemon stopped)",
        description="Set the admin password of the HTTP API. It is stored only as a "
        "salted scrypt hash in the credentials store of the config's state directory.")
    passwd.add_argument("--config", "-c", required=True, help="the daemon's TOML config")
    passwd.add_argument("--stdin", action="store_true",
                        help="read the password from the first line of stdin (scripts)")
    passwd.set_defaults(func=_guarded(_cmd_passwd))


def register_token(subparsers: Any) -> None:
    """Add ``hadaemon token create|list|revoke``."""
    token = subparsers.add_parser(
        "token", help="create, list and revoke API tokens (daemon stopped)",
        description="API tokens for scripts, sent as 'Authorization: Bearer <token>'.")

    def usage(_args: argparse.Namespace) -> int:
        token.print_help()
        return 2

    token.set_defaults(func=usage)
    sub = token.add_subparsers(dest="token_command", metavar="COMMAND")
    create = sub.add_parser("create", help="create a token; prints it once, on stdout")
    create.add_argument("name", help="what the token is for, e.g. 'backup script'")
    create.set_defaults(func=_guarded(_cmd_create))
    listing = sub.add_parser("list", help="list the tokens (never their secrets)")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(func=_guarded(_cmd_list))
    revoke = sub.add_parser("revoke", help="revoke a token by its id")
    revoke.add_argument("id", help="the token's id, as `hadaemon token list` shows it")
    revoke.set_defaults(func=_guarded(_cmd_revoke))
    for parser in (create, listing, revoke):
        parser.add_argument("--config", "-c", required=True, help="the daemon's TOML config")


def _guarded(command: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            result: int = command(args)
        except (CommandError, AuthError) as exc:
            print(f"hadaemon {args.command}: {exc}", file=sys.stderr)
            return 1
        return result

    return run


# -- the commands ---------------------------------------------------------------------


def _cmd_passwd(args: argparse.Namespace) -> int:
    password = _read_password(args.stdin)
    with _opened(args.config, args.command) as (auth, path):
        auth.set_password(password)
    print(f"admin password set (stored as a scrypt hash in {path})")
    if os.environ.get(ENV_PASSWORD):
        print(f"note: {ENV_PASSWORD} is set here; a daemon started with it uses that "
              "password, not the stored one", file=sys.stderr)
    return 0


def _cmd_create(args: argparse.Namespace) -> int:
    with _opened(args.config, args.command) as (auth, _path):
        token_id, token = auth.create_token(args.name)
    print(token)
    print(f"created API token {token_id} ({args.name.strip()}); it is shown only this once: "
          "send it as 'Authorization: Bearer <token>'", file=sys.stderr)
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    with _opened(args.config, args.command) as (auth, _path):
        tokens = auth.tokens()
    if args.json:
        print(json.dumps(tokens, indent=2))
    elif not tokens:
        print("no API tokens")
    else:
        rows = [("ID", "NAME", "CREATED", "LAST USED")]
        rows += [(str(t["id"]), str(t["name"]), _when(t["created"]), _when(t["last_used"]))
                 for t in tokens]
        widths = [max(len(row[i]) for row in rows) for i in range(3)]
        for row in rows:
            cells = [row[i].ljust(widths[i]) for i in range(3)]
            print("  ".join([*cells, row[3]]))
    return 0


def _cmd_revoke(args: argparse.Namespace) -> int:
    with _opened(args.config, args.command) as (auth, _path):
        revoked = auth.revoke_token(args.id)
    if not revoked:
        raise CommandError(f"no API token has the id {args.id!r} (see `hadaemon token list`)")
    print(f"revoked API token {args.id}")
    return 0


# -- helpers --------------------------------------------------------------------------


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        password = line[:-1] if line.endswith("\n") else line
        password = password[:-1] if password.endswith("\r") else password
    else:
        if not sys.stdin.isatty():
            raise CommandError("stdin is not a terminal: give the password with --stdin")
        password = getpass.getpass("New admin password: ")
        if getpass.getpass("The same again: ") != password:
            raise CommandError("the two passwords differ; nothing was changed")
    problem = check_new_password(password)
    if problem is not None:
        raise CommandError(f"{problem}; nothing was changed")
    return password


class _WallClock(Clock):
    """A clock that never runs calls but tells the real time (tokens' created dates)."""

    def seconds(self) -> float:
        return time.time()


@contextlib.contextmanager
def _opened(config_path: str, command: str) -> Iterator[tuple[WebAuth, pathlib.Path]]:
    """WebAuth over the config's credentials store (and its path); fsynced and closed
    afterwards."""
    state_dir, fsync_interval = _state_dir(config_path)
    path = state_dir / "credentials.db"
    clock = _WallClock()
    store = Store(path, reactor=clock, secret=True, fsync_interval=fsync_interval,
                  run_in_thread=maybeDeferred)
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        store.open()
    except StoreLocked:
        advice = (" (while it runs, manage tokens through its HTTP API: POST /api/tokens)"
                  if command == "token" else "")
        raise CommandError(f"{path} is locked: the daemon for {config_path} is running and "
                           f"holds its credentials store. Stop it, then run this again"
                           f"{advice}") from None
    except (StoreError, OSError) as exc:
        raise CommandError(f"cannot open the credentials store: {exc}") from None
    try:
        yield WebAuth(store, reactor=clock, secure=False), path
    finally:
        _wait(store.stopService())


def _wait(d: Deferred[None]) -> None:
    # The store's thread runner is synchronous here, so its Deferreds have fired already.
    failures: list[Any] = []
    d.addErrback(failures.append)
    if failures:
        raise CommandError(f"cannot write the credentials store: "
                           f"{failures[0].getErrorMessage()}")


def _state_dir(config_path: str) -> tuple[pathlib.Path, float]:
    from hadaemon.config import ConfigErrors, read, validate_core

    try:
        raw = read(config_path)
    except ConfigErrors as exc:
        raise CommandError(str(exc)) from None
    core, errors = validate_core(raw)
    if errors:
        raise CommandError("\n".join(str(e) for e in errors))
    return core.state_dir, core.fsync_interval


def _when(value: object) -> str:
    if not isinstance(value, int | float):
        return "never"
    moment = datetime.datetime.fromtimestamp(value, datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%SZ")
