"""Test node: reports how it was started (argv, process group, environment, which
homegear module it got) on output 0 at startUpComplete."""
import ctypes
import os
import sys
import time

import homegear
from homegear import Homegear


def eventHandler(eventSource, peerId, channel, variableName, value):
    if variableName == "startUpComplete":
        with open("/proc/self/cmdline", "rb") as f:
            cmdline = f.read().rstrip(b"\0").split(b"\0")  # (forked: NUL-padded)
        hg.nodeOutput(0, {"payload": {
            "death_signal": death_signal.value,
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


# Read on the main thread: a thread's parent-death signal is its own (new threads get 0).
death_signal = ctypes.c_int()
ctypes.CDLL(None).prctl(2, ctypes.byref(death_signal))  # PR_GET_PDEATHSIG
hg = Homegear(sys.argv[1], eventHandler, sys.argv[2])
while hg.connected():
    time.sleep(1)
