"""Hot reload benchmark, the core's part: the watcher, plugins, automations, the config.

Prints median, p90 and worst over the rounds of:

1. the watcher alone: from an editor's save (a new file renamed over the old one) to the
   change being reported, with inotify and with polling (``[daemon].reload_poll_interval``
   of 0.1 s here), both after ``[daemon].reload_settle`` of quiet (part of each figure);
2. a plugin file in a plugin directory saved -> its new version started (a daemon in this
   process with the real watcher; the plugin stamps the time its start ran);
3. an automation saved -> its new version running (its module-level code stamps the time;
   the daemon runs mqtt, the zigbee2mqtt simulator and the adapter on a real broker);
4. ``reload_config()`` of a config that did not change, and of one whose plugin section
   changed (the plugin restarts): the check ``hadaemon check`` does (in a thread) and the
   diff, then the restart.

Node and service reload: ``benchmarks/reload.py``. The machine may be shared: the load
average is printed beside the figures. Run it by hand:
``.venv/bin/python benchmarks/reload_core.py [--rounds 20] [--settle 0.05]``.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

from hadaemon.app import prepare
from hadaemon.daemon import Daemon
from hadaemon.reload import FileWatcher
from hadaemon.testing import Broker, run_in_reactor, wait_until, write_config

PLUGIN = '''\
import time
from hadaemon.config import Int, Section
from hadaemon.plugin import Plugin

STAMPS = {stamps!r}


class Bench(Plugin):
    name = "bench"
    schema = Section({{"value": Int(default=0)}})

    def start(self):
        with open(STAMPS, "a") as out:
            out.write(f"{{time.time()}}\\n")
'''

AUTOMATION = '''\
import time
from pyziggy_autogenerate.available_devices import AvailableDevices

with open({stamps!r}, "a") as out:
    out.write(f"{{time.time()}}\\n")
devices = AvailableDevices()
VERSION = {version}
'''


def save(path: pathlib.Path, text: str) -> float:
    """Save as an editor does (a new file renamed over the old); the time it was saved."""
    fresh = path.with_name(f".{path.name}.new")
    fresh.write_text(text)
    saved = time.time()
    os.replace(fresh, path)
    return saved


def figures(name: str, seconds: list[float]) -> None:
    ms = sorted(s * 1000 for s in seconds)
    p90 = ms[min(len(ms) - 1, int(len(ms) * 0.9))]
    print(f"  {name:<50} median {statistics.median(ms):7.1f} ms   p90 {p90:7.1f} ms   "
          f"worst {ms[-1]:7.1f} ms   ({len(ms)} rounds)")


def bench_watcher(root: pathlib.Path, rounds: int, settle: float, inotify: bool) -> list[float]:
    path = root / ("watched_inotify.py" if inotify else "watched_polling.py")
    path.write_text("0\n")
    seen: list[float] = []

    async def scenario(reactor: Any) -> list[float]:
        watcher = FileWatcher(reactor, lambda _paths: seen.append(time.time()),
                              settle=settle, poll_interval=0.1, use_inotify=inotify)
        watcher.start()
        watcher.watch([path])
        out: list[float] = []
        for round_ in range(rounds):
            saved = save(path, f"{round_ + 1}\n")
            await wait_until(reactor, lambda: len(seen) > len(out), timeout=10,
                             interval=0.001)
            out.append(seen[-1] - saved)
        watcher.stop()
        return out

    result: list[float] = run_in_reactor(scenario, timeout=600)
    return result


def _stamps(path: pathlib.Path) -> list[float]:
    return [float(line) for line in path.read_text().split()] if path.exists() else []


async def _each_save(reactor: Any, rounds: int, stamps: pathlib.Path,
                     write: Callable[[int], float]) -> list[float]:
    out: list[float] = []
    first = len(_stamps(stamps))
    for round_ in range(rounds):
        saved = write(round_ + 2)
        await wait_until(reactor, lambda: len(_stamps(stamps)) > first + len(out),
                         timeout=30, interval=0.001)
        out.append(_stamps(stamps)[-1] - saved)
    return out


def bench_plugin(root: pathlib.Path, rounds: int, settle: float) -> tuple[list[float], ...]:
    plugins = root / "plugins"
    plugins.mkdir()
    stamps = root / "plugin_stamps"
    code = plugins / "bench.py"
    code.write_text(PLUGIN.format(stamps=str(stamps)))
    config = root / "plugin.toml"
    write_config(config, {"daemon": {"state_dir": "state-p", "plugins": ["bench"],
                                     "plugin_dirs": ["plugins"], "reload_settle": settle}})

    async def scenario(reactor: Any) -> tuple[list[float], ...]:
        prepared = prepare(str(config), strict=False)
        daemon = Daemon(prepared.config, reactor, catalog=prepared.catalog)
        daemon.startService()
        await daemon.started
        saves = await _each_save(reactor, rounds, stamps, lambda version: save(
            code, PLUGIN.format(stamps=str(stamps)) + f"\nVERSION = {version}\n"))
        same, changed = [], []
        for round_ in range(rounds):
            began = time.time()
            await daemon.reloader.reload_config()
            same.append(time.time() - began)
            write_config(config, {"daemon": {"state_dir": "state-p", "plugins": ["bench"],
                                             "plugin_dirs": ["plugins"],
                                             "reload_settle": settle},
                                  "bench": {"value": round_ + 1}})
            began = time.time()
            result = await daemon.reloader.reload_config()
            assert result.restarted == ["bench"], result
            changed.append(time.time() - began)
        await daemon.stopService()
        return saves, same, changed

    result: tuple[list[float], ...] = run_in_reactor(scenario, timeout=600)
    return result


def bench_automation(root: pathlib.Path, rounds: int, settle: float) -> list[float]:
    stamps = root / "automation_stamps"
    automation = root / "automation" / "lights.py"
    automation.parent.mkdir()
    automation.write_text(AUTOMATION.format(stamps=str(stamps), version=1))
    with Broker(workdir=root / "broker") as broker:
        config = root / "zigbee.toml"
        write_config(config, {
            "daemon": {"state_dir": "state-z", "reload_settle": settle,
                       "plugins": ["mqtt", "zigbee2mqtt_simulator", "zigbee2mqtt"]},
            "mqtt": {"host": broker.host, "port": broker.port, "client_id": "reload-bench"},
            "zigbee2mqtt": {"automations": [str(automation)], "typecheck": False,
                            "initial_query": False},
            "zigbee2mqtt_simulator": {"report_interval": 0.0, "latency": 0.0},
        })

        async def scenario(reactor: Any) -> list[float]:
            prepared = prepare(str(config), strict=False)
            daemon = Daemon(prepared.config, reactor, catalog=prepared.catalog)
            daemon.startService()
            await daemon.started
            zigbee: Any = daemon.plugin("zigbee2mqtt")
            await wait_until(reactor, lambda: zigbee.network.ready, timeout=30)
            out = await _each_save(reactor, rounds, stamps, lambda version: save(
                automation, AUTOMATION.format(stamps=str(stamps), version=version)))
            await daemon.stopService()
            return out

        result: list[float] = run_in_reactor(scenario, timeout=600)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--settle", type=float, default=0.05)
    args = parser.parse_args()
    print(f"hot reload, core ({args.rounds} rounds, reload_settle {args.settle} s, "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores)")
    with tempfile.TemporaryDirectory() as directory:
        root = pathlib.Path(directory)
        figures("watcher, inotify: saved -> reported", bench_watcher(
            root, args.rounds, args.settle, inotify=True))
        figures("watcher, polling every 0.1 s: saved -> reported", bench_watcher(
            root, args.rounds, args.settle, inotify=False))
        saves, same, changed = bench_plugin(root, args.rounds, args.settle)
        figures("plugin file saved -> new version started", saves)
        figures("reload_config(), nothing changed", same)
        figures("reload_config(), a plugin's section changed", changed)
        figures("automation saved -> new version running", bench_automation(
            root, args.rounds, args.settle))
    print(f"  (load average now {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
