"""``pyziggy.devices_client``: ``Device`` and ``DevicesClient``."""

from hadaemon.zigbee.devices import Device, DevicesClient, Group

__all__ = ["Device", "DevicesClient", "Group"]
