# ruff: noqa (the seed exactly as users have it: tabs, import order, semicolons)
# The seed's "Python node template", unchanged (it has no syntax slip).
from homegear import Homegear
import sys
import time

socketPath = sys.argv[1]
nodeId = sys.argv[2]

# This callback method is called on Homegear variable changes.
def eventHandler(eventSource, peerId, channel, variableName, value):
    pass

# This callback method is called when a message arrives on one of the node's inputs.
def nodeInput(nodeInfo, inputIndex, msg):
    pass

# hg waits until the connection is established (but for a maximum of 2 seonds).
# The socket path is passed in sys.argv[1], the node's ID in sys.argv[2]
hg = Homegear(socketPath, eventHandler, nodeId, nodeInput)

while hg.connected():
	time.sleep(1)
