"""The daemon as a process: hadaemon run/check, twistd (foreground and daemonized), signals."""

from __future__ import annotations

import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from hadaemon.testing.daemon import DaemonProcess, write_config
from hadaemon.testing.processes import ChildProcesses
from hadaemon.testing.waiting import poll_until

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(sys.executable).parent

MARKER = '''
import os, time
from hadaemon.config import Section, Str, Bool
from hadaemon.plugin import Plugin

class Marker(Plugin):
    """Writes files when started and stopped, so the test sees the lifecycle."""
    name = "marker"
    schema = Section({"dir": Str(), "block_stop": Bool(default=False)})

    def start(self):
        open(os.path.join(self.config["dir"], "started"), "w").close()
        self.context.store.put(self.context.key("hello"), "world")

    def stop(self):
        open(os.path.join(self.config["dir"], "stopped"), "w").close()
        if self.config["block_stop"]:
            time.sleep(1000)  # blocks the reactor: only the hard exit ends this
'''


def make_config(tmp_path: pathlib.Path, **overrides: Any) -> pathlib.Path:
    pdir = tmp_path / "plugins"
    pdir.mkdir(exist_ok=True)
    (pdir / "marker.py").write_text(textwrap.dedent(MARKER))
    sections: dict[str, Any] = {
        "daemon": {
            "state_dir": "var",
            "plugin_dirs": ["plugins"],
            "plugins": ["marker", "demo", "heartbeat", "changelog"],
            "stop_timeout": 10.0,
        },
        "marker": {"dir": str(tmp_path)},
        "demo": {"interval": 0.2},
        "heartbeat": {"interval": 0.2},
    }
    for name, values in overrides.items():
        sections.setdefault(name, {}).update(values)
    return write_config(tmp_path / "hadaemon.toml", sections)


def run_cli(*args: str, cwd: pathlib.Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hadaemon", *args], capture_output=True, text=True, cwd=cwd,
        timeout=60,
    )


def store_value(state_dir: pathlib.Path, key: str) -> Any:
    from twisted.internet.defer import maybeDeferred
    from twisted.internet.task import Clock

    from hadaemon.store import Store

    store = Store(state_dir / "state.db", reactor=Clock(), run_in_thread=maybeDeferred)
    store.open()
    try:
        return store.get(key)
    finally:
        store.stopService()


# -- hadaemon check ---------------------------------------------------------------------


def test_check_accepts_the_shipped_example() -> None:
    result = run_cli("check", "--config", "etc/hadaemon.toml")
    assert result.returncode == 0, result.stderr
    ok = [line for line in result.stdout.splitlines() if line.startswith("etc/hadaemon.toml: OK (")]
    assert ok, result.stdout
    # (other plugins may join the example: the three worlds and the broker must be there)
    enabled = ok[0].split("(", 1)[1].rstrip(")").split(", ")
    for name in ("history", "changelog", "demo", "heartbeat", "mqtt", "zigbee2mqtt_story",
                 "zigbee2mqtt", "services", "nodes", "metrics", "web"):
        assert name in enabled, ok[0]


def test_check_reports_every_error_with_file_and_key(tmp_path: pathlib.Path) -> None:
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "broken.py").write_text("import not_installed_anywhere\n")
    config = tmp_path / "bad.toml"
    config.write_text(textwrap.dedent("""
        [daemon]
        plugin_dirs = ["plugins"]
        plugins = ["heartbeat", "broken", "nosuch"]
        stop_timeout = "soon"

        [heartbeat]
        interval = "often"
        beat = 1

        [hearbeat]
    """))
    result = run_cli("check", "--config", str(config))
    assert result.returncode == 1
    err = result.stderr
    assert f'{config}: [daemon].stop_timeout: expected a number, got "soon"' in err
    assert f'{config}: [heartbeat].interval: expected a number, got "often"' in err
    assert f"{config}: [heartbeat].beat: unknown key" in err
    assert f'{config}: [hearbeat]: unknown section (did you mean "heartbeat"?)' in err
    assert "plugin 'broken'" in err and "not_installed_anywhere" in err
    assert f"{config}: [daemon].plugins[2]: unknown plugin 'nosuch'" in err
    assert "6 error(s)" in err


