"""The shipped example config (etc/hadaemon.toml) shows the three worlds: run as the
README says, on a copy (its state directory is then the test's own)."""

from __future__ import annotations

import pathlib
import re
import shutil
import signal
import subprocess
import sys

import pytest

from hadaemon.broker import amqtt_installed, find_mosquitto
from hadaemon.testing.processes import ChildProcesses
from hadaemon.testing.waiting import poll_until
from tests.mqtt.embedded_util import CONNECTED, accepts, alive, broker_info, start_daemon

ROOT = pathlib.Path(__file__).resolve().parents[2]


def example_copy(tmp_path: pathlib.Path, impl: str) -> pathlib.Path:
    """etc/ and plugins/ copied, hadaemon/ linked: the config's relative paths hold.
    ``impl`` other than "auto": that broker (as on a machine without mosquitto)."""
    shutil.copytree(ROOT / "etc", tmp_path / "etc",
                    ignore=shutil.ignore_patterns("__pycache__", "pyziggy_autogenerate"))
    shutil.copytree(ROOT / "plugins", tmp_path / "plugins",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "hadaemon").symlink_to(ROOT / "hadaemon")
    config = tmp_path / "etc" / "hadaemon.toml"
    if impl != "auto":
        text = config.read_text()
        assert '\nbroker = "embedded"\n' in text
        config.write_text(text.replace('\nbroker = "embedded"\n',
                                       f'\nbroker = "embedded"\nbroker_impl = "{impl}"\n'))
    return config


def first(pattern: str, text: str) -> int:
    """Where ``pattern`` first matches in ``text`` (-1: nowhere)."""
    found = re.search(pattern, text, re.MULTILINE)
    return found.start() if found else -1


@pytest.mark.timeout(240)
@pytest.mark.parametrize("impl", [
    "auto",
    pytest.param("amqtt", marks=pytest.mark.skipif(
        find_mosquitto() is None or not amqtt_installed(),
        reason="auto is amqtt already, or amqtt is not installed")),
])
def test_the_example_shows_all_three_worlds(
    impl: str, tmp_path: pathlib.Path, processes: ChildProcesses
) -> None:
    daemon = start_daemon(example_copy(tmp_path, impl), processes)
    info = broker_info(tmp_path / "var")
    if impl != "auto":
        assert info["impl"] == impl
    assert CONNECTED in daemon.output()
    # (start_daemon waits for the mqtt plugin's connection; the story's own client
    # connects on its own, a moment later on a slow broker such as amqtt)
    poll_until(lambda: "zigbee2mqtt_story: connected to" in daemon.output(), timeout=60.0,
               what="the simulator's story connecting to the embedded broker")

    motion = r"changelog#info\] Hall motion \[\d+/0\] occupancy = True"
    hall_light = r"changelog#info\] Hallway Hue \[\d+/0\] state = True"
    node = r"nodes\.hall_presence#info\] Hall motion: someone is there"
    service = r"comfortmonitor_py#info\] Hall motion is occupied \(from the hall_presence node\)"
    demo = r"changelog#info\] Demo thermometer \[\d+/0\] temperature = "

    def seen() -> bool:
        text = daemon.output()
        return all(first(p, text) >= 0 for p in (motion, hall_light, node, service, demo))

    # The simulator's story walks through the hall 10 s after it starts; slow machines.
    poll_until(seen, timeout=120.0, what="a walk through the hall reaching every world")
    text = daemon.output()
    # The automation answered the sensor (the light was off until someone came).
    assert first(motion, text) < first(hall_light, text)
    assert first(motion, text) < first(node, text) < first(service, text)
    assert "Traceback" not in text

    # The command-line tools reach the running daemon's broker (README: zigbee generate).
    config = tmp_path / "etc" / "hadaemon.toml"
    generate = [sys.executable, "-m", "hadaemon", "zigbee", "generate", "--config",
                str(config), "-o", str(tmp_path / "generated")]
    done = subprocess.run(generate, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"written \(\d+ devices and groups\)", done.stdout), done.stdout
    starter = tmp_path / "mine" / "automation.py"  # (written by the tool: it stops itself)
    run = subprocess.run([sys.executable, "-m", "hadaemon", "zigbee", "run", str(starter),
                          "--config", str(config), "--no-typecheck"],
                         capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "connected; devices: " in run.stdout and "Hall motion" in run.stdout, run.stdout

    assert daemon.stop(signal.SIGTERM, timeout=60.0) == 0
    assert not accepts(info["host"], info["port"])
    assert not (tmp_path / "var/plugins/mqtt/broker/broker.json").exists()
    done = subprocess.run(generate, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1
    assert "no running daemon has started its broker" in done.stderr
    if info["pid"] is not None:
        poll_until(lambda: not alive(info["pid"]), timeout=10.0, what="mosquitto to end")
