"""systemd notifications (Type=notify) on a real datagram socket the test listens on.

The notifier alone (on a fake clock), then ``hadaemon run`` as systemd runs it: READY=1
after the start, WATCHDOG=1 from the reactor (and none while the reactor is stalled),
STOPPING=1 on SIGTERM.
"""

from __future__ import annotations

import os
import pathlib
import signal
import socket
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from twisted.internet.task import Clock

from hadaemon.systemd import SystemdNotifier
from hadaemon.testing import ChildProcesses, DaemonProcess, capture_logs, poll_until, write_config


class Listener:
    """A datagram socket standing in for systemd's: keeps what arrives, with the time."""

    def __init__(self, address: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(0.05)
        self.received: list[tuple[float, str]] = []
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._closing.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            self.received.append((time.monotonic(), data.decode()))

    def messages(self) -> list[str]:
        return [text for _, text in self.received]

    def with_line(self, line: str) -> list[tuple[float, str]]:
        return [(t, text) for t, text in self.received if line in text.split("\n")]

    def close(self) -> None:
        self._closing.set()
        self._thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def listener(tmp_path: pathlib.Path) -> Iterator[Listener]:
    listening = Listener(str(tmp_path / "notify.sock"))
    yield listening
    listening.close()


def environ_for(address: str, **extra: str) -> dict[str, str]:
    return {"NOTIFY_SOCKET": address, **extra}


# -- the notifier ----------------------------------------------------------------------


def test_no_notify_socket_nothing_is_sent_and_no_socket_made() -> None:
    clock = Clock()
    notifier = SystemdNotifier(clock, environ={"WATCHDOG_USEC": "1000000"})
    assert not notifier.enabled
    assert notifier.notify("READY=1") is False
    notifier.start_watchdog()
    assert clock.getDelayedCalls() == []
    assert notifier._socket is None
    notifier.close()


def test_ready_status_and_stopping_reach_a_path_socket(listener: Listener) -> None:
    notifier = SystemdNotifier(Clock(), environ=environ_for(listener.sock.getsockname()))
    assert notifier.ready("running 3 plugin(s)\nwith a newline")
    assert notifier.stopping()
    poll_until(lambda: len(listener.received) == 2, what="two messages")
    assert listener.messages() == [
        "READY=1\nSTATUS=running 3 plugin(s) with a newline",
        "STOPPING=1\nSTATUS=stopping",
    ]
    notifier.close()


def test_an_abstract_socket_is_written_with_an_at_sign() -> None:
    name = f"hadaemon-test-{uuid.uuid4().hex}"
    listening = Listener("\0" + name)
    try:
        notifier = SystemdNotifier(Clock(), environ=environ_for("@" + name))
        assert notifier.notify("READY=1")
        poll_until(lambda: listening.messages() == ["READY=1"], what="READY=1")
        notifier.close()
    finally:
        listening.close()


def test_the_variables_are_removed_so_children_do_not_notify(listener: Listener) -> None:
    address = listener.sock.getsockname()
    environ = environ_for(address, WATCHDOG_USEC="2000000", WATCHDOG_PID=str(os.getpid()),
                          PATH="/bin")
    SystemdNotifier(Clock(), environ=environ).close()
    assert environ == {"PATH": "/bin"}
    kept = environ_for(address)
    SystemdNotifier(Clock(), environ=kept, unset_environment=False).close()
    assert kept == {"NOTIFY_SOCKET": address}


def test_watchdog_pings_every_half_watchdog_sec(listener: Listener) -> None:
    clock = Clock()
    notifier = SystemdNotifier(
        clock, environ=environ_for(listener.sock.getsockname(), WATCHDOG_USEC="2000000"))
    assert notifier.watchdog_interval == 1.0
    notifier.start_watchdog()  # one at once
    clock.advance(0.99)
    clock.advance(0.01)  # the second
    clock.advance(1.0)  # the third
    notifier.stop_watchdog()
    clock.advance(5.0)  # none after the stop
    poll_until(lambda: len(listener.received) >= 3, what="three pings")
    time.sleep(0.2)  # (only to let a wrong fourth one arrive)
    assert listener.messages() == ["WATCHDOG=1"] * 3
    notifier.close()


def test_no_pings_when_systemd_watches_another_pid(listener: Listener) -> None:
    clock = Clock()
    notifier = SystemdNotifier(clock, environ=environ_for(
        listener.sock.getsockname(), WATCHDOG_USEC="2000000", WATCHDOG_PID="1"), pid=4242)
    assert notifier.watchdog_interval is None
    notifier.start_watchdog()
    assert clock.getDelayedCalls() == []
    assert notifier.ready("up")  # notifications still go
    poll_until(lambda: listener.messages() == ["READY=1\nSTATUS=up"], what="READY=1")
    notifier.close()


@pytest.mark.parametrize("value", ["relative/path", "@", "WATCHDOG"])
def test_a_bad_notify_socket_is_ignored_with_a_warning(value: str) -> None:
    with capture_logs() as logs:
        notifier = SystemdNotifier(Clock(), environ=environ_for(value))
    assert not notifier.enabled and not notifier.notify("READY=1")
    assert f"ignoring $NOTIFY_SOCKET={value!r}" in logs.text()


def test_a_socket_that_is_gone_is_logged_once_and_never_raises(tmp_path: pathlib.Path) -> None:
    with capture_logs() as logs:
        notifier = SystemdNotifier(Clock(), environ=environ_for(str(tmp_path / "gone.sock")))
        assert notifier.notify("READY=1") is False
        assert notifier.notify("STATUS=still") is False
        notifier.close()
    assert logs.text().count("cannot notify systemd") == 1, logs.text()


# -- hadaemon run as systemd runs it ---------------------------------------------------------

STALLER = textwrap.dedent('''
    import json, os, time
    from hadaemon.config import Section, Str
    from hadaemon.plugin import Plugin

    class Staller(Plugin):
        """Blocks the reactor once, after a while, and says when; and shows the env."""
        name = "staller"
        schema = Section({"record": Str()})

        def start(self):
            record = self.config["record"]
            with open(record + ".env", "w") as f:
                json.dump({k: os.environ.get(k) for k in
                           ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")}, f)
            self.context.on_started(lambda: self.reactor.callLater(1.0, self.stall, record))

        def stall(self, record):
            start = time.monotonic()
            time.sleep(2.5)
            with open(record, "w") as f:
                json.dump([start, time.monotonic()], f)
''')


def test_hadaemon_run_notifies_ready_watchdog_and_stopping(
    tmp_path: pathlib.Path, listener: Listener, processes: ChildProcesses
) -> None:
    import json

    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "staller.py").write_text(STALLER)
    record = tmp_path / "stall.json"
    config = write_config(tmp_path / "hadaemon.toml", {
        "daemon": {"state_dir": str(tmp_path / "state"), "plugin_dirs": [str(plugins)],
                   "plugins": ["heartbeat", "staller", "nosuchplugin"]},
        "staller": {"record": str(record)},
    })
    daemon = DaemonProcess(config, processes=processes, env=environ_for(
        listener.sock.getsockname(), WATCHDOG_USEC="200000"))  # a ping every 0.1 s
    daemon.start()
    ready = poll_until(lambda: listener.with_line("READY=1"), what="READY=1", timeout=30)
    assert len(ready) == 1
    assert ready[0][1] == "READY=1\nSTATUS=running 2 plugin(s); failed: nosuchplugin"
    assert listener.messages()[0] == "STATUS=starting"
    # the daemon's children (and its plugins) never see the variables
    assert json.loads((tmp_path / "stall.json.env").read_text()) == {
        "NOTIFY_SOCKET": None, "WATCHDOG_USEC": None, "WATCHDOG_PID": None}
    poll_until(lambda: len(listener.with_line("WATCHDOG=1")) >= 5, what="pings", timeout=30)
    # A stalled reactor sends no ping: none arrives well inside the stall, and they
    # come back after it.
    start, end = poll_until(lambda: record.exists() and json.loads(record.read_text()),
                            what="the stall", timeout=30)
    poll_until(lambda: [t for t, _ in listener.with_line("WATCHDOG=1") if t > end],
               what="a ping after the stall", timeout=30)
    during = [t for t, _ in listener.with_line("WATCHDOG=1") if start + 0.5 < t < end]
    assert during == [], (start, end, listener.received)
    assert daemon.stop() == 0
    stopping = listener.with_line("STOPPING=1")
    assert [text for _, text in stopping] == ["STOPPING=1\nSTATUS=stopping"]
    assert stopping[0][0] > ready[0][0]


