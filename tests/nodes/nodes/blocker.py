"""Test node: input "block" waits until another input ("release") lets it go, or until
a registry event does (an eventHandler call): neither reaches a node whose socket is not
read while a callback blocks. Outputs what happened on output 0."""
import sys
import threading
import time

from homegear import Homegear

released = threading.Event()


def nodeInput(nodeInfo, inputIndex, msg):
    if msg["payload"] == "block":
        hg.nodeOutput(0, {"payload": "blocking"})
        released.wait()
        hg.nodeOutput(0, {"payload": "unblocked"})
    elif msg["payload"] == "release":
        released.set()
        hg.nodeOutput(0, {"payload": "released"})


def eventHandler(eventSource, peerId, channel, variableName, value):
    if variableName == "release":
        released.set()
        hg.nodeOutput(0, {"payload": "event"})


hg = Homegear(sys.argv[1], eventHandler, sys.argv[2], nodeInput)
while hg.connected():
    time.sleep(1)
