"""Test node: its nodeInput never returns (events still reach it)."""
import sys
import threading
import time

from homegear import Homegear

forever = threading.Event()


def eventHandler(eventSource, peerId, channel, variableName, value):
    if variableName != "startUpComplete":
        hg.setNodeData("last_event", [variableName, value])


def nodeInput(nodeInfo, inputIndex, msg):
    hg.nodeOutput(0, {"payload": "entered"})
    forever.wait()


hg = Homegear(sys.argv[1], eventHandler, sys.argv[2], nodeInput)
while hg.connected():
    time.sleep(1)
