"""The bus every adapter and plugin uses to meet the others."""

from hadaemon.bus.address import (
    DEVICE,
    HOST_SEPARATOR,
    NODE,
    SERVICE,
    Address,
    InvalidAddress,
)
from hadaemon.bus.bus import Bus, Gateway, Handler, MessageHandler
from hadaemon.bus.completion import Completion
from hadaemon.bus.endpoint import Registration
from hadaemon.bus.errors import (
    AmbiguousDestination,
    BusError,
    DestinationGone,
    EndpointExists,
    HostOffline,
    QueueFull,
    UnknownDestination,
    WrongThread,
)
from hadaemon.bus.events import (
    DeviceChanged,
    ErrorEvent,
    Event,
    Level,
    Lifecycle,
    StatusUpdate,
    VariableChanged,
)
from hadaemon.bus.message import BusMessage, Reply, answer_address
from hadaemon.bus.stats import KindStats
from hadaemon.bus.subscriptions import Subscriber, Subscription
from hadaemon.bus.topics import InvalidTopic, segment

__all__ = [
    "DEVICE",
    "HOST_SEPARATOR",
    "NODE",
    "SERVICE",
    "Address",
    "AmbiguousDestination",
    "Bus",
    "BusError",
    "BusMessage",
    "Completion",
    "DestinationGone",
    "DeviceChanged",
    "EndpointExists",
    "ErrorEvent",
    "Event",
    "Gateway",
    "Handler",
    "HostOffline",
    "InvalidAddress",
    "InvalidTopic",
    "KindStats",
    "Level",
    "Lifecycle",
    "MessageHandler",
    "QueueFull",
    "Registration",
    "Reply",
    "StatusUpdate",
    "Subscriber",
    "Subscription",
    "UnknownDestination",
    "VariableChanged",
    "WrongThread",
    "answer_address",
    "segment",
]
