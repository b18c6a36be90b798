"""Test node: echoes like relay.py in "echo" mode, on a Python that has no msgpack (the
client must fall back to its bundled pure-Python codec)."""
import sys

sys.modules["msgpack"] = None  # "import msgpack" now fails, as on a bare Python
import time  # noqa: E402

import _homegear_values  # noqa: E402
from homegear import Homegear  # noqa: E402

assert _homegear_values.BACKEND == "pure-python", _homegear_values.BACKEND


def nodeInput(nodeInfo, inputIndex, msg):
    hg.nodeOutput(0, msg)
    return msg


hg = Homegear(sys.argv[1], None, sys.argv[2], nodeInput)
while hg.connected():
    time.sleep(1)
