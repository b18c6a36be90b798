"""The federation example's logic, on host "office" (etc/federation/office.toml).

The hall's motion sensor is a device of host "hall": here its events come with source
``zigbee2mqtt@hall`` (the node's ``events`` filter). The office lamp (a local device,
found by name like any other) follows it, and the node's output is wired to the hall's
HallLog service by its address on that host, ``service:halllog_py@hall/note``.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from homegear import Homegear  # type: ignore[import-not-found]

found: dict[str, int] = {}  # the office lamp's peer id, looked up once


def eventHandler(source: str, peer: int, channel: int, name: str, value: Any) -> None:
    if name != "occupancy":
        return
    if "lamp" not in found:
        devices = hg.listDevices(False, ["ID", "NAME"])
        for device in devices:
            if device["NAME"] == "Demo lamp":
                found["lamp"] = device["ID"]
    lamp = found.get("lamp")
    if lamp is not None:
        hg.setValue(lamp, 0, "state", bool(value))
    hg.nodeOutput(0, {"payload": {"occupied": bool(value), "from": source}})


hg = Homegear(sys.argv[1], eventHandler, sys.argv[2])
while hg.connected():
    time.sleep(1)
