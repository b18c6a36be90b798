"""``pyziggy_autogenerate.available_devices`` when nothing was generated: the devices
are found at run time (attributes named as the generator would name them, typed Any).
Generate a module (``hadaemon zigbee generate``) to have them typed and checked."""

from hadaemon.zigbee.devices import DynamicDevices


class AvailableDevices(DynamicDevices):
    """All devices and groups of the network, as attributes."""


__all__ = ["AvailableDevices"]
