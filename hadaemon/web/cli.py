"""``hadaemon status``, ``hadaemon get`` and ``hadaemon set``: the daemon through its HTTP
API, as any script would use it (an API token, ``Authorization: Bearer``).

The token comes from ``--token`` or the ``HADAEMON_TOKEN`` environment variable; the
address from ``--url``, else from the config's ``[web]`` section (``--config``), else
``http://127.0.0.1:8480``. Plain standard library: no Twisted is imported.
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import sys
import tomllib
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote

ENV_TOKEN = "HADAEMON_TOKEN"
ENV_URL = "HADAEMON_URL"
DEFAULT_URL = "http://127.0.0.1:8480"


class CliError(Exception):
    """What to print before exiting with status 1."""


def register(subparsers: Any) -> None:
    """Add ``hadaemon status``, ``hadaemon get`` and ``hadaemon set``."""
    status = subparsers.add_parser("status", help="the running daemon's status (HTTP API)")
    _common(status)
    status.add_argument("--json", action="store_true", help="print the API's JSON")
    status.set_defaults(func=_guarded(_cmd_status))

    get = subparsers.add_parser(
        "get", help="read a variable (HTTP API)",
        description="VARIABLE is a system variable's name, or PEER/CHANNEL/NAME for a "
        "device's variable (e.g. 2/0/state).")
    _common(get)
    get.add_argument("variable")
    get.set_defaults(func=_guarded(_cmd_get))

    put = subparsers.add_parser(
        "set", help="write a variable (HTTP API)",
        description="VALUE is JSON (true, 42, 21.5, \"text\", [1, 2]); anything that is "
        "not JSON is taken as a string. A system variable that does not exist is created.")
    _common(put)
    put.add_argument("variable")
    put.add_argument("value")
    put.add_argument("--confirm", action="store_true",
                     help="wait until the device reported the value")
    put.set_defaults(func=_guarded(_cmd_set))


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-c", help="the daemon's TOML config (its [web] address)")
    parser.add_argument("--url", help=f"the API's base URL (default: ${ENV_URL}, the "
                        f"config's [web], or {DEFAULT_URL})")
    parser.add_argument("--token", help=f"an API token (default: ${ENV_TOKEN}); create one "
                        "with `hadaemon token create NAME`")
    parser.add_argument("--cafile", help="CA certificate to trust for https (self-signed)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds (default 30)")


def _guarded(command: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            return int(command(args))
        except CliError as exc:
            print(f"hadaemon {args.command}: {exc}", file=sys.stderr)
            return 1
    return run


def base_url(args: argparse.Namespace, environ: Any = os.environ) -> str:
    """Where the API is: --url, $HADAEMON_URL, the config's [web] section, the default."""
    if args.url:
        return str(args.url).rstrip("/")
    if environ.get(ENV_URL):
        return str(environ[ENV_URL]).rstrip("/")
    if args.config:
        try:
            with open(args.config, "rb") as file:
                web = tomllib.load(file).get("web", {})
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise CliError(f"cannot read {args.config}: {exc}") from None
        address = web.get("address", "127.0.0.1")
        if not isinstance(address, str) or address in ("0.0.0.0", "::"):
            address = "127.0.0.1"
        host = f"[{address}]" if ":" in address else address
        port = web.get("port", 8480)
        scheme = "https" if web.get("tls_cert") else "http"
        return f"{scheme}://{host}:{port}"
    return DEFAULT_URL


def call(args: argparse.Namespace, method: str, path: str, body: Any = None,
         environ: Any = os.environ) -> Any:
    """One API call; CliError naming the problem (the API's own message on errors)."""
    url = base_url(args, environ) + path
    token = args.token or environ.get(ENV_TOKEN)
    if not token:
        raise CliError(f"no API token: pass --token or set {ENV_TOKEN} (create one with "
                       "`hadaemon token create NAME --config FILE` while the daemon is "
                       "stopped)")
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={
        "Authorization": f"Bearer {token}", "Accept": "application/json",
        **({"Content-Type": "application/json"} if data is not None else {}),
    })
    context = ssl.create_default_context(cafile=args.cafile) if url.startswith("https") else None
    try:
        with urllib.request.urlopen(request, timeout=args.timeout, context=context) as answer:
            return json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as exc:
        try:
            error = json.loads(exc.read())
            text = f"{error['error']}: {error['message']}"
        except (ValueError, KeyError, TypeError):
            text = exc.reason
        raise CliError(f"{method} {path}: {exc.code} {text}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CliError(f"cannot reach the daemon at {base_url(args, environ)}: {reason} (is "
                       "it running, with \"web\" in [daemon].plugins?)") from None


def variable_path(variable: str) -> str:
    """The API path of ``name`` (a system variable) or ``peer/channel/name``."""
    parts = variable.split("/", 2)
    if len(parts) == 3 and parts[0].lstrip("-").isdigit() and parts[1].lstrip("-").isdigit():
        return f"/api/devices/{parts[0]}/{parts[1]}/{quote(parts[2], safe='')}"
    if not variable:
        raise CliError("the variable's name is empty")
    return f"/api/sysvars/{quote(variable, safe='')}"


def parse_value(text: str) -> Any:
    """JSON if it is JSON, else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _cmd_status(args: argparse.Namespace) -> int:
    status = call(args, "GET", "/api/status")
    if args.json:
        print(json.dumps(status, indent=2))
        return 0
    print(f"{status['name']}: up {_duration(status['uptime'])}, hadaemon "
          f"{status['versions']['hadaemon']} (Python {status['versions']['python']}, "
          f"Twisted {status['versions']['twisted']})")
    for plugin in status["plugins"]:
        error = f": {plugin['error']}" if plugin.get("error") else ""
        print(f"  {plugin['name']:<24} {plugin['state']}{error}")
    counts = status["counts"]
    print("  " + ", ".join(f"{value} {name.replace('_', ' ')}" for name, value in counts.items()))
    lag = status["reactor"]["lag"]
    if lag.get("p99") is not None:
        print(f"  reactor lag: p50 {lag['p50'] * 1000:.1f} ms, p99 {lag['p99'] * 1000:.1f} ms, "
              f"max {lag['max'] * 1000:.1f} ms")
    for error in status["recent_errors"][-5:]:
        print(f"  ! {error['source']}: {error['message']}")
    return 0 if all(p["state"] == "running" for p in status["plugins"]) else 3


def _cmd_get(args: argparse.Namespace) -> int:
    answer = call(args, "GET", variable_path(args.variable))
    print(json.dumps(answer.get("value"), ensure_ascii=False))
    return 0


def _cmd_set(args: argparse.Namespace) -> int:
    path = variable_path(args.variable)
    body: dict[str, Any] = {"value": parse_value(args.value)}
    if args.confirm and path.startswith("/api/devices/"):
        body["confirm"] = True
    answer = call(args, "PUT", path, body)
    print(json.dumps(answer.get("value"), ensure_ascii=False))
    return 0


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    return (f"{days}d " if days else "") + f"{hours:02d}:{minutes:02d}:{secs:02d}"
