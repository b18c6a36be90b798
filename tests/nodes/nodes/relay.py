"""Test node: what it does with an input is set in its info (nodeInfo["info"]).

- "tag" (default): append its id to msg["path"], output on output info["output"]
  (default: the input index), return "ok";
- "echo": output the message as is on output 0, and return it;
- "fanout": output on every output;
- "sum": return inputIndex and the payload (no output);
- "countdown": payload minus one; on output 0 while above zero, else on output 1;
- "slow": like "tag", after sleeping info["delay"] seconds;
- "burst": output messages with payloads 0 to payload - 1 (modulo info["modulo"]) on
  output 0, flat out.
It also keeps every event it gets: "events" outputs them on output info["events_output"].
A message that arrives while another nodeInput still runs gets msg["overlap"] = True.
"""
import sys
import threading
import time

from homegear import Homegear

hg = None


def eventHandler(eventSource, peerId, channel, variableName, value):
    info = startup.get("info") or {}
    if variableName == "startUpComplete":
        startup.update(value)
        if (value.get("info") or {}).get("announce"):
            hg.nodeOutput(0, {"payload": "started", "nodeInfo": value})
        return
    if "events_output" in info:
        event = [eventSource, peerId, channel, variableName, value]
        hg.nodeOutput(info["events_output"], {"payload": event})


running = [0]
running_lock = threading.Lock()


def nodeInput(nodeInfo, inputIndex, msg):
    with running_lock:
        running[0] += 1
        if running[0] > 1:
            msg["overlap"] = True
    try:
        return handle(nodeInfo, inputIndex, msg)
    finally:
        with running_lock:
            running[0] -= 1


def handle(nodeInfo, inputIndex, msg):
    info = nodeInfo["info"]
    mode = info.get("mode", "tag")
    if mode == "echo":
        hg.nodeOutput(0, msg)
        return msg
    if mode == "fanout":
        for output in range(len(nodeInfo["wiresOut"])):
            hg.nodeOutput(output, msg)
        return None
    if mode == "sum":
        return [inputIndex, msg["payload"]]
    if mode == "countdown":
        msg["payload"] -= 1
        hg.nodeOutput(0 if msg["payload"] > 0 else 1, msg)
        return None
    if mode == "burst":
        modulo = info.get("modulo", msg["payload"])
        for i in range(msg["payload"]):
            hg.nodeOutput(0, {"payload": i % modulo})
        return None
    if mode == "slow":
        time.sleep(info["delay"])
    msg.setdefault("path", []).append([nodeInfo["id"], inputIndex])
    hg.nodeOutput(info.get("output", inputIndex), msg)
    return "ok"


startup = {}
hg = Homegear(sys.argv[1], eventHandler, sys.argv[2], nodeInput)
while hg.connected():
    time.sleep(1)
