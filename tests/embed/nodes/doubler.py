"""A node for the embedding tests: doubles its input's payload, spawns a grandchild."""

import os
import subprocess
import sys
import time

from homegear import Homegear

grandchild = subprocess.Popen(["sleep", "1000"])
with open(os.path.join(os.environ["EMBED_WORKDIR"], "grandchild.pid"), "w") as f:
    f.write(str(grandchild.pid))


def nodeInput(nodeInfo, inputIndex, msg):
    msg["payload"] = msg["payload"] * 2
    hg.nodeOutput(0, msg)


hg = Homegear(sys.argv[1], None, sys.argv[2], nodeInput)
while hg.connected():
    time.sleep(0.1)
