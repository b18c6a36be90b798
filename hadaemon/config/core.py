"""The daemon's own config sections: ``[daemon]``, ``[log]``, ``[watchdog]``, ``[store]``."""

from __future__ import annotations

import pathlib
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from twisted.logger import LogLevel

from hadaemon.config.errors import KeyPath
from hadaemon.config.schema import (
    Bool,
    Choice,
    Context,
    Float,
    Int,
    Invalid,
    List,
    Map,
    Path,
    Section,
    Str,
)
from hadaemon.config.settings import Settings, setting
from hadaemon.logs import LEVEL_NAMES, parse_level

_LEVEL = Choice(*LEVEL_NAMES)


class _DaemonName(Str):
    """A daemon's name is a level of MQTT topics and the host part of addresses
    (``node:<id>@<name>``): none of the characters those give a meaning to."""

    def convert(self, value: Any, ctx: Context, path: KeyPath) -> Any:
        value = super().convert(value, ctx, path)
        bad = sorted({c for c in value if c in "/+#@" or c.isspace() or c == "\x00"})
        if bad:
            raise Invalid(f"a daemon name may not contain {', '.join(map(repr, bad))}: "
                          f"got {value!r}")
        return value

@dataclass(frozen=True, kw_only=True)
class DaemonSection(Settings):
    section_doc: ClassVar[str] = "The daemon itself."

    name: str = setting(_DaemonName(
        default="", doc='Name of this daemon (logs, MQTT client ids, its host name in a '
        'federation: docs/federation.md); "" means the machine\'s host name. No "/", '
        '"+", "#" or "@".'))
    state_dir: pathlib.Path = setting(Path(
        default="var", doc="Directory for the state store and credentials (created if missing)."))
    plugins: list[str] = setting(List(
        Str(non_empty=True), default=[], unique=True,
        doc="Plugins and adapters to run, by name. They start in this order, except "
        "that a plugin starts after those it declares it needs (requires, wants); "
        "they stop in reverse.",
    ))
    plugin_dirs: list[pathlib.Path] = setting(List(
        Path(), default=["plugins"],
        doc="Directories searched for plugin modules (besides installed entry points); "
        "the default is skipped quietly when it does not exist.",
    ))
    stop_timeout: float = setting(Float(
        default=45.0, min=0.5,
        doc="Budget in seconds for a graceful stop, all services together."))
    service_stop_timeout: float = setting(Float(
        default=10.0, min=0.1,
        doc="Default time one service may take to stop (a service may declare its own)."))
    reload: str = setting(Choice(
        "auto", "off", default="auto",
        doc='Hot reload (docs/reload.md): "auto" watches the code of nodes, services, '
        'automations and plugins and reloads what changed; "off" watches nothing. The '
        "default is auto under hadaemon run and embedding, off under twistd unless set "
        "here. SIGHUP and hadaemon reload re-read the config either way."))
    reload_settle: float = setting(Float(
        default=0.05, min=0.0,
        doc="Seconds without further changes before a burst of saves is reloaded (at "
        "most 20 times this after the first change)."))
    reload_poll_interval: float = setting(Float(
        default=1.0, min=0.05,
        doc="Seconds between two looks at the watched files where inotify is missing."))
    reload_retry_delay: float = setting(Float(
        default=1.0, min=0.0,
        doc="Seconds before a plugin that failed to start after a reload is tried again "
        "(doubling after each failure in a row)."))
    reload_retry_delay_max: float = setting(Float(
        default=60.0, min=0.0, doc="The longest wait between two of those tries."))


@dataclass(frozen=True, kw_only=True)
class LogSection(Settings):
    section_doc: ClassVar[str] = "Logging (twisted.logger namespaces)."

    level: str = setting(Choice(*LEVEL_NAMES, default="info", doc="Default level."))
    format: str = setting(Choice(
        "text", "json", default="text", doc="text for people, json lines."))
    file: str = setting(Str(
        default="-", doc='Where hadaemon run writes its log ("-" = stdout); under twistd, an '
        "extra file besides twistd's own log."))
    levels: dict[str, str] = setting(Map(
        _LEVEL, default={}, doc='Level per namespace, e.g. "hadaemon.bus".'))


