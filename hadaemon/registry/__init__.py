"""The device registry: devices and variables from every world, in one place."""

from hadaemon.registry.errors import (
    ConfirmationTimeout,
    DuplicateDevice,
    InvalidValue,
    ReadOnly,
    RegistryError,
    SystemVariableNotFound,
    UnknownChannel,
    UnknownDevice,
    UnknownVariable,
)
from hadaemon.registry.model import (
    SYSTEM_CHANNEL,
    SYSTEM_PEER_ID,
    Access,
    Channel,
    ChannelSpec,
    Device,
    DeviceOwner,
    ValueType,
    Variable,
    VariableSpec,
)
from hadaemon.registry.registry import Registry
from hadaemon.registry.state import KeyValueStore
from hadaemon.registry.sysvars import SYSTEM_SOURCE
from hadaemon.sentinels import UNKNOWN

__all__ = [
    "SYSTEM_CHANNEL",
    "SYSTEM_PEER_ID",
    "SYSTEM_SOURCE",
    "UNKNOWN",
    "Access",
    "Channel",
    "ChannelSpec",
    "ConfirmationTimeout",
    "Device",
    "DeviceOwner",
    "DuplicateDevice",
    "InvalidValue",
    "KeyValueStore",
    "ReadOnly",
    "Registry",
    "RegistryError",
    "SystemVariableNotFound",
    "UnknownChannel",
    "UnknownDevice",
    "UnknownVariable",
    "ValueType",
    "Variable",
    "VariableSpec",
]