def test_twistd_notifies_ready_and_stopping_too(
    tmp_path: pathlib.Path, listener: Listener, processes: ChildProcesses
) -> None:
    config = write_config(tmp_path / "hadaemon.toml", {
        "daemon": {"state_dir": str(tmp_path / "state"), "plugins": ["heartbeat"]},
    })
    twistd = str(pathlib.Path(sys.executable).parent / "twistd")
    daemon = DaemonProcess(
        config, processes=processes, env=environ_for(listener.sock.getsockname()),
        command=[twistd, "-n", "--pidfile=", "--logfile=-", "hadaemon", "--config",
                 str(config)],
    ).start()
    poll_until(lambda: listener.with_line("READY=1"), what="READY=1", timeout=30)
    assert daemon.stop() == -signal.SIGTERM  # twistd's convention (143 for systemd)
    assert listener.messages() == [
        "STATUS=starting", "READY=1\nSTATUS=running 1 plugin(s)", "STOPPING=1\nSTATUS=stopping"]


def test_hadaemon_run_without_notify_socket_runs_as_before(
    tmp_path: pathlib.Path, processes: ChildProcesses
) -> None:
    config = write_config(tmp_path / "hadaemon.toml", {
        "daemon": {"state_dir": str(tmp_path / "state"), "plugins": ["heartbeat"]},
    })
    environ = {k: v for k, v in os.environ.items()
               if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")}
    daemon = DaemonProcess(config, processes=processes)
    daemon.env = environ
    daemon.start()
    assert daemon.stop() == 0
    assert "systemd" not in daemon.output().lower()