@dataclass(frozen=True, kw_only=True)
class WatchdogSection(Settings):
    section_doc: ClassVar[str] = "The reactor watchdog."

    enabled: bool = setting(Bool(default=True, doc="Report callbacks that block the reactor."))
    threshold: float = setting(Float(
        default=0.5, min=0.01, doc="Seconds a callback may block the reactor."))


@dataclass(frozen=True, kw_only=True)
class StoreSection(Settings):
    section_doc: ClassVar[str] = "The state store."

    fsync_interval: float = setting(Float(
        default=1.0, min=0.0, doc="Seconds between batched fsyncs (a power loss may lose "
        "this much; a crash of the daemon loses nothing)."))
    compact_min_bytes: int = setting(Int(
        default=1 << 20, min=4096, doc="Log size below which no compaction runs."))


def host_name() -> str:
    """The machine's host name as a daemon name: its first label (``pi-zigbee`` of
    ``pi-zigbee.lan``), characters that MQTT topics or addresses give a meaning to
    (``/ + # @``, spaces) replaced by ``-``; "hadaemon" if nothing is left."""
    label = socket.gethostname().split(".", 1)[0]
    return re.sub(r"[/+#@\s\x00]", "-", label) or "hadaemon"


CORE_SECTIONS: dict[str, Section] = {
    "daemon": DaemonSection.schema(),
    "log": LogSection.schema(),
    "watchdog": WatchdogSection.schema(),
    "store": StoreSection.schema(),
}


@dataclass(frozen=True)
class CoreSettings:
    """The validated core sections as typed values, in one flat object."""

    name: str
    state_dir: pathlib.Path
    plugins: list[str]
    plugin_dirs: list[pathlib.Path]
    stop_timeout: float
    service_stop_timeout: float
    log_level: LogLevel
    log_format: str
    log_file: str
    log_levels: dict[str, LogLevel]
    watchdog_enabled: bool
    watchdog_threshold: float
    fsync_interval: float
    compact_min_bytes: int
    reload: str = "auto"
    reload_settle: float = 0.05
    reload_poll_interval: float = 1.0
    reload_retry_delay: float = 1.0
    reload_retry_delay_max: float = 60.0
    plugin_dirs_explicit: bool = False  # a missing default directory is no problem
    reload_explicit: bool = False  # [daemon].reload set in the file (twistd's default: off)

    @classmethod
    def from_sections(cls, sections: Mapping[str, Mapping[str, Any]]) -> CoreSettings:
        daemon = DaemonSection.from_section(sections["daemon"])
        log = LogSection.from_section(sections["log"])
        watchdog = WatchdogSection.from_section(sections["watchdog"])
        store = StoreSection.from_section(sections["store"])
        return cls(
            name=daemon.name or host_name(),
            state_dir=daemon.state_dir,
            plugins=list(daemon.plugins),
            plugin_dirs=list(daemon.plugin_dirs),
            stop_timeout=daemon.stop_timeout,
            service_stop_timeout=daemon.service_stop_timeout,
            log_level=parse_level(log.level),
            log_format=log.format,
            log_file=log.file,
            log_levels={ns: parse_level(level) for ns, level in log.levels.items()},
            watchdog_enabled=watchdog.enabled,
            watchdog_threshold=watchdog.threshold,
            fsync_interval=store.fsync_interval,
            compact_min_bytes=store.compact_min_bytes,
            reload=daemon.reload,
            reload_settle=daemon.reload_settle,
            reload_poll_interval=daemon.reload_poll_interval,
            reload_retry_delay=daemon.reload_retry_delay,
            reload_retry_delay_max=daemon.reload_retry_delay_max,
        )

    def reload_mode(self, default: str) -> str:
        """``[daemon].reload`` where the file sets it, else the entry point's ``default``."""
        return self.reload if self.reload_explicit else default
