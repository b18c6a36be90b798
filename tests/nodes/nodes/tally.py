"""Test node: counts what arrives from a ticker. After each input it replaces the file
info["file"] with "received gaps last" (a gap: a payload that is not the last one plus
one, i.e. a message lost or out of order), so that a test or benchmark outside the
daemon sees the flow move."""
import os
import sys
import time

from homegear import Homegear

state = {"received": 0, "gaps": 0, "last": None}


def eventHandler(eventSource, peerId, channel, variableName, value):
    pass


def nodeInput(nodeInfo, inputIndex, msg):
    payload = msg.get("payload")
    if state["last"] is not None and payload != state["last"] + 1:
        state["gaps"] += 1
    state["last"] = payload
    state["received"] += 1
    path = nodeInfo["info"]["file"]
    with open(path + ".tmp", "w") as f:
        f.write(f"{state['received']} {state['gaps']} {payload}")
    os.replace(path + ".tmp", path)


hg = Homegear(sys.argv[1], eventHandler, sys.argv[2], nodeInput)
while hg.connected():
    time.sleep(1)
