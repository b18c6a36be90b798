"""A plugin file saved in a plugin directory: that plugin restarts, then those that need
it; code that does not load keeps the old version running, named by file and line."""

from __future__ import annotations

import pathlib
import subprocess
import sys
from typing import Any

from hadaemon.testing import ChildProcesses, run_in_reactor, wait_until

from .plugin_kit import PLUGINS, Kit, errors_of


def test_a_saved_plugin_restarts_with_those_that_require_it(tmp_path: pathlib.Path) -> None:
    kit = Kit(tmp_path)
    kit.write_config(["onlooker", "follower", "counter", "bystander"])

    async def scenario(reactor: Any) -> None:
        daemon = kit.daemon(reactor)
        daemon.startService()
        await daemon.started
        assert daemon.reloader.watcher is not None  # auto is the default here
        bystander = daemon.plugin("bystander")
        onlooker = daemon.plugin("onlooker")  # wants counter: looks it up, not restarted
        kit.take()
        kit.write_plugin("counter", version=2)
        await wait_until(reactor, lambda: len(kit.lines()) >= 4, timeout=20,
                         what="the restarts")
        assert kit.take() == ["stop follower v1", "stop counter v1",
                              "start counter v2", "start follower v1"]
        counter = daemon.plugin("counter")
        assert type(counter).__module__.startswith("_hadaemon_plugins_")
        assert daemon.plugin("follower").counter is counter  # type: ignore[union-attr]
        assert daemon.plugin("bystander") is bystander and bystander.running
        # the follower's own file: only it restarts (nothing requires it)
        kit.write_plugin("follower", version=2)
        await wait_until(reactor, lambda: len(kit.lines()) >= 2, timeout=20,
                         what="the follower's restart")
        assert kit.take() == ["stop follower v1", "start follower v2"]
        assert daemon.plugin("counter") is counter and not daemon.failed
        assert daemon.plugin("onlooker") is onlooker
        # the daemon's stop still stops each plugin before what it needs
        await daemon.stopService()
        stops = kit.take()
        assert stops.index("stop counter v2") > max(stops.index("stop follower v2"),
                                                    stops.index("stop onlooker v1"))

    run_in_reactor(scenario, timeout=60)


def test_broken_code_keeps_the_running_version(tmp_path: pathlib.Path) -> None:
    kit = Kit(tmp_path)
    kit.write_config(["counter", "follower"], counter={"value": 1})

    async def scenario(reactor: Any) -> None:
        daemon = kit.daemon(reactor)
        errors = errors_of(daemon)
        daemon.startService()
        await daemon.started
        counter = daemon.plugin("counter")
        kit.take()
        # a syntax error
        path = kit.write_plugin("counter", version=2, body=PLUGINS["counter"] + "\ndef (:\n")
        lines = path.read_text().splitlines()
        await wait_until(reactor, lambda: errors, timeout=20, what="the syntax error")
        error = errors.pop()
        assert error.source == "plugin:counter"
        assert error.details["file"] == str(path)
        assert error.details["line"] == lines.index("def (:") + 1
        assert error.message.startswith(
            f"plugin counter not reloaded, the previous version keeps running: "
            f"{path}:{error.details['line']}: SyntaxError: ")
        # an import that fails
        kit.write_plugin("counter", version=3, extra="import no_such_module_for_reload\n")
        await wait_until(reactor, lambda: errors, timeout=20, what="the import error")
        error = errors.pop()
        assert error.details["file"] == str(path)
        assert path.read_text().splitlines()[error.details["line"] - 1] == (
            "import no_such_module_for_reload")
        assert "ModuleNotFoundError: No module named 'no_such_module_for_reload'" in (
            error.message)
        # a schema the running config's [counter] does not fit
        kit.write_plugin("counter", version=4, body=PLUGINS["counter"].replace(
            "Int(default=0)", "Int(default=0, min=10)"))
        await wait_until(reactor, lambda: errors, timeout=20, what="the schema's refusal")
        error = errors.pop()
        assert error.source == "reload" and error.details["file"] == str(path)
        assert error.message == f"{kit.config}: [counter].value: expected a value >= 10, got 1"
        # none of that stopped or replaced the running version
        assert kit.take() == [] and not daemon.failed
        assert daemon.plugin("counter") is counter and counter.running
        # garbage (null bytes), then the file removed: named, and nothing else happens
        path.write_bytes(b"\x00\xff garbage \x00")
        await wait_until(reactor, lambda: errors, timeout=20, what="the garbage's error")
        error = errors.pop()
        assert error.source == "plugin:counter" and error.details["file"] == str(path)
        assert "null bytes" in error.message
        path.unlink()
        await wait_until(reactor, lambda: errors, timeout=20, what="the removal's error")
        error = errors.pop()
        assert error.details["file"] == str(path) and "FileNotFoundError" in error.message
        assert kit.take() == [] and daemon.plugin("counter") is counter and counter.running
        # fixed: it reloads
        kit.write_plugin("counter", version=5)
        await wait_until(reactor, lambda: len(kit.lines()) >= 4, timeout=20,
                         what="the restarts")
        assert kit.take() == ["stop follower v1", "stop counter v1",
                              "start counter v5", "start follower v1"]
        await daemon.stopService()

    run_in_reactor(scenario, timeout=60)


