"""Example node that crosses worlds: a Homegear Node-BLUE node watching a zigbee2mqtt
motion sensor (through the shared device registry) and telling a microServiceBus-style
service (its wire goes to service:ComfortMonitor/on_presence).

- eventHandler gets the occupancy changes its ``events`` pattern asks for;
- the sensor's name comes from Homegear's RPC (getDeviceDescription on the registry);
- each change is logged (nodeLog), shown as the node's status, and sent on output 0.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

# (hadaemon puts its homegear module on a node's path; type checkers need not find it)
from homegear import Homegear  # type: ignore[import-not-found]

started = threading.Event()
names: dict[int, str] = {}


def eventHandler(
    eventSource: str, peerId: int, channel: int, variableName: str, value: Any
) -> None:
    if eventSource == "nodeBlue" and variableName == "startUpComplete":
        started.set()
        return
    if variableName != "occupancy" or not started.is_set():
        return
    if peerId not in names:
        description = hg.getDeviceDescription(peerId, -1) or {}
        names[peerId] = str(description.get("NAME", f"device {peerId}"))
    room = names[peerId]
    text = f"{room}: {'someone is there' if value else 'empty again'}"
    hg.nodeLog(4, f"{text} (zigbee sensor, seen by a Node-BLUE node)")
    hg.nodeEvent("status/" + sys.argv[2], {"text": text, "shape": "dot",
                                           "fill": "green" if value else "grey"})
    hg.nodeOutput(0, {"topic": "presence", "payload": {"room": room, "occupied": bool(value)}})


hg = Homegear(sys.argv[1], eventHandler, sys.argv[2])
while hg.connected():
    time.sleep(1)
