"""``[mqtt] broker = "embedded"``: the daemon's own broker, through a real daemon process,
real brokers (mosquitto as a child process, amqtt in the daemon's loop) and real clients."""

from __future__ import annotations

import os
import pathlib
import signal

import pytest

from hadaemon.broker import BrokerUnavailable, choose_impl, find_mosquitto
from hadaemon.broker.impls import amqtt_installed
from hadaemon.mqtt import MqttSettings
from hadaemon.testing.processes import ChildProcesses
from hadaemon.testing.waiting import poll_until
from tests.mqtt.embedded_util import (
    accepts,
    alive,
    broker_info,
    client,
    embedded_config,
    outside_address,
    start_daemon,
    wait_gone,
)

STATUS = "hadaemon/embedded-test/status"
IMPLS = [
    pytest.param("mosquitto", marks=pytest.mark.skipif(
        find_mosquitto() is None, reason="mosquitto is not installed")),
    pytest.param("amqtt", marks=pytest.mark.skipif(
        not amqtt_installed(), reason="amqtt is not installed")),
]


@pytest.mark.timeout(180)
@pytest.mark.parametrize("impl", IMPLS)
def test_started_private_and_stopped_with_the_daemon(
    impl: str, tmp_path: pathlib.Path, processes: ChildProcesses
) -> None:
    daemon = start_daemon(embedded_config(tmp_path, impl), processes)
    info = broker_info(tmp_path / "var")
    assert info["impl"] == impl
    assert info["host"] == "127.0.0.1"
    assert (info["pid"] is not None) == (impl == "mosquitto")
    assert f"embedded MQTT broker ({impl}" in daemon.output()
    # The daemon is connected to it: its retained status is there, and messages flow.
    with client(info) as watcher:
        watcher.connect()
        watcher.subscribe(STATUS)
        assert watcher.expect(STATUS, timeout=30.0).payload == b'{"state": "online"}'
        watcher.subscribe("test/echo")
        watcher.publish("test/echo", b"hello")
        assert watcher.expect("test/echo", timeout=30.0).payload == b"hello"
    # Private: only the credentials made for this run, and only on loopback.
    with pytest.raises(ConnectionError), client(info, password="guess") as intruder:
        intruder.connect(timeout=30.0)
    with pytest.raises(ConnectionError), client(info, username=None) as anonymous:
        anonymous.connect(timeout=30.0)
    outside = outside_address()
    if outside is not None:
        assert not accepts(outside, info["port"])
    assert os.stat(tmp_path / "var/plugins/mqtt/broker/broker.json").st_mode & 0o077 == 0

    assert daemon.stop(signal.SIGTERM, timeout=60.0) == 0
    assert not accepts(info["host"], info["port"])
    if info["pid"] is not None:
        assert not alive(info["pid"])


@pytest.mark.timeout(180)
@pytest.mark.parametrize("impl", IMPLS)
def test_no_broker_left_after_the_daemon_is_killed(
    impl: str, tmp_path: pathlib.Path, processes: ChildProcesses
) -> None:
    daemon = start_daemon(embedded_config(tmp_path, impl), processes)
    info = broker_info(tmp_path / "var")
    assert accepts(info["host"], info["port"])
    if info["pid"] is not None:
        assert alive(info["pid"])

    daemon.send_signal(signal.SIGKILL)  # no stop, no cleanup of any kind
    assert daemon.wait(timeout=30.0) == -signal.SIGKILL
    if info["pid"] is not None:
        wait_gone(info["pid"], "mosquitto to die with the daemon")
    poll_until(lambda: not accepts(info["host"], info["port"]), timeout=15.0,
               what="the broker's port to close")


@pytest.mark.timeout(180)
@pytest.mark.skipif(find_mosquitto() is None, reason="mosquitto is not installed")
def test_a_broker_that_dies_is_started_again(
    tmp_path: pathlib.Path, processes: ChildProcesses
) -> None:
    config = embedded_config(tmp_path, "mosquitto", broker_restart_delay=0.1)
    daemon = start_daemon(config, processes)
    first = broker_info(tmp_path / "var")

    os.kill(first["pid"], signal.SIGKILL)
    daemon.wait_for_output("exited unexpectedly", timeout=30.0)
    again = poll_until(
        lambda: (info := broker_info(tmp_path / "var"))["pid"] != first["pid"] and info,
        timeout=60.0, what="a new mosquitto")
    assert alive(again["pid"])
    assert (again["port"], again["password"]) == (first["port"], first["password"])
    # The daemon reconnected: a fresh broker holds nothing retained until it says so.
    with client(again) as watcher:
        watcher.connect(timeout=30.0)
        watcher.subscribe(STATUS)
        assert watcher.expect(STATUS, timeout=60.0).payload == b'{"state": "online"}'

    assert daemon.stop(signal.SIGTERM, timeout=60.0) == 0
    assert not alive(again["pid"])


