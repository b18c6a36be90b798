"""``hadaemon zigbee generate`` and ``hadaemon zigbee run``, as users run them."""

from __future__ import annotations

import json
import pathlib
import re
import subprocess
import sys
import textwrap

import pytest

from hadaemon.testing import BlockingClient, Broker, write_config
from hadaemon.testing.processes import ChildProcesses
from hadaemon.zigbee.cli import main
from hadaemon.zigbee.typecheck import mypy_available

from .util import SAMPLE

HELPERS = pathlib.Path(__file__).parent / "helpers"


def test_generate_from_a_saved_file(tmp_path: pathlib.Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", "--from", str(SAMPLE), "--output", str(tmp_path)]) == 0
    target = tmp_path / "pyziggy_autogenerate" / "available_devices.py"
    assert "written (17 devices" in capsys.readouterr().out
    assert "class AvailableDevices(DevicesClient):" in target.read_text()
    assert main(["generate", "--from", str(SAMPLE), "--output", str(tmp_path)]) == 0
    assert "unchanged" in capsys.readouterr().out
    assert main([]) == 2


def start_simulator(processes: ChildProcesses, broker: Broker) -> None:
    proc = processes.spawn([sys.executable, str(HELPERS / "simulator_main.py"), broker.host,
                            str(broker.port)], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    assert b"simulator running" in proc.stdout.readline()


def test_zigbee_run_generates_checks_runs_and_stops(tmp_path: pathlib.Path, broker: Broker,
                                                    processes: ChildProcesses) -> None:
    start_simulator(processes, broker)
    watcher = BlockingClient(broker).connect()
    watcher.subscribe("zigbee2mqtt/+/set")
    config = write_config(tmp_path / "hadaemon.toml", {
        "daemon": {"state_dir": str(tmp_path / "state"), "plugins": ["mqtt", "zigbee2mqtt"]},
        "mqtt": {"host": broker.host, "port": broker.port, "client_id": "the-daemon"},
        "zigbee2mqtt": {"initial_query": False},
    })
    automation = tmp_path / "project" / "automation.py"
    automation.parent.mkdir()
    automation.write_text(textwrap.dedent('''
        from pyziggy.message_loop import message_loop
        from pyziggy_autogenerate.available_devices import AvailableDevices

        devices = AvailableDevices()


        def on_connect() -> None:
            devices.tv_plug.state.set(True)
            devices.kitchen_bulb.brightness.set(33)
            message_loop.stop(3)  # in the same turn: the sets must still go out


        devices.on_connect.add_listener(on_connect)
    '''))
    args = ["run", str(automation), "--config", str(config), "--skip_initial_query"]
    if not mypy_available():
        args.append("--no-typecheck")
    # It ends by itself, with the automation's code (a hang fails as TimeoutExpired; the
    # limit is only a guard, generous for a loaded CI machine where mypy alone is slow)...
    result = subprocess.run(
        [sys.executable, "-c", "import sys; from hadaemon.zigbee.cli import main; "
         f"sys.exit(main({args!r}))"], capture_output=True, text=True, timeout=240,
        check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 3, output
    # ...and promptly: message_loop.stop(3) stopped it, not a plugin's stop timeout
    assert "message_loop.stop(3)" in output, output
    assert not re.search(r"plugin \S+ did not stop within|timed out", output), output
    assert (automation.parent / "pyziggy_autogenerate" / "available_devices.py").exists()
    sets = {m.topic: json.loads(m.payload) for m in
            [watcher.expect("zigbee2mqtt/+/set", timeout=5) for _ in range(2)]}
    assert sets == {"zigbee2mqtt/TV plug/set": {"state": "ON"},
                    "zigbee2mqtt/Kitchen Bulb/set": {"brightness": 33}}
    assert not (tmp_path / "state").exists()  # run leaves the daemon's state alone
    watcher.close()

    # a missing file gets a starter that runs (and stops by itself)
    starter = tmp_path / "new" / "starter.py"
    result = subprocess.run(
        [sys.executable, "-c", "import sys; from hadaemon.zigbee.cli import main; "
         f"sys.exit(main({['run', str(starter), '--config', str(config), '--no-typecheck']!r}))"],
        capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "wrote a starter automation" in result.stdout
    assert "connected; devices: " in result.stdout and "Hallway Hue" in result.stdout


def test_the_subcommand_registers_and_hadaemon_check_calls_the_plugin(
        tmp_path: pathlib.Path) -> None:
    import argparse

    from hadaemon.app import _plugin_checks
    from hadaemon.zigbee.cli import register
    from hadaemon.zigbee.plugin import ZigbeeAdapter
    from tests.mqtt.util import daemon_config

    parser = argparse.ArgumentParser(prog="hadaemon")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["zigbee", "generate", "--from", str(SAMPLE), "-o",
                              str(tmp_path)])
    assert args.func(args) == 0
    broken = tmp_path / "broken.py"
    broken.write_text("def (:\n")
    config, catalog = daemon_config(tmp_path, {
        "daemon": {"plugins": ["zigbee2mqtt"], "state_dir": str(tmp_path / "state")},
        "zigbee2mqtt": {"automations": [str(broken)], "typecheck": False},
    }, {"zigbee2mqtt": ZigbeeAdapter})
    problems = _plugin_checks(config, catalog)
    assert len(problems) == 1
    assert "[zigbee2mqtt]: automation" in problems[0] and "broken.py:1" in problems[0]
