"""Config reload on a running daemon: added, removed, changed, refused; real plugin files
and a real config file (in process), then SIGHUP and ``hadaemon reload`` on a real
``hadaemon run``."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
from typing import Any

from hadaemon.testing import ChildProcesses, DaemonProcess, run_in_reactor, wait_until

from .plugin_kit import PLUGINS, Kit, errors_of


def test_added_removed_changed_and_untouched_plugins(tmp_path: pathlib.Path) -> None:
    kit = Kit(tmp_path)
    kit.write_config(["counter", "follower", "bystander", "tuner"],
                     counter={"value": 1}, tuner={"level": 1})

    async def scenario(reactor: Any) -> None:
        daemon = kit.daemon(reactor)
        daemon.startService()
        await daemon.started
        before = {name: daemon.plugin(name) for name in ("counter", "follower", "bystander",
                                                           "tuner")}
        assert kit.take() == ["start counter v1", "start follower v1", "start bystander v1",
                              "start tuner v1"]
        # counter's section changes (it restarts, and follower, which requires it, after
        # it); tuner's changes (it reconfigures in place); bystander goes, flaky comes.
        kit.write_config(["counter", "follower", "tuner", "flaky"],
                         counter={"value": 2}, tuner={"level": 5})
        result = await daemon.reloader.reload_config()
        assert result.applied, result.errors
        assert result.added == ["flaky"] and result.removed == ["bystander"]
        assert result.reconfigured == ["tuner"]
        assert result.restarted == ["counter", "follower"]
        assert kit.take() == [
            "stop bystander v1",
            "reconfigure5 tuner v1",
            "stop follower v1", "stop counter v1",
            "start counter v1", "start follower v1", "start flaky v1",
        ]
        assert daemon.plugin("bystander") is None and not before["bystander"].running
        counter, follower, tuner = (daemon.plugin(n) for n in ("counter", "follower", "tuner"))
        assert counter is not before["counter"] and counter.config["value"] == 2
        assert follower is not before["follower"] and follower.counter is counter
        assert tuner is before["tuner"] and tuner.levels == [1, 5]
        assert tuner.config["level"] == 5  # context.config is the new section
        assert not daemon.failed
        # nothing changed: nothing happens
        result = await daemon.reloader.reload_config()
        assert result.applied and result.summary() == "config reloaded: nothing changed"
        assert kit.take() == []
        # reconfigure may ask for a restart
        kit.write_config(["counter", "follower", "tuner", "flaky"],
                         counter={"value": 2}, tuner={"level": 5, "restart": True})
        result = await daemon.reloader.reload_config()
        assert result.restarted == ["tuner"] and kit.take() == ["stop tuner v1",
                                                                "start tuner v1"]
        await daemon.stopService()

    run_in_reactor(scenario, timeout=60)


def _check_messages(config: pathlib.Path) -> list[str]:
    # What `hadaemon check` prints for this config: its error lines (not the count).
    proc = subprocess.run([sys.executable, "-m", "hadaemon", "check", "--config", str(config)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.strip().split("\n")
             if not line.startswith("warning: ")]
    if lines[-1] == f"{config}: {len(lines) - 1} error(s)":
        return lines[:-1]
    return lines  # a file it cannot read: the errors alone


def test_a_config_check_refuses_is_refused_with_its_messages(tmp_path: pathlib.Path) -> None:
    kit = Kit(tmp_path)
    kit.write_config(["counter", "bystander"], counter={"value": 1})
    good = kit.config.read_text()
    bad_configs = [
        # a wrong type, an unknown key, an unknown plugin, a requirement not enabled
        (["counter", "nosuch", "follower"], {"counter": {"value": "two", "colour": 1}}),
        (["counter"], {"bystander": {"value": []}}),
    ]

    async def scenario(reactor: Any) -> None:
        daemon = kit.daemon(reactor)
        daemon.startService()
        await daemon.started
        running = dict(daemon.plugins)
        errors = errors_of(daemon)
        kit.take()
        for plugins, sections in bad_configs:
            kit.write_config(plugins, **sections)
            expected = _check_messages(kit.config)
            result = await daemon.reloader.reload_config()
            assert not result.applied
            assert result.errors == expected
            assert errors[-1].source == "reload" and "refused" in errors[-1].message
        kit.config.write_text("[daemon\nplugins = [")  # not even TOML
        result = await daemon.reloader.reload_config()
        assert not result.applied and "invalid TOML" in result.errors[0]
        assert result.errors == _check_messages(kit.config)
        # nothing was touched: the same services, the old config
        assert dict(daemon.plugins) == running and all(s.running for s in running.values())
        assert daemon.config.section("counter")["value"] == 1 and kit.take() == []
        kit.config.write_text(good.replace("value = 1", "value = 3"))
        result = await daemon.reloader.reload_config()
        assert result.applied and result.restarted == ["counter"]
        await daemon.stopService()

    run_in_reactor(scenario, timeout=120)


def test_a_plugin_failing_to_start_is_retried_with_backoff(tmp_path: pathlib.Path) -> None:
    kit = Kit(tmp_path)
    kit.write_config(["counter"])

    async def scenario(reactor: Any) -> None:
        daemon = kit.daemon(reactor)
        daemon.startService()
        await daemon.started
        counter = daemon.plugin("counter")
        kit.fail.write_text("")
        kit.write_config(["counter", "flaky"])
        result = await daemon.reloader.reload_config()
        assert result.applied and "flaky" in result.failed
        assert "flaky cannot start" in result.failed["flaky"]
        # tried again (0.1 s, 0.2 s, 0.4 s, 0.4 s ...) while it fails
        backoff = await wait_until(reactor, lambda: (
            daemon.reloader._retries.get("flaky", (None,))[0]), what="a retry")
        await wait_until(reactor, lambda: backoff.failures >= 3, timeout=20,
                         what="three retries")
        assert daemon.plugin("counter") is counter and counter.running
        kit.fail.unlink()
        await wait_until(reactor, lambda: daemon.plugin("flaky") is not None, timeout=20,
                         what="flaky running")
        assert "start flaky v1" in kit.lines() and "flaky" not in daemon.reloader._retries
        assert daemon.plugin("counter") is counter
        await daemon.stopService()

    run_in_reactor(scenario, timeout=60)


def _hadaemon(processes: ChildProcesses, *args: str,
              env: dict[str, str] | None = None) -> tuple[int, str, str]:
    proc = processes.spawn([sys.executable, "-m", "hadaemon", *args], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env={**os.environ, **(env or {})})
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out.decode(), err.decode()


def test_sighup_and_hadaemon_reload_on_a_running_daemon(tmp_path: pathlib.Path,
                                                        processes: ChildProcesses) -> None:
    kit = Kit(tmp_path)
    kit.write_config(["counter", "bystander"])
    daemon = DaemonProcess(kit.config, processes=processes).start(timeout=60)
    assert daemon.proc is not None
    pid_file = tmp_path / "state" / "hadaemon.pid"
    assert pid_file.read_text() == f"{daemon.proc.pid}\n{kit.config.resolve()}\n"
    assert "watching code for changes (inotify)" in daemon.output()  # auto under run
    kit.take()
    # SIGHUP: tuner added
    kit.write_config(["counter", "bystander", "tuner"])
    daemon.send_signal(signal.SIGHUP)
    daemon.wait_for_output("config reloaded: added tuner", timeout=60)
    assert kit.take() == ["start tuner v1"]
    # hadaemon reload (no web plugin: the signal, after the check): bystander removed
    kit.write_config(["counter", "tuner"])
    code, out, err = _hadaemon(processes, "reload", "--config", str(kit.config))
    assert code == 0, err
    assert out == (f"sent SIGHUP to the daemon (pid {daemon.proc.pid}): it re-reads "
                   f"{kit.config} and logs what it applied\n")
    daemon.wait_for_output("config reloaded: removed bystander", timeout=60)
    # a config check refuses: the command says so as check does and sends nothing
    kit.write_config(["counter", "tuner"], tuner={"level": "high"})
    code, out, err = _hadaemon(processes, "reload", "--config", str(kit.config))
    assert code == 1 and out == ""
    assert "[tuner].level" in err and f"{kit.config}: 1 error(s)" in err
    assert "nothing sent, the daemon keeps its running config" in err
    # another config file on the same state directory: not the daemon's, said so
    other = tmp_path / "other.toml"
    other.write_text(kit.config.read_text())
    code, out, err = _hadaemon(processes, "reload", "--config", str(other))
    assert code == 1 and out == ""
    assert err.endswith(f"hadaemon reload: the daemon (pid {daemon.proc.pid}) runs with "
                        f"{kit.config.resolve()}, not {other}: pass --config "
                        f"{kit.config.resolve()}\n")
    # SIGHUP with that config: refused by the daemon, which runs on
    daemon.send_signal(signal.SIGHUP)
    daemon.wait_for_output("config reload refused (1 error(s)); the running config stays",
                           timeout=60)
    assert "[tuner].level" in daemon.output() and daemon.proc.poll() is None
    assert kit.take() == ["stop bystander v1"]
    # a storm of signals: reloads one after the other, the daemon runs on
    kit.write_config(["counter", "tuner"])
    for _ in range(10):
        daemon.send_signal(signal.SIGHUP)
    kit.write_config(["counter", "tuner", "bystander"])
    daemon.send_signal(signal.SIGHUP)
    daemon.wait_for_output("config reloaded: added bystander", timeout=60)
    assert daemon.proc.poll() is None and kit.take() == ["start bystander v1"]
    assert daemon.stop() == 0
    assert not pid_file.exists()
    # no daemon running: said plainly
    code, out, err = _hadaemon(processes, "reload", "--config", str(kit.config), "--signal")
    assert code == 1 and "hadaemon reload:" in err


def test_hadaemon_reload_through_the_web_api(tmp_path: pathlib.Path,
                                             processes: ChildProcesses) -> None:
    from hadaemon.broker.ports import free_tcp_port

    kit = Kit(tmp_path)
    port = free_tcp_port()
    web = {"port": port, "address": "127.0.0.1"}
    kit.write_config(["web", "counter"], web=web)
    code, out, err = _hadaemon(processes, "token", "create", "reload-test", "--config",
                               str(kit.config))
    assert code == 0, err
    token = out.splitlines()[0].strip()
    env = {"HADAEMON_ADMIN_PASSWORD": "correct horse battery staple"}
    daemon = DaemonProcess(kit.config, processes=processes, env=env).start(timeout=60)
    kit.take()
    kit.write_config(["web", "counter", "tuner"], web=web)
    auth = {"HADAEMON_TOKEN": token}
    code, out, err = _hadaemon(processes, "reload", "--config", str(kit.config), env=auth)
    assert (code, err) == (0, "")
    assert out == f"added: tuner\n{kit.config}: reloaded\n"
    assert kit.take() == ["start tuner v1"]
    kit.write_config(["web", "counter", "tuner"], web=web, tuner={"level": "high"})
    code, out, err = _hadaemon(processes, "reload", "--config", str(kit.config), env=auth)
    assert code == 1 and out == ""
    assert err.startswith(f"{kit.config}: [tuner].level")
    assert err.endswith("1 error(s); the daemon keeps its running config\n")
    # the web plugin's own section: it restarts under the request, which still answers
    kit.write_config(["web", "counter", "tuner"], web={**web, "log_lines": 500})
    code, out, err = _hadaemon(processes, "reload", "--config", str(kit.config), env=auth)
    assert (code, err) == (0, "") and out == f"restarted: web\n{kit.config}: reloaded\n"
    code, out, err = _hadaemon(processes, "status", "--json", "--config", str(kit.config),
                               env=auth)
    assert code == 0, err  # the new instance serves
    assert json.loads(out)["reload"] == {"mode": "auto", "watching": "inotify",
                                         "files": len(PLUGINS), "config_reloads": 2}
    assert daemon.proc is not None and daemon.proc.poll() is None
    assert daemon.stop() == 0


def test_twistd_watches_nothing_unless_set_and_reloads_on_sighup(
        tmp_path: pathlib.Path, processes: ChildProcesses) -> None:
    kit = Kit(tmp_path)
    twistd = str(pathlib.Path(sys.executable).parent / "twistd")
    command = [twistd, "-n", "--pidfile=", "--logfile=-", "hadaemon", "--config",
               str(kit.config)]
    kit.write_config(["counter"])
    daemon = DaemonProcess(kit.config, processes=processes, command=command).start(timeout=60)
    assert "watching code for changes" not in daemon.output()  # off under twistd
    kit.write_config(["counter", "tuner"])
    daemon.send_signal(signal.SIGHUP)  # the config is re-read all the same
    daemon.wait_for_output("config reloaded: added tuner", timeout=60)
    assert daemon.stop(signal.SIGINT) == -signal.SIGINT
    # set in the file: watched under twistd too
    kit.write_config(["counter"], daemon={"reload": "auto"})
    daemon = DaemonProcess(kit.config, processes=processes, command=command).start(timeout=60)
    assert "watching code for changes (inotify)" in daemon.output()
    kit.take()
    kit.write_plugin("counter", version=2)
    daemon.wait_for_output("restarting counter", timeout=60)
    assert daemon.stop(signal.SIGINT) == -signal.SIGINT
    assert kit.lines()[:2] == ["stop counter v1", "start counter v2"]


def test_hadaemon_reload_after_the_daemon_was_killed(tmp_path: pathlib.Path,
                                                     processes: ChildProcesses) -> None:
    kit = Kit(tmp_path)
    kit.write_config(["counter"])
    daemon = DaemonProcess(kit.config, processes=processes).start(timeout=60)
    assert daemon.proc is not None
    pid = daemon.proc.pid
    assert daemon.stop(signal.SIGKILL) == -signal.SIGKILL
    # its pid file is left behind, but no process holds the store's lock any more
    assert (tmp_path / "state" / "hadaemon.pid").exists()
    code, out, err = _hadaemon(processes, "reload", "--config", str(kit.config))
    assert code == 1 and out == ""
    assert err == (f"hadaemon reload: no daemon running with the state directory "
                   f"{tmp_path / 'state'} ({tmp_path / 'state' / 'hadaemon.pid'} is left "
                   f"over from pid {pid})\n")
