"""Test node speaking the wire by hand (no homegear client), for what a well-behaved
client never does. Its info["scenario"]:

- "calls": authenticated as itself, makes the raw calls info["calls"] (e.g. node methods
  carrying another node's id) and reports every answer on its output 0;
- "no_read": answers the first ping (so it counts as started), then never reads again;
- "false_count": (with RAW_PROTOCOL=2 in its environment) claims with ``inputDone``
  to have handled inputs it was never sent.
"""
import os
import socket
import sys
import time

import msgpack

path, node_id = sys.argv[1], sys.argv[2]
with os.fdopen(int(os.environ["HADAEMON_NODE_TOKEN_FD"]), "rb") as pipe:  # as the client
    token = pipe.read().decode()
sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
sock.connect(path)
unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)


def send(message):
    sock.sendall(msgpack.packb(message, use_bin_type=True))


def answer_until(wanted):
    """Read, answering pings and inputs, until the responses to ``wanted`` ids came."""
    answers = {}
    while not set(wanted) <= set(answers):
        data = sock.recv(65536)
        if not data:
            sys.exit(1)
        unpacker.feed(data)
        for message in unpacker:
            if message[0] == 1:
                answers[message[1]] = [message[2], message[3]]
            elif message[0] == 0:
                send([1, message[1], None, True])
    return answers


protocol = int(os.environ.get("RAW_PROTOCOL", "1"))
send([0, 0, "authenticate", [node_id, token, {"pid": os.getpid(), "protocol": protocol}]])
info = answer_until([0])[0][1]["nodeInfo"]["info"]
scenario = info["scenario"]
if scenario == "calls":
    # info["calls"]: [[method, params], ...]; every answer [error, result] goes out on
    # output 0 as one list, in order.
    for msgid, (method, params) in enumerate(info["calls"], 1):
        send([0, msgid, method, params])
    answers = answer_until(range(1, len(info["calls"]) + 1))
    done = len(info["calls"]) + 1
    send([0, done, "nodeOutput", [node_id, 0, {"payload": [answers[i] for i in sorted(answers)]}]])
    answer_until([done])
    while True:
        answer_until([-1])
elif scenario == "no_read":
    # Answer the first ping (it follows the authentication answer), then go deaf.
    while True:
        data = sock.recv(65536)
        unpacker.feed(data)
        pinged = False
        for message in unpacker:
            if message[0] == 0 and message[2] == "ping":
                send([1, message[1], None, True])
                pinged = True
        if pinged:
            break
    while True:
        time.sleep(1)
elif scenario == "false_count":
    send([2, "inputDone", [3, 0]])
    answer_until([-1])  # exits once the daemon closes the connection