def test_choosing_an_implementation_names_what_to_install(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("hadaemon.broker.embedded.find_mosquitto", lambda: None)
    monkeypatch.setattr("hadaemon.broker.embedded.amqtt_installed", lambda: True)
    assert choose_impl("auto") == "amqtt"
    with pytest.raises(BrokerUnavailable, match="mosquitto is not installed"):
        choose_impl("mosquitto")
    monkeypatch.setattr("hadaemon.broker.embedded.amqtt_installed", lambda: False)
    with pytest.raises(BrokerUnavailable, match=r"install mosquitto .* or amqtt"):
        choose_impl("auto")
    with pytest.raises(BrokerUnavailable, match=r"hadaemon\[broker\]"):
        choose_impl("amqtt")
    monkeypatch.setattr("hadaemon.broker.embedded.find_mosquitto", lambda: "/usr/sbin/x")
    assert choose_impl("auto") == "mosquitto"


def test_an_embedded_broker_takes_no_tls() -> None:
    with pytest.raises(ValueError, match=r'\[mqtt\]: tls = true with broker = "embedded"'):
        MqttSettings.from_config({**MqttSettings.schema().defaults(), "broker": "embedded",
                                  "tls": True})


_EMBEDDED_PROGRAM = """
import json, pathlib, sys
import hadaemon.embed as embed

state = pathlib.Path(sys.argv[1])
handle = embed.start(config={
    "daemon": {"name": "embedded-test", "state_dir": str(state), "plugins": ["mqtt"]},
    "mqtt": {"broker": "embedded", "broker_impl": "mosquitto"},
}, timeout=120)
info = json.loads((state / "plugins/mqtt/broker/broker.json").read_text())
print("pid", info["pid"], flush=True)
handle.stop()
# (the reactor thread has no SIGCHLD handler: reaped all the same, not left a zombie)
reaped = not pathlib.Path(f"/proc/{info['pid']}").exists()
print("reaped" if reaped else "not reaped", flush=True)
"""


@pytest.mark.timeout(180)
@pytest.mark.skipif(find_mosquitto() is None, reason="mosquitto is not installed")
def test_an_embedding_program_stops_and_reaps_its_broker(  # (hadaemon.embed)
    tmp_path: pathlib.Path, processes: ChildProcesses
) -> None:
    import subprocess
    import sys

    proc = processes.spawn([sys.executable, "-c", _EMBEDDED_PROGRAM, str(tmp_path / "var")],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out, _ = proc.communicate(timeout=150)
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text
    assert "\nreaped" in text, text


@pytest.mark.timeout(120)
def test_the_simulator_without_the_plugin_that_runs_the_broker_says_so(
    tmp_path: pathlib.Path, processes: ChildProcesses
) -> None:
    from hadaemon.testing.daemon import DaemonProcess, write_config

    config = write_config(tmp_path / "hadaemon.toml", {
        "daemon": {"state_dir": str(tmp_path / "var"), "plugins": ["zigbee2mqtt_simulator"]},
        "mqtt": {"broker": "embedded"},
    })
    daemon = DaemonProcess(config, processes=processes).start(timeout=60.0)
    # (never connecting to whatever listens on the default port instead)
    daemon.wait_for_output("the 'mqtt' plugin that runs that broker is not running",
                           timeout=30.0)
    assert daemon.stop(signal.SIGTERM, timeout=60.0) == 0


@pytest.mark.timeout(180)
@pytest.mark.skipif(find_mosquitto() is None, reason="mosquitto is not installed")
def test_mosquitto_stopped_right_after_it_started_ends_by_itself(
    tmp_path: pathlib.Path
) -> None:
    """mosquitto 2.0 loses a SIGTERM that arrives just after it logged "running"; the
    stop sends it again rather than waiting for the SIGKILL."""
    from typing import Any

    from twisted.logger import Logger

    from hadaemon.backoff import Backoff
    from hadaemon.broker import EmbeddedBroker
    from hadaemon.testing import run_in_reactor

    statuses: list[int | None] = []

    async def scenario(reactor: Any) -> None:
        for attempt in range(12):
            broker = EmbeddedBroker(reactor, tmp_path / str(attempt), log=Logger(),
                                    backoff=Backoff(0.5, 30.0), impl="mosquitto")
            await broker.start()
            process = broker._mosquitto
            assert process is not None
            await broker.stop(timeout=20.0)
            statuses.append(process.status)

    run_in_reactor(scenario, timeout=170)
    assert statuses == [0] * 12  # (never -9: none waited for the SIGKILL)
