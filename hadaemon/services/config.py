"""The ``[services]`` section, declared once: :class:`ServicesSettings` (and
:class:`ServiceTable` for each service) give the schema ``hadaemon check`` validates, the
defaults, docs/config.md and the typed values the plugin runs with.

Plain data, no I/O.

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

import functools
import pathlib
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar, Self

from hadaemon.backoff import Backoff
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
    Str,
    Table,
)
from hadaemon.config.settings import Settings, setting

if TYPE_CHECKING:
    from twisted.internet.interfaces import IReactorTime

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


@dataclass(frozen=True, kw_only=True)
class ServiceTable(Settings):
    """One ``[services.service.<Name>]`` table, as declared."""

    section_doc: ClassVar[str] = "One service."

    enabled: bool = setting(Bool(
        default=True,
        doc="Start it (GetState() and the general property 'enabled'). A disabled "
        "service is loaded, never started nor stopped, and messages to it are refused.",
    ))
    static: dict[str, Any] = setting(Map(
        AnyValue(), default={}, doc="Static properties (GetPropertyValue)."))
    security: dict[str, Any] = setting(Map(
        AnyValue(secret=True), default={},
        doc="Security properties; use {env = \"NAME\"} to keep secrets out of the file.",
    ))
    general: dict[str, Any] = setting(Map(AnyValue(), default={}, doc="General properties."))
    subscribe: dict[str, str] = setting(Map(
        Str(non_empty=True), default={}, key_check=_pattern_problem,
        doc="Bus event topic pattern -> async method receiving each matching event "
        "as a dict in msg.message[0].",
    ))
    mailbox_size: int | None = setting(Int(
        default=None, min=1, doc="Overrides [services].mailbox_size."))
    concurrency: int | None = setting(Int(
        default=None, min=1, doc="Overrides [services].concurrency."))


SERVICE = ServiceTable.schema()


@dataclass(frozen=True)
class ServiceSettings:
    """One configured service: its table, with the ``[services]`` values it does not
    override (made by :attr:`ServicesSettings.services`)."""

    name: str
    enabled: bool
    static: Mapping[str, Any]
    security: Mapping[str, Any]
    general: Mapping[str, Any]
    subscribe: Mapping[str, str]
    mailbox_size: int
    concurrency: int

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


@dataclass(frozen=True, kw_only=True)
class ServicesSettings(Settings):
    """The whole validated ``[services]`` section as values."""

    section_doc: ClassVar[str] = (
        "microServiceBus-style services (CustomService files); see docs/services.md."
    )

    directories: list[pathlib.Path] = setting(List(
        Path(), default=["services"],
        doc="Directories holding service files: <Name>.py defines class <Name>. Each "
        "directory is its own import namespace.",
    ))
    service: dict[str, dict[str, Any]] = setting(ServiceTables(
        Table(SERVICE), default={}, key_check=_service_name_problem,
        doc="The services to load, by class name: [services.service.<Name>] with "
        "enabled, static, security, general, subscribe, mailbox_size, concurrency.",
    ))
    node_name: str = setting(Str(
        default="", doc="nodeName in get_settings() (default: [daemon].name)."))
    settings: dict[str, Any] = setting(Map(
        AnyValue(), default={}, doc="More entries for get_settings()."))
    restart: str = setting(Choice(
        "backoff", "never", default="backoff",
        doc="What happens when a Start raises: restart with exponential backoff, or never.",
    ))
    restart_delay: float = setting(Float(
        default=1.0, min=0.0, doc="Seconds before the first restart."))
    restart_factor: float = setting(Float(
        default=2.0, min=1.0, doc="Each further delay is this much longer."))
    restart_delay_max: float = setting(
        Float(default=60.0, min=0.0,
              doc="Longest delay; a Start that ran this long before raising starts the "
              "backoff over."),
        old_names=("restart_max_delay",),
    )
    start_report_timeout: float = setting(Float(
        default=30.0, min=0.01,
        doc="A Start still running after this many seconds is reported (only reported: "
        "Start may run forever).",
    ))
    stop_timeout: float = setting(Float(
        default=5.0, min=0.01, doc="Seconds each Stop may take (all run at once)."))
    state_update_timeout: float = setting(Float(
        default=1.0, min=0.0,
        doc="At shutdown, seconds to let StateUpdate('stopping') handlers run before Stop.",
    ))
    mailbox_size: int = setting(Int(
        default=1000, min=1, doc="Messages waiting per service (besides those running)."))
    concurrency: int = setting(Int(
        default=100, min=1,
        doc="Handlers of one service running at once (started in arrival order); "
        "1 = one at a time.",
    ))
    overflow: str = setting(Choice(
        "wait", "drop", default="wait",
        doc="SubmitAction to a full mailbox: wait for room (up to overflow_timeout, then "
        "drop) or drop at once; a drop is a warning to the sender.",
    ))
    overflow_timeout: float = setting(Float(
        default=10.0, min=0.0, doc="Longest wait for room in a full mailbox."))
    watchdog_threshold: float = setting(Float(
        default=0.5, min=0.001,
        doc="A handler, Start or Stop blocking the loop longer than this (seconds, one "
        "step between awaits) is reported by service and action.",
    ))
    com_topic: str = setting(Str(
        default="hadaemon/{node}/services/{service}/events", non_empty=True,
        doc="MQTT topic of SubmitMessage (the com service) when an mqtt plugin runs; "
        "{node} and {service} are replaced.",
    ))
    com_qos: int = setting(Int(default=1, min=0, max=1,
                               doc="MQTT QoS of SubmitMessage (0 or 1)."))
    com_retain: bool = setting(Bool(default=False, doc="MQTT retain flag of SubmitMessage."))
    pip_install: bool = setting(Bool(
        default=False,
        doc="Let AddPipPackage install missing packages (sys.executable -m pip, in a "
        "thread, plain requirement strings only). Off: it only imports.",
    ))
    pip_target: pathlib.Path | None = setting(Path(
        default=None, doc="pip --target directory (added to sys.path); default: this "
        "Python environment."
    ))
    pip_options: list[str] = setting(List(
        Str(non_empty=True), default=[],
        doc='Extra pip options, e.g. ["--index-url", "https://..."].',
    ))
    pip_timeout: float = setting(Float(
        default=300.0, min=1.0, doc="Seconds one pip install may take."))

    @classmethod
    def from_section(
        cls, section: Mapping[str, Any], daemon_name: str = "", **extra: Any
    ) -> Self:
        """The typed settings; an empty ``node_name`` is the daemon's name."""
        settings = super().from_section(section, **extra)
        return replace(settings, node_name=settings.node_name or daemon_name)

    @functools.cached_property
    def services(self) -> list[ServiceSettings]:
        """The configured services, each with the values it does not override."""
        return [self.service_settings(name, table) for name, table in self.service.items()]

    def service_settings(
        self, name: str, values: Mapping[str, Any] | None = None
    ) -> ServiceSettings:
        """Service ``name`` with a validated table (None: a table with no keys, e.g. a
        service started by StartService)."""
        table = ServiceTable.from_section(values or {})
        return ServiceSettings(
            name=name, enabled=table.enabled, static=table.static,
            security=table.security, general=table.general, subscribe=table.subscribe,
            mailbox_size=table.mailbox_size or self.mailbox_size,
            concurrency=table.concurrency or self.concurrency,
        )

    def restart_backoff(self, clock: IReactorTime) -> Backoff | None:
        """One service's restart delays (None: never restart); a Start that ran
        ``restart_delay_max`` before raising starts them over."""
        if self.restart == "never":
            return None
        return Backoff(self.restart_delay, self.restart_delay_max, factor=self.restart_factor,
                       reset_after=self.restart_delay_max, clock=clock)


SCHEMA = ServicesSettings.schema()


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
    "ServiceSettings",
    "ServiceTable",
    "ServicesSettings",
    "com_topic_problem",
    "service_id",
]
