"""twistd entry point: kept tiny so ``twistd --help`` stays fast (the real code is hadaemon.tap)."""

from twisted.application.service import ServiceMaker

hadaemon = ServiceMaker(
    "hadaemon",
    "hadaemon.tap",
    "Home-automation plugin daemon: Node-BLUE nodes, zigbee2mqtt automations, services",
    "hadaemon",
)
