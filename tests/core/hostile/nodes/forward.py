"""A Node-BLUE node that forwards every input to its output (wired to a hostile service)."""

import sys
import time

from homegear import Homegear


def nodeInput(nodeInfo, inputIndex, msg):
    hg.nodeOutput(0, msg)
    return "forwarded"


hg = Homegear(sys.argv[1], None, sys.argv[2], nodeInput)
while hg.connected():
    time.sleep(0.1)
