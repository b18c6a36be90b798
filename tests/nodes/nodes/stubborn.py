"""Test node: ignores SIGTERM and spawns a child that ignores it too; it writes both pids
to the file named in its info (so the test can check that neither survives)."""
import json
import os
import signal
import subprocess
import sys
import time

from homegear import Homegear

signal.signal(signal.SIGTERM, signal.SIG_IGN)
IGNORE_TERM = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
child = subprocess.Popen([sys.executable, "-c", IGNORE_TERM])


def eventHandler(eventSource, peerId, channel, variableName, value):
    if variableName == "startUpComplete":
        path = value["info"]["pids"]
        with open(path + ".tmp", "w") as f:  # atomic: the test polls for the file
            json.dump({"node": os.getpid(), "child": child.pid}, f)
        os.replace(path + ".tmp", path)


hg = Homegear(sys.argv[1], eventHandler, sys.argv[2], None)
while True:  # ignores connected(): only SIGKILL ends it
    time.sleep(1)
