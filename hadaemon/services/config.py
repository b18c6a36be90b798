"""The ``[services]`` section: its schema, and the typed settings the plugin runs with.

Plain data, no I/O: the schema is declared here so that ``hadaemon check`` validates it,
and :class:`ServicesSettings` turns the validated section into values.

```toml
[services]
directories = ["services"]

[services.service.ReadGPIO]          # loads services/ReadGPIO.py, class ReadGPIO
static = { gpio_pin = 17 }
security = { token = { env = "GPIO_TOKEN" } }
general = { interval = 5 }
subscribe = { "variable/zigbee2mqtt/+/+/temperature" = "on_temperature" }
```
"""

from __future__ import annotations

import pathlib
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hadaemon.bus.topics import InvalidTopic, matcher
from hadaemon.config.errors import KeyPath
from hadaemon.config.schema import (
    Bool,
    Choice,
    Context,
    Field,
    Float,
    Int,
    List,
    Map,
    Path,
    Section,
    Str,
    Table,
)

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
COM_TOPIC_FIELDS = frozenset({"node", "service"})


class AnyValue(Field):
    """Any TOML value (a service property); ``{env = "NAME"}`` reads the environment."""

    kind = "any value"

    def convert(self, value: Any, ctx: Context, path: KeyPath) -> Any:
        return value

    def from_string(self, text: str) -> Any:
        return text


class ServiceTables(Map):
    """``[services.service.<Name>]`` tables, one per service (documented in docs/services.md)."""

    def describe(self) -> str:
        return "a table of service tables ([services.service.<Name>], see docs/services.md)"


def _service_name_problem(name: str) -> str | None:
    if not _IDENTIFIER.match(name):
        return (
            f"{name!r} is not a service name: a service is named by its class (and file "
            "stem), a Python identifier such as ReadGPIO"
        )
    return None


def _pattern_problem(pattern: str) -> str | None:
    try:
        matcher(pattern)
    except InvalidTopic as exc:
        return str(exc)
    return None


SERVICE = Section(
    {
        "enabled": Bool(
            default=True,
            doc="Start it (GetState() and the general property 'enabled'). A disabled "
            "service is loaded, never started nor stopped, and messages to it are refused.",
        ),
        "static": Map(AnyValue(), default={}, doc="Static properties (GetPropertyValue)."),
        "security": Map(
            AnyValue(secret=True), default={},
            doc="Security properties; use {env = \"NAME\"} to keep secrets out of the file.",
        ),
        "general": Map(AnyValue(), default={}, doc="General properties."),
        "subscribe": Map(
            Str(non_empty=True), default={}, key_check=_pattern_problem,
            doc="Bus event topic pattern -> async method receiving each matching event "
            "as a dict in msg.message[0].",
        ),
        "mailbox_size": Int(default=None, min=1, doc="Overrides [services].mailbox_size."),
        "concurrency": Int(default=None, min=1, doc="Overrides [services].concurrency."),
    },
    doc="One service.",
)

SCHEMA = Section(
    {
        "directories": List(
            Path(), default=["services"],
            doc="Directories holding service files: <Name>.py defines class <Name>. Each "
            "directory is its own import namespace.",
        ),
        "service": ServiceTables(
            Table(SERVICE), default={}, key_check=_service_name_problem,
            doc="The services to load, by class name: [services.service.<Name>] with "
            "enabled, static, security, general, subscribe, mailbox_size, concurrency.",
        ),
        "node_name": Str(default="", doc="nodeName in get_settings() (default: [daemon].name)."),
        "settings": Map(AnyValue(), default={}, doc="More entries for get_settings()."),
        "restart": Choice(
            "backoff", "never", default="backoff",
            doc="What happens when a Start raises: restart with exponential backoff, or never.",
        ),
        "restart_delay": Float(default=1.0, min=0.0, doc="Seconds before the first restart."),
        "restart_factor": Float(
            default=2.0, min=1.0, doc="Each further delay is this much longer."
        ),
        "restart_max_delay": Float(
            default=60.0, min=0.0,
            doc="Longest delay; a Start that ran this long before raising starts the "
            "backoff over.",
        ),
        "start_report_timeout": Float(
            default=30.0, min=0.01,
            doc="A Start still running after this many seconds is reported (only reported: "
            "Start may run forever).",
        ),
        "stop_timeout": Float(
            default=5.0, min=0.01, doc="Seconds each Stop may take (all run at once)."
        ),
        "state_update_timeout": Float(
            default=1.0, min=0.0,
            doc="At shutdown, seconds to let StateUpdate('stopping') handlers run before Stop.",
        ),
        "mailbox_size": Int(
            default=1000, min=1, doc="Messages waiting per service (besides those running)."
        ),
        "concurrency": Int(
            default=100, min=1,
            doc="Handlers of one service running at once (started in arrival order); "
            "1 = one at a time.",
        ),
        "overflow": Choice(
            "wait", "drop", default="wait",
            doc="SubmitAction to a full mailbox: wait for room (up to overflow_timeout, then "
            "drop) or drop at once; a drop is a warning to the sender.",
        ),
        "overflow_timeout": Float(
            default=10.0, min=0.0, doc="Longest wait for room in a full mailbox."
        ),
        "watchdog_threshold": Float(
            default=0.5, min=0.001,
            doc="A handler, Start or Stop blocking the loop longer than this (seconds, one "
            "step between awaits) is reported by service and action.",
        ),
        "com_topic": Str(
            default="hadaemon/{node}/services/{service}/events", non_empty=True,
            doc="MQTT topic of SubmitMessage (the com service) when an mqtt plugin runs; "
            "{node} and {service} are replaced.",
        ),
        "com_qos": Int(default=1, min=0, max=1, doc="MQTT QoS of SubmitMessage (0 or 1)."),
        "com_retain": Bool(default=False, doc="MQTT retain flag of SubmitMessage."),
        "pip_install": Bool(
            default=False,
            doc="Let AddPipPackage install missing packages (sys.executable -m pip, in a "
            "thread, plain requirement strings only). Off: it only imports.",
        ),
        "pip_target": Path(
            default=None, doc="pip --target directory (added to sys.path); default: this "
            "Python environment."
        ),
        "pip_options": List(
            Str(non_empty=True), default=[],
            doc='Extra pip options, e.g. ["--index-url", "https://..."].',
        ),
        "pip_timeout": Float(default=300.0, min=1.0, doc="Seconds one pip install may take."),
    },
    doc="microServiceBus-style services (CustomService files); see docs/services.md.",
)


