"""hadaemon: one Twisted daemon hosting Node-BLUE nodes, zigbee2mqtt automations and services."""

from hadaemon._version import __version__

__all__ = ["__version__"]
