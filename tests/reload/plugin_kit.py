"""Real plugin files in a real plugin directory, for the reload tests.

Each plugin writes what happens to it (``start counter v1``) into a journal file, so a
test reads the order of stops and starts as it happened, across re-imported modules.
"""

from __future__ import annotations

import os
import pathlib
import textwrap
from typing import Any

from hadaemon.app import prepare
from hadaemon.bus import ErrorEvent, Event
from hadaemon.daemon import Daemon
from hadaemon.testing import write_config

HEADER = '''\
import pathlib
from hadaemon.config import Bool, Int, Section, Str
from hadaemon.plugin import Plugin
from hadaemon.reload import RestartNeeded

JOURNAL = {journal!r}
FAIL = {fail!r}
VERSION = {version}


def note(plugin, what):
    with open(JOURNAL, "a") as journal:
        journal.write(f"{{what}} {{plugin.name}} v{{VERSION}}\\n")
'''

PLUGINS = {
    "counter": '''
class Counter(Plugin):
    name = "counter"
    schema = Section({"value": Int(default=0)})

    def start(self):
        note(self, "start")

    def stop(self):
        note(self, "stop")
''',
    "follower": '''
class Follower(Plugin):
    name = "follower"
    requires = ("counter",)
    schema = Section({"label": Str(default="")})

    def start(self):
        self.counter = self.context.plugin("counter")
        assert self.counter is not None and self.counter.running
        note(self, "start")

    def stop(self):
        note(self, "stop")
''',
    "onlooker": '''
class Onlooker(Plugin):
    name = "onlooker"
    wants = ("counter",)

    def start(self):
        note(self, "start")

    def stop(self):
        note(self, "stop")
''',
    "bystander": '''
class Bystander(Plugin):
    name = "bystander"
    schema = Section({"value": Int(default=0)})

    def start(self):
        note(self, "start")

    def stop(self):
        note(self, "stop")
''',
    "tuner": '''
class Tuner(Plugin):
    name = "tuner"
    schema = Section({"level": Int(default=0), "restart": Bool(default=False)})

    def start(self):
        self.levels = [self.config["level"]]
        note(self, "start")

    def stop(self):
        note(self, "stop")

    def reconfigure(self, section, config):
        if section["restart"]:
            raise RestartNeeded("restart asked for")
        self.levels.append(section["level"])
        note(self, f"reconfigure{section['level']}")
''',
    "flaky": '''
class Flaky(Plugin):
    name = "flaky"
    schema = Section({"value": Int(default=0)})

    def start(self):
        if pathlib.Path(FAIL).exists():
            raise RuntimeError("flaky cannot start: " + FAIL + " exists")
        note(self, "start")

    def stop(self):
        note(self, "stop")
''',
}


class Kit:
    """A plugin directory with the plugins above, a journal and a config file."""

    def __init__(self, root: pathlib.Path) -> None:
        self.root = root
        self.plugins = root / "plugins"
        self.plugins.mkdir(parents=True, exist_ok=True)
        self.journal = root / "journal.txt"
        self.journal.write_text("")
        self.fail = root / "fail"
        self.config = root / "hadaemon.toml"
        for name in PLUGINS:
            self.write_plugin(name)

    def write_plugin(self, name: str, *, version: int = 1, extra: str = "",
                     body: str | None = None) -> pathlib.Path:
        path = self.plugins / f"{name}.py"
        text = HEADER.format(journal=str(self.journal), fail=str(self.fail), version=version)
        text += textwrap.dedent(extra) + (body if body is not None else PLUGINS[name])
        path.write_text(text)
        return path

    def write_config(self, plugins: list[str], **sections: Any) -> pathlib.Path:
        daemon = {"state_dir": "state", "plugins": plugins, "plugin_dirs": ["plugins"],
                  "reload_retry_delay": 0.1, "reload_retry_delay_max": 0.4,
                  "stop_timeout": 10.0}
        daemon.update(sections.pop("daemon", {}))
        # Saved as careful editors save: a new file renamed over the old one, so a
        # reload under way never reads it half written.
        written = write_config(self.config.with_suffix(".new"), {"daemon": daemon, **sections})
        os.replace(written, self.config)
        return self.config

    def daemon(self, reactor: Any) -> Daemon:
        prepared = prepare(str(self.config), strict=False)
        prepared.raise_for_errors()
        return Daemon(prepared.config, reactor, catalog=prepared.catalog)

    def lines(self) -> list[str]:
        return self.journal.read_text().splitlines()

    def take(self) -> list[str]:
        """The journal's lines since the last take."""
        lines = self.lines()
        self.journal.write_text("")
        return lines


def errors_of(daemon: Any) -> list[ErrorEvent]:
    """The error events the daemon's bus publishes from now on, as they come."""
    found: list[ErrorEvent] = []

    def on_error(event: Event) -> None:
        if isinstance(event, ErrorEvent):
            found.append(event)

    daemon.bus.subscribe("error/#", on_error)
    return found