@dataclass(frozen=True)
class ServiceSettings:
    """One configured service."""

    name: str
    enabled: bool = True
    static: Mapping[str, Any] = field(default_factory=dict)
    security: Mapping[str, Any] = field(default_factory=dict)
    general: Mapping[str, Any] = field(default_factory=dict)
    subscribe: Mapping[str, str] = field(default_factory=dict)
    mailbox_size: int = 1000
    concurrency: int = 100

    @property
    def id(self) -> str:
        return service_id(self.name)

    def config_shape(self) -> dict[str, list[dict[str, Any]]]:
        """The constructor's ``config`` in the original's shape (lists of id/value pairs)."""
        general = {"enabled": self.enabled, **self.general}
        return {
            "generalConfig": _pairs(general),
            "staticConfig": _pairs(self.static),
            "securityConfig": _pairs(self.security),
        }


@dataclass(frozen=True)
class Backoff:
    """Restart delays after a Start raised: ``delay(n)`` for the n-th failure in a row."""

    initial: float = 1.0
    factor: float = 2.0
    maximum: float = 60.0
    never: bool = False

    def delay(self, failures: int) -> float | None:
        """Seconds before restart number ``failures`` (1-based), or None: never restart."""
        if self.never:
            return None
        exponent = max(failures - 1, 0)
        try:
            value = self.initial * self.factor**exponent
        except OverflowError:
            return self.maximum
        return min(value, self.maximum)


@dataclass(frozen=True)
class ServicesSettings:
    """The whole validated ``[services]`` section as values."""

    directories: list[pathlib.Path]
    services: list[ServiceSettings]
    node_name: str
    settings: Mapping[str, Any]
    backoff: Backoff
    start_report_timeout: float
    stop_timeout: float
    state_update_timeout: float
    mailbox_size: int
    concurrency: int
    overflow: str
    overflow_timeout: float
    watchdog_threshold: float
    com_topic: str
    com_qos: int
    com_retain: bool
    pip_install: bool
    pip_target: pathlib.Path | None
    pip_options: list[str]
    pip_timeout: float

    @classmethod
    def from_section(cls, section: Mapping[str, Any], daemon_name: str) -> ServicesSettings:
        values = {**SCHEMA.defaults(), **section}
        mailbox, concurrency = values["mailbox_size"], values["concurrency"]
        services = [
            ServiceSettings(
                name=name,
                enabled=table.get("enabled", True),
                static=dict(table.get("static") or {}),
                security=dict(table.get("security") or {}),
                general=dict(table.get("general") or {}),
                subscribe=dict(table.get("subscribe") or {}),
                mailbox_size=table.get("mailbox_size") or mailbox,
                concurrency=table.get("concurrency") or concurrency,
            )
            for name, table in values["service"].items()
        ]
        return cls(
            directories=[pathlib.Path(d) for d in values["directories"]],
            services=services,
            node_name=values["node_name"] or daemon_name,
            settings=dict(values["settings"]),
            backoff=Backoff(
                values["restart_delay"], values["restart_factor"], values["restart_max_delay"],
                never=values["restart"] == "never",
            ),
            start_report_timeout=values["start_report_timeout"],
            stop_timeout=values["stop_timeout"],
            state_update_timeout=values["state_update_timeout"],
            mailbox_size=mailbox,
            concurrency=concurrency,
            overflow=values["overflow"],
            overflow_timeout=values["overflow_timeout"],
            watchdog_threshold=values["watchdog_threshold"],
            com_topic=values["com_topic"],
            com_qos=values["com_qos"],
            com_retain=values["com_retain"],
            pip_install=values["pip_install"],
            pip_target=values["pip_target"],
            pip_options=list(values["pip_options"]),
            pip_timeout=values["pip_timeout"],
        )


def service_id(name: str) -> str:
    """The original's id of service type ``name``: lower case plus ``_py`` (``readgpio_py``)."""
    return f"{name.lower()}_py"


def com_topic_problem(template: str) -> str | None:
    """Why ``template`` is not a valid com topic, or None."""
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    except ValueError as exc:
        return f"invalid com_topic {template!r}: {exc}"
    unknown = fields - COM_TOPIC_FIELDS
    if unknown:
        return (
            f"com_topic {template!r} uses {', '.join(sorted(unknown))}; only {{node}} and "
            "{service} can be used"
        )
    return None


def _pairs(values: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{"id": key, "value": value} for key, value in values.items()]


__all__ = [
    "SCHEMA",
    "SERVICE",
    "Backoff",
    "ServiceSettings",
    "ServicesSettings",
    "com_topic_problem",
    "service_id",
]
