"""Example node: watches every temperature in the house and raises an alert when it
gets cold.

- eventHandler gets every variable change of every device (here the demo plugin's
  thermometer; zigbee sensors the same way once that adapter runs);
- below nodeInfo["info"]["threshold"] it sends one alert on output 0, with the state of
  the demo lamp read through Homegear's RPC (getValue on the device registry);
- it waits for startUpComplete first, as the Node-BLUE documentation recommends.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

# (hadaemon puts its homegear module on a node's path; type checkers need not find it)
from homegear import Homegear  # type: ignore[import-not-found]

started = threading.Event()
settings: dict[str, Any] = {}
lamp: dict[str, Any] = {}
cold: dict[int, bool] = {}


def find_lamp() -> int | None:
    for device in hg.listDevices(False) or []:
        if device.get("NAME") == "Demo lamp":
            return int(device["ID"])
    return None


def eventHandler(
    eventSource: str, peerId: int, channel: int, variableName: str, value: Any
) -> None:
    if eventSource == "nodeBlue" and variableName == "startUpComplete":
        settings.update(value["info"])
        started.set()
        return
    if variableName != "temperature" or not started.is_set():
        return
    is_cold = value < settings.get("threshold", 19.0)
    if is_cold == cold.get(peerId):
        return  # only changes are news
    cold[peerId] = is_cold
    if not is_cold:
        return
    if "id" not in lamp:
        lamp["id"] = find_lamp()
    lamp_on = hg.getValue(lamp["id"], 0, "state") if lamp["id"] is not None else None
    hg.nodeOutput(0, {
        "payload": {"source": eventSource, "peerId": peerId, "temperature": value,
                    "lamp_on": lamp_on},
        "topic": "cold",
    })


hg = Homegear(sys.argv[1], eventHandler, sys.argv[2])
while hg.connected():
    time.sleep(1)