def test_check_bad_toml(tmp_path: pathlib.Path) -> None:
    config = tmp_path / "x.toml"
    config.write_text("[daemon\n")
    result = run_cli("check", "--config", str(config))
    assert result.returncode == 1
    assert result.stderr.startswith(f"{config}: invalid TOML:")


def test_check_starts_nothing(tmp_path: pathlib.Path) -> None:
    config = make_config(tmp_path)
    result = run_cli("check", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "var").exists()
    assert not (tmp_path / "started").exists()


# -- hadaemon run -------------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_run_and_stop_gracefully(tmp_path: pathlib.Path, processes: ChildProcesses,
                                 sig: int) -> None:
    daemon = DaemonProcess(make_config(tmp_path), processes=processes).start()
    assert (tmp_path / "started").exists()
    daemon.wait_for_output("Demo thermometer [1/0] temperature =", timeout=10)
    assert daemon.stop(sig, timeout=120) == 0  # (a hang guard only)
    assert (tmp_path / "stopped").exists()
    out = daemon.output()
    # gracefully: every plugin stopped in its time, nothing cut short
    assert not re.search(r"plugin \S+ did not stop within|stop budget exceeded", out), out
    assert "hadaemon stopping" in out and "hadaemon stopped" in out
    assert store_value(tmp_path / "var", "plugin/marker/hello") == "world"
    assert isinstance(store_value(tmp_path / "var", "registry/sysvar/heartbeat"), int)


def test_run_json_logs(tmp_path: pathlib.Path, processes: ChildProcesses) -> None:
    config = make_config(tmp_path, log={"format": "json"})
    daemon = DaemonProcess(config, processes=processes).start()
    assert daemon.stop() == 0
    records = [json.loads(line) for line in daemon.output().splitlines() if line.strip()]
    started = [r for r in records if r["message"].startswith("hadaemon started:")]
    assert started and started[0]["level"] == "info"
    assert started[0]["namespace"] == "hadaemon.daemon"


def test_run_refuses_bad_config(tmp_path: pathlib.Path) -> None:
    config = make_config(tmp_path, daemon={"stop_timeout": "x"})
    result = run_cli("run", "--config", str(config))
    assert result.returncode == 1
    assert '[daemon].stop_timeout: expected a number, got "x"' in result.stderr
    assert not (tmp_path / "started").exists()


def test_blocked_stop_still_ends_the_process(tmp_path: pathlib.Path,
                                             processes: ChildProcesses) -> None:
    config = make_config(tmp_path, marker={"block_stop": True}, daemon={"stop_timeout": 1.0})
    daemon = DaemonProcess(config, processes=processes).start()
    status = daemon.stop(timeout=120)  # a hang guard only
    # ended by the hard exit once its 1 s budget was spent (not by the plugin's stop)
    assert status == 1
    assert "stop budget exceeded" in daemon.output()


def test_second_signal_forces_exit(tmp_path: pathlib.Path, processes: ChildProcesses) -> None:
    config = make_config(tmp_path, marker={"block_stop": True}, daemon={"stop_timeout": 60.0})
    daemon = DaemonProcess(config, processes=processes).start()
    daemon.send_signal(signal.SIGINT)
    # now blocked inside the plugin's stop
    poll_until((tmp_path / "stopped").exists, 30, "the plugin's stop to begin")
    daemon.send_signal(signal.SIGINT)
    # forced by the second signal (128 + SIGINT), not by the 60 s budget's hard exit (1)
    assert daemon.wait(timeout=50) == 128 + signal.SIGINT


# -- twistd --------------------------------------------------------------------------------


def twistd(*args: str) -> list[str]:
    return [str(BIN / "twistd"), *args]


