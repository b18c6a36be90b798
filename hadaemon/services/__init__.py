"""microServiceBus-style services: ``CustomService`` files run unchanged, supervised, on
the bus (``service:<id>/<action>``). See docs/services.md.
"""

from hadaemon.services.base import CustomService
from hadaemon.services.config import SCHEMA, ServiceSettings, ServicesSettings, service_id
from hadaemon.services.errors import (
    ActionRefused,
    InvalidRequirement,
    PipInstallFailed,
    PipInstallPending,
    PipPackageMissing,
    ServiceError,
    ServiceLoadError,
    ServiceNotRunning,
    Undeliverable,
)
from hadaemon.services.events import ServiceMessage, event_to_dict
from hadaemon.services.loading import ServiceLoader
from hadaemon.services.mailbox import ServiceState
from hadaemon.services.message import QueueMessage
from hadaemon.services.plugin import ServicesPlugin
from hadaemon.services.routing import ServiceQueue

__all__ = [
    "SCHEMA",
    "ActionRefused",
    "CustomService",
    "InvalidRequirement",
    "PipInstallFailed",
    "PipInstallPending",
    "PipPackageMissing",
    "QueueMessage",
    "ServiceError",
    "ServiceLoadError",
    "ServiceLoader",
    "ServiceMessage",
    "ServiceNotRunning",
    "ServiceQueue",
    "ServiceSettings",
    "ServiceState",
    "ServicesPlugin",
    "ServicesSettings",
    "Undeliverable",
    "event_to_dict",
    "service_id",
]
