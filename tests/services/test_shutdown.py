"""The daemon as a process: services whose Stop raises or hangs do not keep it alive."""

from __future__ import annotations

import importlib.metadata
import pathlib
import signal

from hadaemon.testing import ChildProcesses, DaemonProcess, write_config

from .helpers import write_services

# Until the lead adds the entry point, `hadaemon run` finds the plugin in a plugin dir.
SHIM = '''
from hadaemon.services.plugin import ServicesPlugin


class Services(ServicesPlugin):
    name = "services"
'''

RAISING_STOP = '''
from base_service import CustomService

class RaisingStop(CustomService):
    async def Stop(self):
        raise RuntimeError("cannot stop, on purpose")
'''

HANGING_STOP = '''
import asyncio
from base_service import CustomService

class HangingStop(CustomService):
    async def Start(self):
        while True:                     # Start runs forever, too
            await asyncio.sleep(0.05)

    async def Stop(self):
        while True:                     # and Stop even refuses to be cancelled
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                pass
'''

GOOD_STOP = '''
from base_service import CustomService

class GoodStop(CustomService):
    async def Start(self):
        await self.Debug("good service started")

    async def Stop(self):
        with open(self.GetPropertyValue("static", "marker"), "w") as f:
            f.write("stopped")
        await self.Debug("good service stopped")
'''


def plugin_dirs(tmp_path: pathlib.Path) -> list[str]:
    if importlib.metadata.entry_points(group="hadaemon.plugins", name="services"):
        return []
    directory = tmp_path / "plugins"
    directory.mkdir()
    (directory / "services_plugin.py").write_text(SHIM)
    return [str(directory)]


def test_raising_and_hanging_stop_do_not_keep_the_daemon_alive(
    tmp_path: pathlib.Path, processes: ChildProcesses
) -> None:
    write_services(tmp_path / "services", {
        "RaisingStop": RAISING_STOP, "HangingStop": HANGING_STOP, "GoodStop": GOOD_STOP,
    })
    marker = tmp_path / "good-stopped"
    config = write_config(tmp_path / "hadaemon.toml", {
        "daemon": {"state_dir": "var", "plugins": ["services"],
                   "plugin_dirs": plugin_dirs(tmp_path), "stop_timeout": 10.0},
        "services": {
            "directories": ["services"],
            "stop_timeout": 0.5,
            "service": {"RaisingStop": {}, "HangingStop": {},
                        "GoodStop": {"static": {"marker": str(marker)}}},
        },
    })
    daemon = DaemonProcess(config, processes=processes).start(timeout=20)
    daemon.wait_for_output("good service started", timeout=10)
    status = daemon.stop(signal.SIGTERM, timeout=120)  # a hang guard only
    output = daemon.output()
    assert status == 0, output
    # the hanging Stop cost its 0.5 s, not the plugin's limit nor the daemon's budget
    assert "plugin services did not stop within" not in output, output
    assert "stop budget exceeded" not in output, output
    assert marker.read_text() == "stopped"  # the others still stopped
    assert "good service stopped" in output
    assert "Stop failed: RuntimeError: cannot stop, on purpose" in output
    assert "Traceback" in output
    assert "service hangingstop_py: Stop did not return within 0.5s; going on without it" \
        in output
    assert "hadaemon stopped" in output
