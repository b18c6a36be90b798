"""Test node: on input "close", closes its stdout and stderr; on "exit", exits with code
3 (a watcher that relied on the pipes closing would not notice the exit)."""
import os
import sys
import time

from homegear import Homegear


def nodeInput(nodeInfo, inputIndex, msg):
    if msg["payload"] == "close":
        os.close(1)
        os.close(2)
    elif msg["payload"] == "exit":
        os._exit(3)
    return os.getpid()


hg = Homegear(sys.argv[1], None, sys.argv[2], nodeInput)
while hg.connected():
    time.sleep(1)
