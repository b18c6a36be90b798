"""Federation: daemons on several hosts of one site as one system, over MQTT.

The ``federation`` plugin (:class:`Federation`) shares this host's devices, mirrors the
others' into the local registry, and carries requests between hosts on the shared
``[mqtt]`` connection. Topics, payloads, QoS and failure behaviour: docs/federation.md.
"""

from hadaemon.federation.codec import VERSION
from hadaemon.federation.errors import (
    FederationError,
    HostOffline,
    PayloadTooLarge,
    Refused,
    RemoteError,
    RemoteTimeout,
)
from hadaemon.federation.mirror import AVAILABLE
from hadaemon.federation.plugin import Federation
from hadaemon.federation.settings import SCHEMA, FederationSettings
from hadaemon.federation.topics import Layout

__all__ = [
    "AVAILABLE",
    "SCHEMA",
    "VERSION",
    "Federation",
    "FederationError",
    "FederationSettings",
    "HostOffline",
    "Layout",
    "PayloadTooLarge",
    "Refused",
    "RemoteError",
    "RemoteTimeout",
]
