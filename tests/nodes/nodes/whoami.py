"""Test node: reports how it was started (argv, process group, environment, which
homegear module it got) on output 0 at startUpComplete."""
import os
import sys
import time

import homegear
from homegear import Homegear


def eventHandler(eventSource, peerId, channel, variableName, value):
    if variableName == "startUpComplete":
        with open("/proc/self/cmdline", "rb") as f:
            cmdline = f.read().split(b"\0")[:-1]
        hg.nodeOutput(0, {"payload": {
            "argv": sys.argv,
            "cmdline": [part.decode() for part in cmdline],
            "executable": sys.executable,
            "leader": os.getpgid(0) == os.getpid(),
            "homegear": homegear.__file__,
            "token_in_env": "HADAEMON_NODE_TOKEN" in os.environ,
            "hadaemon_env": sorted(k for k in os.environ if k.startswith("HADAEMON_")),
            "path": sys.path,
            "cwd": os.getcwd(),
        }})


hg = Homegear(sys.argv[1], eventHandler, sys.argv[2])
while hg.connected():
    time.sleep(1)
