"""``hadaemon zigbee ...``: generate the typed module, run one automation, record traffic.

Registered through the ``hadaemon.commands`` entry-point group (``register(subparsers)``).

- ``hadaemon zigbee generate``: the typed ``pyziggy_autogenerate/available_devices.py``
  from the live broker (the daemon's ``[mqtt]`` and ``[zigbee2mqtt]`` settings) or from a
  saved ``bridge/devices`` file; rewritten only when it changes.
- ``hadaemon zigbee run FILE``: what ``pyziggy run`` does: write a starter automation if
  FILE is missing, generate next to it, type-check it, run it. There
  ``message_loop.stop()`` flushes pending sets and ends the process with its code.
- ``hadaemon zigbee record FILE``: record the network's MQTT traffic for the test kit.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import pathlib
import sys
import tempfile
from collections.abc import Callable, Sequence
from typing import Any

STARTER = '''"""A hadaemon zigbee automation (pyziggy style): edit me.

Run it with: hadaemon zigbee run {name} --config {config}
"""

from pyziggy.message_loop import MessageLoopTimer, message_loop
from pyziggy_autogenerate.available_devices import AvailableDevices

devices = AvailableDevices()


def on_connect() -> None:
    print("connected; devices:", ", ".join(d.name for d in devices.get_devices()))
    stop_timer.start(1.0)


def stop(timer: MessageLoopTimer) -> None:
    timer.stop()
    message_loop.stop()


stop_timer = MessageLoopTimer(stop)
devices.on_connect.add_listener(on_connect)
'''


def register(subparsers: Any) -> None:
    """Add ``hadaemon zigbee`` and its subcommands."""
    zigbee = subparsers.add_parser("zigbee", help="zigbee2mqtt: generate, run, record")
    _populate(zigbee)


def _populate(parser: argparse.ArgumentParser) -> None:
    def usage(_args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    parser.set_defaults(func=usage)
    sub = parser.add_subparsers(dest="zigbee_command", metavar="COMMAND")

    gen = sub.add_parser("generate", help="write the typed AvailableDevices module")
    gen.add_argument("--config", "-c", help="the daemon's TOML config (broker settings)")
    gen.add_argument("--from", dest="source", help="a saved bridge/devices JSON file")
    gen.add_argument("--groups", help="a saved bridge/groups JSON file (with --from)")
    gen.add_argument("--output", "-o", default=".",
                     help="directory for pyziggy_autogenerate/ (default: .)")
    gen.add_argument("--timeout", type=float, default=10.0,
                     help="seconds to wait for bridge/devices from the broker")
    gen.set_defaults(func=_cmd_generate)

    run = sub.add_parser("run", help="generate, type-check and run one automation")
    run.add_argument("file", help="the automation (a starter is written if it is missing)")
    run.add_argument("--config", "-c", help="the daemon's TOML config "
                     "(default: hadaemon.toml next to FILE)")
    run.add_argument("--skip_initial_query", "--skip-initial-query", action="store_true",
                     help="do not query the devices on connect")
    run.add_argument("--no-typecheck", action="store_true", help="do not run mypy first")
    run.add_argument("--no-generate", action="store_true",
                     help="use the existing generated module")
    run.add_argument("--verbose", "-v", action="store_true", help="debug logging")
    run.set_defaults(func=_cmd_run)

    rec = sub.add_parser("record", help="record zigbee2mqtt traffic for the test kit")
    rec.add_argument("output", help="the traffic log to write")
    rec.add_argument("--config", "-c", required=True, help="the daemon's TOML config")
    rec.add_argument("--seconds", type=float, default=30.0, help="how long to record")
    rec.set_defaults(func=_cmd_record)


def main(argv: Sequence[str] | None = None) -> int:
    """``hadaemon zigbee`` on its own (used by pyziggy's ``pyziggy([...])``)."""
    parser = argparse.ArgumentParser(prog="hadaemon zigbee")
    _populate(parser)
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


# -- shared helpers -----------------------------------------------------------------------


def _load_config(path: str | None, *, overrides: Callable[[dict[str, Any]], None] | None = None
                 ) -> Any:
    """The daemon's config with its plugins; ours are known even when the package's entry
    points are not installed (a source checkout)."""
    from hadaemon.app import Prepared
    from hadaemon.config import ConfigErrors, read, validate, validate_core
    from hadaemon.mqtt import MqttService
    from hadaemon.plugin import PluginInfo, discover
    from hadaemon.zigbee.plugin import ZigbeeAdapter
    from hadaemon.zigbee.simulator_plugin import SimulatorPlugin

    if path is None:
        raise SystemExit("hadaemon zigbee: --config is needed (the daemon's TOML config)")
    try:
        raw = read(path)
        data = json.loads(json.dumps(raw.data, default=str))
        if overrides is not None:
            overrides(data)
        raw = read(data, base_dir=raw.base_dir)
        core, _errors = validate_core(raw)
        catalog = discover(core.plugin_dirs)
        for factory in (MqttService, ZigbeeAdapter, SimulatorPlugin):
            if factory.name not in catalog.plugins:
                catalog.plugins[factory.name] = PluginInfo(
                    factory.name, factory, factory.schema, f"{factory.__module__}")
        config, errors = validate(raw, catalog.schemas())
        if errors:
            raise ConfigErrors(errors)
    except ConfigErrors as exc:
        print(str(exc).replace("<config>", str(path)), file=sys.stderr)
        raise SystemExit(1) from None
    return Prepared(config, catalog)


def _reactor() -> Any:
    from hadaemon.reactor import install_asyncio_reactor

    return install_asyncio_reactor()


def _run(reactor: Any, scenario: Callable[[Any], Any]) -> Any:
    """Run ``scenario(reactor)`` (may be async) in the installed reactor; its result."""
    from twisted.python.failure import Failure

    from hadaemon.aio import as_deferred

    outcome: list[Any] = []

    def go() -> None:
        d = as_deferred(scenario(reactor))

        def done(result: object) -> None:
            outcome.append(result)
            if reactor.running:
                reactor.stop()

        d.addBoth(done)

    reactor.callWhenRunning(reactor.callLater, 0, go)
    reactor.run()
    if not outcome:
        raise SystemExit(1)
    if isinstance(outcome[0], Failure):
        outcome[0].raiseException()
    return outcome[0]


def _zigbee_section(prepared: Any) -> dict[str, Any]:
    from hadaemon.zigbee.plugin import SCHEMA

    section = dict(SCHEMA.defaults())
    section.update(prepared.config.section("zigbee2mqtt"))
    return section


def _mqtt_settings(prepared: Any, suffix: str) -> Any:
    from hadaemon.mqtt import SCHEMA, MqttSettings, running_embedded

    name = _zigbee_section(prepared)["mqtt"]
    section = prepared.config.section(name) or SCHEMA.defaults()
    settings = MqttSettings.from_config(section, prepared.config.core.name)
    try:  # (an embedded broker: the running daemon's)
        settings = running_embedded(settings, prepared.config.core.state_dir, name)
    except ValueError as exc:
        print(f"hadaemon zigbee: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    return settings.with_client_id(f"{settings.client_id}-{suffix}"[:64], status_topic="")


async def fetch_bridge(reactor: Any, settings: Any, base_topic: str, timeout: float
                       ) -> tuple[Any, Any]:
    """The retained ``bridge/devices`` (and ``bridge/groups``) from the broker."""
    from twisted.internet.task import deferLater

    from hadaemon.mqtt import MqttConnection

    connection = MqttConnection(reactor, settings, status=False, component="generate")
    got: dict[str, Any] = {}

    def keep(message: Any) -> None:
        with contextlib.suppress(ValueError):  # not JSON: as if it never came
            got[message.topic.rsplit("/", 1)[1]] = message.json()

    connection.subscribe(f"{base_topic}/bridge/devices", keep)
    connection.subscribe(f"{base_topic}/bridge/groups", keep)
    connection.start()
    try:
        await connection.when_connected(timeout)
        deadline = reactor.seconds() + timeout
        while "devices" not in got and reactor.seconds() < deadline:
            await deferLater(reactor, 0.05, lambda: None)
        if "devices" in got and "groups" not in got:
            await deferLater(reactor, 0.2, lambda: None)  # retained ones come together
    finally:
        await connection.stop(timeout=2.0)
    if "devices" not in got:
        raise TimeoutError(f"no retained {base_topic}/bridge/devices on {settings.url} "
                           f"within {timeout:g} s: is zigbee2mqtt running?")
    return got["devices"], got.get("groups")


# -- generate -------------------------------------------------------------------------------


def _cmd_generate(args: argparse.Namespace) -> int:
    from hadaemon.zigbee.codegen import write_module

    if args.source:
        devices = json.loads(pathlib.Path(args.source).read_text(encoding="utf-8"))
        groups = (json.loads(pathlib.Path(args.groups).read_text(encoding="utf-8"))
                  if args.groups else None)
    else:
        prepared = _load_config(args.config)
        base_topic = _zigbee_section(prepared)["base_topic"]
        settings = _mqtt_settings(prepared, "generate")
        reactor = _reactor()
        try:
            devices, groups = _run(reactor, lambda r: fetch_bridge(r, settings, base_topic,
                                                                   args.timeout))
        except TimeoutError as exc:
            print(f"hadaemon zigbee generate: {exc}", file=sys.stderr)
            return 1
    path, written, result = write_module(pathlib.Path(args.output), devices, groups)
    for problem in result.problems:
        print(f"warning: {problem}", file=sys.stderr)
    print(f"{path}: {'written' if written else 'unchanged'} ({len(result.devices)} devices "
          "and groups)")
    return 0


# -- run ------------------------------------------------------------------------------------


def _cmd_run(args: argparse.Namespace) -> int:
    from hadaemon.zigbee.codegen import write_module
    from hadaemon.zigbee.typecheck import MISSING_MYPY, mypy_available, run_mypy

    file = pathlib.Path(args.file).resolve()
    config_path = args.config or (str(file.parent / "hadaemon.toml")
                                  if (file.parent / "hadaemon.toml").exists() else None)
    if not file.exists():
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(STARTER.format(name=args.file, config=config_path or "CONFIG"),
                        encoding="utf-8")
        print(f"wrote a starter automation: {file}")
    # An embedded broker is the running daemon's: this run connects to it as to any other.
    target = _mqtt_settings(_load_config(config_path), "run")
    state = tempfile.TemporaryDirectory(prefix="hadaemon-zigbee-run-")

    def standalone(data: dict[str, Any]) -> None:
        daemon = data.setdefault("daemon", {})
        zigbee = data.setdefault("zigbee2mqtt", {})
        mqtt_name = zigbee.get("mqtt", "mqtt")
        daemon["plugins"] = [mqtt_name, "zigbee2mqtt"]
        daemon["state_dir"] = state.name
        zigbee["automations"] = [str(file)]
        zigbee["generate"] = False
        if args.skip_initial_query:
            zigbee["initial_query"] = False
        mqtt = data.setdefault(mqtt_name, {})
        mqtt["client_id"] = (mqtt.get("client_id") or "hadaemon") + "-zigbee-run"
        if target.embedded:
            mqtt.update(broker="external", host=target.host, port=target.port,
                        username=target.username, password=target.password)
        if args.verbose:
            data.setdefault("log", {})["level"] = "debug"

    prepared = _load_config(config_path, overrides=standalone)
    reactor = _reactor()

    async def scenario(reactor: Any) -> int:
        from twisted.internet.threads import deferToThread

        if not args.no_generate:
            settings = _mqtt_settings(prepared, "generate")
            base_topic = _zigbee_section(prepared)["base_topic"]
            try:
                devices, groups = await fetch_bridge(reactor, settings, base_topic, 10.0)
            except TimeoutError as exc:
                print(f"hadaemon zigbee run: {exc}", file=sys.stderr)
                return 1
            path, written, _result = write_module(file.parent, devices, groups)
            print(f"{path}: {'generated' if written else 'up to date'}")
        if not args.no_typecheck:
            if not mypy_available():
                print(f"warning: {MISSING_MYPY}", file=sys.stderr)
            else:
                status, output = await deferToThread(run_mypy, [file])
                if status != 0:
                    print(output, file=sys.stderr)
                    print(f"{file}: type errors (run with --no-typecheck to run anyway)",
                          file=sys.stderr)
                    return 1
        code: int = await _run_daemon(reactor, prepared)
        return code

    result: int = _run(reactor, scenario)
    state.cleanup()
    return result


def _run_daemon(reactor: Any, prepared: Any) -> Any:
    """Start the daemon (mqtt + zigbee2mqtt with the one automation); a Deferred firing
    with the exit code once ``message_loop.stop(code)`` (or Ctrl+C) stopped it."""
    import signal

    from twisted.internet.defer import Deferred
    from twisted.logger import globalLogBeginner

    from hadaemon.daemon import Daemon
    from hadaemon.logs import make_output_observer
    from hadaemon.plugin import PluginInfo
    from hadaemon.zigbee.plugin import ZigbeeAdapter

    globalLogBeginner.beginLoggingTo([make_output_observer("text", sys.stdout)],
                                     redirectStandardIO=False)
    finished: Deferred[int] = Deferred()
    stopping: list[int] = []

    def exit_with(code: int) -> None:
        if stopping:
            return
        stopping.append(code)
        # sets made in this very turn are flushed by the adapter's stop, then acknowledged
        reactor.callLater(0, lambda: daemon.stopService().addBoth(
            lambda _: finished.callback(code)))

    def make(context: Any) -> ZigbeeAdapter:
        return ZigbeeAdapter(context, on_exit=exit_with)

    catalog = prepared.catalog
    catalog.plugins["zigbee2mqtt"] = PluginInfo("zigbee2mqtt", make, ZigbeeAdapter.schema,
                                                "hadaemon zigbee run")
    daemon = Daemon(prepared.config, reactor, catalog=catalog, owns_process=True)
    daemon.started.addErrback(lambda _f: exit_with(1))
    signal.signal(signal.SIGINT, lambda *_: reactor.callFromThread(exit_with, 0))
    signal.signal(signal.SIGTERM, lambda *_: reactor.callFromThread(exit_with, 0))
    daemon.startService()
    return finished


# -- record ---------------------------------------------------------------------------------


def _cmd_record(args: argparse.Namespace) -> int:
    from hadaemon.zigbee.testkit import record

    prepared = _load_config(args.config)
    base_topic = _zigbee_section(prepared)["base_topic"]
    settings = _mqtt_settings(prepared, "record")
    reactor = _reactor()
    log = _run(reactor, lambda r: record(r, settings, base_topic, args.seconds))
    pathlib.Path(args.output).write_text(log.dump(), encoding="utf-8")
    print(f"{args.output}: {len(log.entries)} messages")
    return 0
