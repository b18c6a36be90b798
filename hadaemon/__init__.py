"""hadaemon: one Twisted daemon hosting Node-BLUE nodes, zigbee2mqtt automations and services.

The public face (docs/api.md): what plugin authors and embedders use is importable from
here, ``from hadaemon import Plugin, Section, Float, VariableChanged``, and is listed in
``__all__``. Everything else is internal and may change: every other module path, and
any name not in ``__all__`` (the subpackages' own ``__all__``s included). The exceptions
are the modules that run users' code unchanged and are documented with it (the nodes'
``homegear``, services' ``base_service``, automations' ``pyziggy`` names,
``hadaemon.zigbee.testkit``).

Names are imported on first use (PEP 562 ``__getattr__``): ``import hadaemon`` stays as
cheap as before (no Twisted), which the CLI and every node process's start pay for.
"""

from hadaemon._version import __version__

# Not typing.TYPE_CHECKING: importing typing (and re with it) would triple the cost of
# `import hadaemon`. Type checkers treat any constant of this name the same way.
TYPE_CHECKING = False

# Where each public name comes from (a subpackage: "" exports the module itself).
_SOURCES: dict[str, tuple[str, ...]] = {
    # plugins
    "hadaemon.plugin": (
        "Plugin", "PluginContext", "PluginFactory",
    ),
    # hot reload: what a plugin implements to take part (docs/reload.md)
    "hadaemon.reload": (
        "WatchesFiles", "Reconfigurable", "RestartNeeded", "CodeError", "code_error",
        "report_code_error",
    ),
    # config: a plugin's schema and its fields, errors
    "hadaemon.config": (
        "Section", "Field", "Bool", "Choice", "Float", "Int", "List", "Map", "Path", "Str",
        "Table", "MISSING", "Config", "ConfigError", "ConfigErrors", "Settings", "setting",
    ),
    # retries
    "hadaemon.backoff": ("Backoff",),
    # the shared MQTT connection, as adapters and plugins use it
    "hadaemon.mqtt": ("MqttClient", "Message"),
    # the bus: addresses, messages, events, errors
    "hadaemon.bus": (
        "Bus", "BusMessage", "Address", "DEVICE", "NODE", "SERVICE", "Completion", "Registration",
        "Subscription", "segment", "Event", "VariableChanged", "Lifecycle", "ErrorEvent",
        "Level", "StatusUpdate", "DeviceChanged", "BusError", "InvalidAddress",
        "UnknownDestination", "QueueFull", "DestinationGone", "InvalidTopic",
        "EndpointExists", "WrongThread",
    ),
    # the registry: devices, variables, their types, errors
    "hadaemon.registry": (
        "Registry", "Device", "DeviceOwner", "Channel", "ChannelSpec", "Variable",
        "VariableSpec", "ValueType", "Access", "UNKNOWN", "SYSTEM_PEER_ID",
        "SYSTEM_CHANNEL", "RegistryError", "UnknownDevice", "UnknownChannel",
        "UnknownVariable", "ReadOnly", "InvalidValue", "ConfirmationTimeout",
        "DuplicateDevice", "SystemVariableNotFound",
    ),
    # embedding, and test fixtures: modules of their own
    "": ("embed", "testing", "values"),
}

__all__ = [
    "DEVICE",
    "MISSING",
    "NODE",
    "SERVICE",
    "SYSTEM_CHANNEL",
    "SYSTEM_PEER_ID",
    "UNKNOWN",
    "Access",
    "Address",
    "Backoff",
    "Bool",
    "Bus",
    "BusError",
    "BusMessage",
    "Channel",
    "ChannelSpec",
    "Choice",
    "CodeError",
    "Completion",
    "Config",
    "ConfigError",
    "ConfigErrors",
    "ConfirmationTimeout",
    "DestinationGone",
    "Device",
    "DeviceChanged",
    "DeviceOwner",
    "DuplicateDevice",
    "EndpointExists",
    "ErrorEvent",
    "Event",
    "Field",
    "Float",
    "Int",
    "InvalidAddress",
    "InvalidTopic",
    "InvalidValue",
    "Level",
    "Lifecycle",
    "List",
    "Map",
    "Message",
    "MqttClient",
    "Path",
    "Plugin",
    "PluginContext",
    "PluginFactory",
    "QueueFull",
    "ReadOnly",
    "Reconfigurable",
    "Registration",
    "Registry",
    "RegistryError",
    "RestartNeeded",
    "Section",
    "Settings",
    "StatusUpdate",
    "Str",
    "Subscription",
    "SystemVariableNotFound",
    "Table",
    "UnknownChannel",
    "UnknownDestination",
    "UnknownDevice",
    "UnknownVariable",
    "ValueType",
    "Variable",
    "VariableChanged",
    "VariableSpec",
    "WatchesFiles",
    "WrongThread",
    "__version__",
    "code_error",
    "embed",
    "report_code_error",
    "segment",
    "setting",
    "testing",
    "values",
]


def __getattr__(name: str) -> "Any":
    """Import a public name on first use and keep it (later lookups are plain)."""
    from importlib import import_module

    module = next((m for m, names in _SOURCES.items() if name in names), None)
    if module is None:
        raise AttributeError(f"module 'hadaemon' has no attribute {name!r}")
    value = import_module(f"hadaemon.{name}") if not module else getattr(
        import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:  # what type checkers and IDEs see; at run time __getattr__ imports
    from typing import Any

    from hadaemon import embed, testing, values
    from hadaemon.backoff import Backoff
    from hadaemon.bus import (
        DEVICE,
        NODE,
        SERVICE,
        Address,
        Bus,
        BusError,
        BusMessage,
        Completion,
        DestinationGone,
        DeviceChanged,
        EndpointExists,
        ErrorEvent,
        Event,
        InvalidAddress,
        InvalidTopic,
        Level,
        Lifecycle,
        QueueFull,
        Registration,
        StatusUpdate,
        Subscription,
        UnknownDestination,
        VariableChanged,
        WrongThread,
        segment,
    )
    from hadaemon.config import (
        MISSING,
        Bool,
        Choice,
        Config,
        ConfigError,
        ConfigErrors,
        Field,
        Float,
        Int,
        List,
        Map,
        Path,
        Section,
        Settings,
        Str,
        Table,
        setting,
    )
    from hadaemon.mqtt import Message, MqttClient
    from hadaemon.plugin import Plugin, PluginContext, PluginFactory
    from hadaemon.registry import (
        SYSTEM_CHANNEL,
        SYSTEM_PEER_ID,
        UNKNOWN,
        Access,
        Channel,
        ChannelSpec,
        ConfirmationTimeout,
        Device,
        DeviceOwner,
        DuplicateDevice,
        InvalidValue,
        ReadOnly,
        Registry,
        RegistryError,
        SystemVariableNotFound,
        UnknownChannel,
        UnknownDevice,
        UnknownVariable,
        ValueType,
        Variable,
        VariableSpec,
    )
    from hadaemon.reload import (
        CodeError,
        Reconfigurable,
        RestartNeeded,
        WatchesFiles,
        code_error,
        report_code_error,
    )