def test_a_new_version_that_fails_to_start_is_retried(tmp_path: pathlib.Path) -> None:
    kit = Kit(tmp_path)
    kit.write_config(["counter", "follower", "bystander"])

    async def scenario(reactor: Any) -> None:
        daemon = kit.daemon(reactor)
        errors = errors_of(daemon)
        daemon.startService()
        await daemon.started
        bystander = daemon.plugin("bystander")
        kit.take()
        kit.fail.write_text("")
        kit.write_plugin("counter", version=2, body=PLUGINS["counter"].replace(
            '    def start(self):\n', '    def start(self):\n'
            '        if pathlib.Path(FAIL).exists():\n'
            '            raise RuntimeError("the new counter cannot start")\n'))
        await wait_until(reactor, lambda: "counter" in daemon.failed, timeout=20,
                         what="the failed start")
        assert "the new counter cannot start" in daemon.failed["counter"]
        assert "follower" in daemon.failed  # it requires counter: not started either
        assert any(e.source == "plugin:counter" for e in errors)
        backoff = await wait_until(reactor, lambda: (
            daemon.reloader._retries.get("counter", (None,))[0]), what="the retries")
        await wait_until(reactor, lambda: backoff.failures >= 2, timeout=20,
                         what="two retries")
        assert daemon.plugin("bystander") is bystander and bystander.running
        kit.fail.unlink()
        await wait_until(reactor, lambda: not daemon.failed, timeout=20, what="recovery")
        assert kit.lines()[-2:] == ["start counter v2", "start follower v1"]
        assert daemon.plugin("bystander") is bystander
        await daemon.stopService()

    run_in_reactor(scenario, timeout=60)


def test_a_plugin_that_did_not_import_starts_once_fixed(tmp_path: pathlib.Path) -> None:
    kit = Kit(tmp_path)
    kit.write_plugin("tuner", body=PLUGINS["tuner"] + "\nraise RuntimeError('not yet')\n")
    kit.write_config(["counter", "tuner"])

    async def scenario(reactor: Any) -> None:
        daemon = kit.daemon(reactor)
        daemon.startService()
        await daemon.started
        assert "tuner" in daemon.failed and "not yet" in daemon.failed["tuner"]
        kit.take()
        kit.write_plugin("tuner", version=2)
        await wait_until(reactor, lambda: daemon.plugin("tuner") is not None, timeout=20,
                         what="the fixed plugin")
        assert kit.take() == ["start tuner v2"] and not daemon.failed
        await daemon.stopService()

    run_in_reactor(scenario, timeout=60)


EMBEDDED = """\
import pathlib, sys
sys.path.insert(0, sys.argv[2])
import hadaemon.embed
from hadaemon.testing import poll_until
from tests.reload.plugin_kit import Kit

kit = Kit(pathlib.Path(sys.argv[1]))
kit.write_config(["counter", "follower"])
handle = hadaemon.embed.start(config=str(kit.config), log="none")
try:
    print("watching", handle.call(lambda: handle.daemon.reloader.watcher.mode), flush=True)
    kit.take()
    kit.write_plugin("counter", version=2)
    poll_until(lambda: len(kit.lines()) >= 4, timeout=60, what="the restarts")
    print("journal", kit.take(), flush=True)
    kit.write_config(["counter", "follower", "tuner"])
    result = handle.call(handle.daemon.reloader.reload_config, timeout=60)
    print("reloaded", result.applied, result.added, kit.take(), flush=True)
finally:
    handle.stop()
"""


def test_embedded_daemons_watch_by_default_and_reload_through_the_handle(
        tmp_path: pathlib.Path, processes: ChildProcesses) -> None:
    # In a process of its own: embedding installs the global reactor.
    script = tmp_path / "embedded.py"
    script.write_text(EMBEDDED)
    root = pathlib.Path(__file__).resolve().parents[2]
    proc = processes.spawn([sys.executable, str(script), str(tmp_path / "kit"), str(root)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    assert out.decode().splitlines() == [
        "watching inotify",
        "journal ['stop follower v1', 'stop counter v1', 'start counter v2', "
        "'start follower v1']",
        "reloaded True ['tuner'] ['start tuner v1']",
    ]
