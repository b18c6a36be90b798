"""The ``[mqtt]`` section: one broker connection's settings, declared once (schema,
defaults, typed values and docs/config.md all come from :class:`MqttSettings`).

Every connection made from these settings uses all of them (credentials and TLS
included): pyziggy's runtime dropped username, password and TLS, we never do.
"""

from __future__ import annotations

import pathlib
import random
import re
import socket
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from hadaemon.backoff import Backoff
from hadaemon.config import Bool, Choice, Config, Float, Int, Path, Settings, Str, setting


@dataclass(frozen=True, kw_only=True)
class MqttSettings(Settings):
    """One broker connection, validated. ``password`` never appears in ``repr``."""

    section_doc: ClassVar[str] = (
        "The MQTT broker connection shared by zigbee2mqtt, the services' com and others."
    )

    broker: str = setting(Choice(
        "external", "embedded", default="external",
        doc='"external": connect to the broker at host and port (a real home\'s). '
        '"embedded": the daemon runs a broker itself on 127.0.0.1 (mosquitto if installed, '
        "else amqtt in its own loop) and connects to it; host, port and the credentials "
        "are then its own.",
    ))
    broker_impl: str = setting(Choice(
        "auto", "mosquitto", "amqtt", default="auto",
        doc='The embedded broker: "auto" is mosquitto when installed, else amqtt.',
    ))
    broker_port: int = setting(Int(
        default=0, min=0, max=65535,
        doc="The embedded broker's port on 127.0.0.1 (0: a free one at each start).",
    ))
    broker_restart_delay: float = setting(Float(
        default=0.5, min=0.01, doc="First delay (seconds) before restarting an embedded "
        "mosquitto that died.",
    ))
    broker_restart_delay_max: float = setting(Float(
        default=30.0, min=0.1, doc="Longest delay before restarting it (seconds).",
    ))
    host: str = setting(Str(default="127.0.0.1", non_empty=True,
                            doc="Broker host name or address."))
    port: int = setting(Int(default=1883, min=1, max=65535,
                            doc="Broker port (8883 is usual for TLS)."))
    keepalive: int = setting(Int(default=60, min=5, max=65535,
                                 doc="Seconds between keepalive pings."))
    client_id: str = setting(Str(
        default="",
        doc='MQTT client id; "" means "hadaemon-<[daemon].name>-<host name>". Two clients '
        "with one id keep kicking each other off the broker.",
    ))
    username: str = setting(Str(default="", doc='User name ("" for anonymous).'))
    password: str = setting(Str(
        default="", secret=True, doc='Password; better {env = "MQTT_PASSWORD"} than a literal.'
    ))
    protocol: str = setting(Choice("3.1.1", "5", default="3.1.1", doc="MQTT protocol version."))
    tls: bool = setting(Bool(default=False, doc="Connect with TLS."))
    ca_file: pathlib.Path | None = setting(Path(
        default=None, must_exist=True, kind="file",
        doc="CA certificate(s) to trust (PEM); default: the system's CAs.",
    ))
    cert_file: pathlib.Path | None = setting(Path(
        default=None, must_exist=True, kind="file",
        doc="Client certificate (PEM) for brokers that require one.",
    ))
    key_file: pathlib.Path | None = setting(Path(
        default=None, must_exist=True, kind="file",
        doc="The client certificate's private key (PEM).",
    ))
    tls_verify: bool = setting(Bool(
        default=True,
        doc="Verify the broker's certificate and host name. Turn off only for testing.",
    ))
    status_topic: str = setting(Str(
        default="",
        doc='Topic of this daemon\'s retained status ({"state": "online"|"offline"}, also '
        'the last will); "" means "hadaemon/<[daemon].name>/status", or '
        '"<[federation].site>/<[daemon].name>/status" with the federation plugin enabled.',
    ))
    connect_timeout: float = setting(Float(
        default=10.0, min=0.5,
        doc="Seconds for TCP + TLS + CONNACK before the attempt counts as failed.",
    ))
    reconnect_delay: float = setting(
        Float(default=0.5, min=0.01, doc="First reconnect delay (seconds)."),
        old_names=("reconnect_min",),
    )
    reconnect_delay_max: float = setting(
        Float(default=60.0, min=0.1, doc="Longest reconnect delay (seconds)."),
        old_names=("reconnect_max",),
    )
    reconnect_jitter: float = setting(Float(
        default=0.5, min=0.0, max=1.0,
        doc="Fraction of each delay taken off at random, so clients do not reconnect in step.",
    ))
    queue_limit: int = setting(Int(
        default=10000, min=1,
        doc="QoS 1 publishes kept while disconnected; beyond it publish() fails at once.",
    ))
    max_inflight: int = setting(Int(
        default=100, min=1, doc="QoS 1 publishes sent and not yet acknowledged, at most."
    ))
    tcp_nodelay: bool = setting(Bool(
        default=True,
        doc="Set TCP_NODELAY (without it a QoS 1 round trip waits ~40-90 ms on Nagle).",
    ))
    tcp_quickack: bool = setting(Bool(
        default=True,
        doc="Acknowledge at once (TCP_QUICKACK, Linux): a broker with Nagle on "
        "(mosquitto's default) otherwise stalls each reaction ~20-40 ms.",
    ))

    def __repr__(self) -> str:
        secret = ", password=***" if self.password else ""
        return (
            f"MqttSettings({self.url}, client_id={self.client_id!r}, "
            f"username={self.username!r}{secret})"
        )

    @property
    def url(self) -> str:
        """``mqtt://host:port`` or ``mqtts://host:port``, without credentials."""
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"

    @classmethod
    def from_config(cls, section: Mapping[str, Any], daemon_name: str = "hadaemon", *,
                    status_prefix: str = "hadaemon") -> MqttSettings:
        """Settings from a validated ``[mqtt]``-shaped section, with the client id and
        status topic (``<status_prefix>/<daemon name>/status``) that "" stands for."""
        values = dict(section)
        if not values.get("client_id"):
            values["client_id"] = default_client_id(daemon_name)
        if not values.get("status_topic"):
            values["status_topic"] = _status_topic(daemon_name, status_prefix)
        settings = cls.from_section(values)
        if (settings.cert_file is None) != (settings.key_file is None):
            raise ValueError("[mqtt]: cert_file and key_file go together; give both or neither")
        if settings.embedded and settings.tls:
            raise ValueError('[mqtt]: tls = true with broker = "embedded": the embedded '
                             "broker listens on 127.0.0.1 without TLS; drop tls")
        return settings

    @property
    def embedded(self) -> bool:
        """Whether the daemon runs the broker itself (``broker = "embedded"``)."""
        return self.broker == "embedded"

    def at(self, host: str, port: int, username: str, password: str) -> MqttSettings:
        """A copy that connects to another address with other credentials (the embedded
        broker's, once it runs)."""
        return replace(self, host=host, port=port, username=username, password=password)

    def restart_backoff(self) -> Backoff:
        """The embedded broker's restart backoff these settings describe."""
        return Backoff(self.broker_restart_delay, self.broker_restart_delay_max)

    def __post_init__(self) -> None:
        # Made in code rather than from a config: "" stands for the daemon named "hadaemon".
        if not self.client_id:
            object.__setattr__(self, "client_id", "hadaemon")
        if not self.status_topic:
            object.__setattr__(self, "status_topic", _status_topic("hadaemon"))

    def backoff(self, rand: Callable[[], float] = random.random) -> Backoff:
        """The reconnect backoff these settings describe."""
        return Backoff(self.reconnect_delay, self.reconnect_delay_max,
                       jitter=self.reconnect_jitter, rand=rand)

    def with_client_id(self, client_id: str, status_topic: str | None = None) -> MqttSettings:
        """A copy for another client on the same broker (the simulator, the CLI)."""
        return replace(
            self, client_id=client_id,
            status_topic=self.status_topic if status_topic is None else status_topic,
        )

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context for these settings (None without TLS); reads the files now."""
        if not self.tls:
            return None
        context = ssl.create_default_context(
            cafile=str(self.ca_file) if self.ca_file is not None else None
        )
        if not self.tls_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if self.cert_file is not None and self.key_file is not None:
            context.load_cert_chain(str(self.cert_file), str(self.key_file))
        return context


SCHEMA = MqttSettings.schema()


def default_client_id(daemon_name: str) -> str:
    """``hadaemon-<daemon name>-<host name>``, restricted to characters brokers accept."""
    raw = f"hadaemon-{daemon_name}-{socket.gethostname()}"
    return re.sub(r"[^A-Za-z0-9_.-]", "-", raw)[:64]


def status_prefix(config: Config) -> str:
    """The first levels of the daemon's default status topic: ``[federation].site`` when
    the federation plugin is enabled (there the status is the host's presence in the site,
    ``<site>/<name>/status``: docs/federation.md), else "hadaemon". A site that is no
    valid topic prefix is left to the federation to refuse: the default stays then."""
    if "federation" not in config.core.plugins:
        return "hadaemon"
    site = config.section("federation").get("site")
    if not isinstance(site, str) or not site or re.search(r"[+#\x00]", site) \
            or "" in site.split("/"):
        return "hadaemon"
    return site


def _status_topic(daemon_name: str, prefix: str = "hadaemon") -> str:
    return f"{prefix}/{_topic_safe(daemon_name)}/status"


def _topic_safe(text: str) -> str:
    cleaned = re.sub(r"[+#/\x00]", "-", text)
    return cleaned or "hadaemon"
