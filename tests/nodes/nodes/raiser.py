"""Test node: its callbacks raise (the client must report it, and keep going)."""
import sys
import time

from homegear import Homegear


def eventHandler(eventSource, peerId, channel, variableName, value):
    if variableName == "boom":
        raise RuntimeError("event went wrong: " + str(value))


def nodeInput(nodeInfo, inputIndex, msg):
    if msg["payload"] == "raise":
        raise ValueError("input went wrong")
    hg.nodeOutput(0, msg)


hg = Homegear(sys.argv[1], eventHandler, sys.argv[2], nodeInput)
while hg.connected():
    time.sleep(1)
