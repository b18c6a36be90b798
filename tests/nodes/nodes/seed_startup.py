# ruff: noqa (the seed exactly as users have it: tabs, import order, semicolons)
# The seed's "Wait for Node-BLUE start to complete" template, unchanged except for its
# syntax slip: one line was indented with spaces among tabs (TabError).
from homegear import Homegear
import threading
import sys
import time

hg = None
nodeInfo = None
socketPath = sys.argv[1]
nodeId = sys.argv[2]
startUpComplete = threading.Condition()

# This callback method is called on Homegear variable changes.
def eventHandler(eventSource, peerId, channel, variableName, value):	
	# When the flows are fully started, "startUpComplete" is set to "true". Wait for this event.
	if eventSource == "nodeBlue" and peerId == 0 and variableName == "startUpComplete":
		startUpComplete.acquire()
		global nodeInfo
		nodeInfo = value
		startUpComplete.notify()
		startUpComplete.release()
	

# This callback method is called when a message arrives on one of the node's inputs.
def nodeInput(nodeInfo, inputIndex, msg):
	pass

# hg waits until the connection is established (but for a maximum of 2 seonds).
# The socket path is passed in sys.argv[1], the node's ID in sys.argv[2]
hg = Homegear(socketPath, eventHandler, nodeId, nodeInput)

# Wait for the flows to start.
startUpComplete.acquire()
while hg.connected():
	if startUpComplete.wait(1) == True:
		break
startUpComplete.release()

# The node is now fully started.

# The script needs to run permanently. Just stop it, when Homegear is not running anymore.
# Homegear sends a signal 15 (SIGTERM) to the process to stop it.
while hg.connected():
	time.sleep(1)

