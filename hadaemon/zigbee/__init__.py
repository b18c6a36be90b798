"""zigbee2mqtt in hadaemon: devices in the registry, pyziggy-style automations.

The automation API (devices, typed parameters) is :mod:`hadaemon.zigbee.api`; the plugin
is :class:`hadaemon.zigbee.plugin.ZigbeeAdapter` (``zigbee2mqtt``), the simulator
:class:`hadaemon.zigbee.simulator_plugin.SimulatorPlugin` (``zigbee2mqtt_simulator``), the
record/replay test kit :mod:`hadaemon.zigbee.testkit`. This package module imports
nothing heavy, so type-checking an automation stays fast.
"""
