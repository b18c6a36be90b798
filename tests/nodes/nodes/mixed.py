"""Test node: relays each input, some of them after a call to the daemon or a short
block (which make the client's reading thread give reading up to another thread).

Input n (msg["payload"]): a call (setNodeData) first when n % 7 == 0, a 20 ms sleep
when n % 50 == 0; then output 0 gets {"payload": n, "overlap": bool} (another
nodeInput ran at the same time), "thread" the name of the callback's thread.
"""
import sys
import threading
import time

from homegear import Homegear

running = [0]
lock = threading.Lock()


def nodeInput(nodeInfo, inputIndex, msg):
    with lock:
        running[0] += 1
        overlap = running[0] > 1
    try:
        n = msg["payload"]
        if n % 7 == 0:
            hg.setNodeData("last", n)
        if n % 50 == 0:
            time.sleep(0.02)
        hg.nodeOutput(0, {"payload": n, "overlap": overlap,
                          "thread": threading.current_thread().name})
    finally:
        with lock:
            running[0] -= 1


hg = Homegear(sys.argv[1], None, sys.argv[2], nodeInput)
while hg.connected():
    time.sleep(1)
