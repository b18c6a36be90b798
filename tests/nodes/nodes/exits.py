"""Test node: on input "exit", closes its stdout and stderr first, then exits a moment
later (a watcher that relied on the pipes closing would not notice the exit)."""
import os
import sys
import threading
import time

from homegear import Homegear


def nodeInput(nodeInfo, inputIndex, msg):
    if msg["payload"] == "exit":
        os.close(1)
        os.close(2)
        threading.Timer(0.3, os._exit, (3,)).start()
    return os.getpid()


hg = Homegear(sys.argv[1], None, sys.argv[2], nodeInput)
while hg.connected():
    time.sleep(1)