def test_twistd_lists_the_plugin() -> None:
    result = subprocess.run(twistd("--help"), capture_output=True, text=True, timeout=60,
                            cwd="/")
    assert result.returncode == 0
    assert "hadaemon" in result.stdout


def test_twistd_foreground_start_and_sigterm(tmp_path: pathlib.Path,
                                            processes: ChildProcesses) -> None:
    config = make_config(tmp_path)
    daemon = DaemonProcess(
        config, processes=processes,
        command=twistd("-n", "--pidfile=", "--logfile=-", "hadaemon", "--config", str(config)),
    ).start()
    out = daemon.output()
    assert "AsyncioSelectorReactor" in out
    status = daemon.stop(signal.SIGTERM, timeout=15)
    # twistd's own convention: it re-raises SIGTERM on itself, which a shell (and
    # systemd) reports as status 143; Popen reports it as -15.
    assert status == -signal.SIGTERM
    assert (tmp_path / "stopped").exists()
    assert "hadaemon stopped" in daemon.output()


def test_twistd_daemonizes_with_pidfile_and_logfile(tmp_path: pathlib.Path,
                                                    processes: ChildProcesses) -> None:
    config = make_config(tmp_path)
    pidfile, logfile = tmp_path / "hadaemon.pid", tmp_path / "hadaemon.log"
    launcher = processes.spawn(
        twistd(f"--pidfile={pidfile}", f"--logfile={logfile}", "hadaemon", "--config",
               str(config)),
        cwd=str(tmp_path),
    )
    assert launcher.wait(timeout=30) == 0  # the launcher returns once daemonized
    poll_until(lambda: logfile.exists() and "hadaemon started:" in logfile.read_text(), 30,
               "the daemonized hadaemon to start")
    pid = int(pidfile.read_text())
    try:
        assert pid != launcher.pid
        os.kill(pid, signal.SIGTERM)
        poll_until(lambda: not (pidfile.exists() or _alive(pid)), 60,
                   "the daemon to stop and remove its pid file")
    finally:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
    log = logfile.read_text()
    assert "hadaemon stopping" in log and "hadaemon stopped" in log
    assert (tmp_path / "stopped").exists()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is not alive: the daemonized process is not our child, so init reaps it.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_twistd_refuses_another_reactor(tmp_path: pathlib.Path) -> None:
    config = make_config(tmp_path)
    result = subprocess.run(
        twistd("-n", "-r", "epoll", "hadaemon", "--config", str(config)),
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )
    assert result.returncode != 0
    assert "needs Twisted's asyncio reactor" in result.stdout + result.stderr
    assert not (tmp_path / "started").exists()


def test_twistd_reports_config_errors(tmp_path: pathlib.Path) -> None:
    config = make_config(tmp_path, heartbeat={"interval": "x"})
    result = subprocess.run(
        twistd("-n", "hadaemon", "--config", str(config)),
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )
    assert result.returncode != 0
    assert '[heartbeat].interval: expected a number, got "x"' in result.stdout + result.stderr


def test_check_runs_plugin_checks(tmp_path: pathlib.Path) -> None:
    pdir = tmp_path / "plugins"
    pdir.mkdir()
    (pdir / "picky.py").write_text(textwrap.dedent('''
        from hadaemon.config import Section, Str
        from hadaemon.plugin import Plugin

        class Picky(Plugin):
            name = "picky"
            schema = Section({"file": Str()})

            @classmethod
            def check_config(cls, section, config):
                return [] if section["file"].endswith(".py") else [
                    f"file {section['file']!r} is not a Python file"]
    '''))
    config = write_config(tmp_path / "c.toml", {
        "daemon": {"plugin_dirs": ["plugins"], "plugins": ["picky"]},
        "picky": {"file": "automation.txt"},
    })
    result = run_cli("check", "--config", str(config))
    assert result.returncode == 1
    assert f"{config}: [picky]: file 'automation.txt' is not a Python file" in result.stderr
