"""Test node for flow control: what it does is set by nodeInfo["info"]["mode"].

- "produce": an input with payload n outputs payloads 0 to n - 1 on output 0, flat out;
- "relay": outputs every input as it is on every output (fan-out if several);
- "loop": a message seen for the first time gets "looped" set and goes out on output 1
  (wired back to an earlier node); a looped one goes on, on output 0;
- "check": counts inputs and checks that payloads come 0, 1, 2... in order; the input
  with payload info["last"] outputs {"count", "disorder"} on output 0.
"""
import sys
import time

from homegear import Homegear

state = {"count": 0, "expected": 0, "disorder": []}


def nodeInput(nodeInfo, inputIndex, msg):
    info = nodeInfo["info"]
    mode = info["mode"]
    if mode == "relay":
        for output in range(info.get("outputs", 1)):
            hg.nodeOutput(output, msg)
    elif mode == "loop":
        if msg.get("looped"):
            hg.nodeOutput(0, msg)
        else:
            msg["looped"] = True
            hg.nodeOutput(1, msg)
    elif mode == "produce":
        output = hg.nodeOutput
        for i in range(msg["payload"]):
            output(0, {"payload": i})
    elif mode == "check":
        payload = msg["payload"]
        state["count"] += 1
        if payload != state["expected"] and len(state["disorder"]) < 10:
            state["disorder"].append([state["expected"], payload])
        state["expected"] = payload + 1
        if payload == info["last"]:
            hg.nodeOutput(0, {"payload": {"count": state["count"],
                                          "disorder": state["disorder"]}})


hg = Homegear(sys.argv[1], None, sys.argv[2], nodeInput)
while hg.connected():
    time.sleep(1)
