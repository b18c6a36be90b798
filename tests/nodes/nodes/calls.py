"""Test node: each input is a call to make: {"payload": [method, [args...]]}; the answer
(or the fault text) goes out on output 0 as {"payload": {"result": ...}} / {"error": ...}."""
import sys
import time

from homegear import Homegear


def nodeInput(nodeInfo, inputIndex, msg):
    method, args = msg["payload"]
    try:
        result = getattr(hg, method)(*args)
    except Exception as exc:
        hg.nodeOutput(0, {"payload": {"error": str(exc), "type": type(exc).__name__}})
        return None
    hg.nodeOutput(0, {"payload": {"result": result}})
    return result


hg = Homegear(sys.argv[1], None, sys.argv[2], nodeInput)
while hg.connected():
    time.sleep(1)
