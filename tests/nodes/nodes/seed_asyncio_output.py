# ruff: noqa (the seed exactly as users have it: tabs, import order, semicolons)
# The seed's "Using asyncio for thread synchronization" template as a user fills it in:
# seed_asyncio.py with one line added, in nodeInputThreadSafe (the input goes out on
# output 0, from the event loop's thread).
from homegear import Homegear
import threading
import sys
import asyncio

socketPath = sys.argv[1]
nodeId = sys.argv[2]
loop = asyncio.get_event_loop()
nodeInfo = None
hg = None
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
	# Just call eventHandlerThreadSafe and do everything else there
	asyncio.run_coroutine_threadsafe(eventHandlerThreadSafe(eventSource, peerId, channel, variableName, value), loop).result()

async def eventHandlerThreadSafe(eventSource, peerId, channel, variableName, value):
    # Here we don't need to worry about thread synchronization anymore
    # Called for every subscribed Homegear variable event
    pass

# This callback method is called when a message arrives on one of the node's inputs.
def nodeInput(nodeInfo, inputIndex, message):
	# Just call nodeInputThreadSafe and do everything else there
	asyncio.run_coroutine_threadsafe(nodeInputThreadSafe(nodeInfo, inputIndex, message), loop).result()

async def nodeInputThreadSafe(nodeInfo, inputIndex, message):
    # Here we don't need to worry about thread synchronization anymore
    # Called for every new arriving message
    hg.nodeOutput(0, message)

async def appstart(loop, hg):
	while hg.connected():
        # Here is your main loop. We are just sleeping in this example.
		await asyncio.sleep(1)
	return 0

# hg waits until the connection is established (but for a maximum of 2 seonds).
# The socket path is passed in sys.argv[1], the node's ID in sys.argv[2]
hg = Homegear(socketPath, eventHandler, nodeId, nodeInput);

# Wait for the flows to start.
startUpComplete.acquire()
while hg.connected():
	if startUpComplete.wait(1) == True:
		break
startUpComplete.release()

# The node is now fully started. Start event loop.
loop.run_until_complete(appstart(loop, hg))
