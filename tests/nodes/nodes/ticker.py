"""Test node: a steady producer. Outputs {"payload": n} for n = 0, 1, 2... on output 0,
one every TICK_INTERVAL seconds (environment; default 0.01), for as long as it is
connected: a legitimate flow that must keep running whatever else the socket sees."""
import os
import sys
import time

from homegear import Homegear


def eventHandler(eventSource, peerId, channel, variableName, value):
    pass


def nodeInput(nodeInfo, inputIndex, msg):
    pass


interval = float(os.environ.get("TICK_INTERVAL", "0.01"))
hg = Homegear(sys.argv[1], eventHandler, sys.argv[2], nodeInput)
count = 0
while hg.connected():
    hg.nodeOutput(0, {"payload": count})
    count += 1
    time.sleep(interval)
