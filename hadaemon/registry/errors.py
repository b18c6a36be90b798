"""Registry errors, each with the Homegear fault code a node's RPC call will see."""

from __future__ import annotations


class RegistryError(Exception):
    """Base; ``fault_code`` is Homegear's code for the same problem."""

    fault_code = -1


class UnknownDevice(RegistryError):
    fault_code = -2

    def __init__(self, peer_id: object) -> None:
        super().__init__(f"unknown device {peer_id!r}")
        self.peer_id = peer_id


class UnknownChannel(RegistryError):
    fault_code = -2

    def __init__(self, peer_id: int, channel: object) -> None:
        super().__init__(f"device {peer_id} has no channel {channel!r}")
        self.peer_id = peer_id
        self.channel = channel


class UnknownVariable(RegistryError):
    fault_code = -5

    def __init__(self, peer_id: int, channel: int, name: object) -> None:
        where = "system variables" if peer_id == 0 else f"device {peer_id} channel {channel}"
        super().__init__(f"unknown parameter {name!r} in {where}")
        self.peer_id = peer_id
        self.channel = channel
        self.name = name


class SystemVariableNotFound(RegistryError):
    fault_code = -1

    def __init__(self, name: object) -> None:
        super().__init__(f"system variable {name!r} not found")
        self.name = name


class ReadOnly(RegistryError):
    fault_code = -6

    def __init__(self, peer_id: int, channel: int, name: str) -> None:
        super().__init__(f"parameter {name!r} of device {peer_id} channel {channel} is read-only")


class InvalidValue(RegistryError):
    fault_code = -5


class ConfirmationTimeout(RegistryError):
    """The owner accepted a write but the device did not report the value in time."""

    fault_code = -1


class DuplicateDevice(RegistryError):
    """Two adapters tried to own one device key."""
