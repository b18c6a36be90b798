"""Test node speaking Homegear binary RPC by hand (the bytes of homegear_wire, no client),
for what the real client does byte for byte and what no well-behaved client does. It
answers every call of the daemon with Void. Its info["scenario"]:

- "calls": makes the raw calls info["calls"] (e.g. node methods carrying another node's
  id) and reports every answer as [error, result] on output 0, as one list;
- "no_read" (in $RAW_SCENARIO: it must not wait for startUpComplete): answers the first
  ping (so it counts as started), then never reads again;
- "protocol": the real client's handshake and envelopes, reported on output 0 with the
  raw bytes (see tests/nodes/test_binary_wire.py);
- "frames": sends each of info["frames"] (hex) on a connection of its own and reports
  what came back and whether the daemon closed it.
"""
import os
import socket
import sys
import time

import homegear_wire as wire

path, node_id = sys.argv[1].strip('"'), sys.argv[2]
T0 = 0x7EFF4A0DC6C0  # the thread id in the spec's captured handshake


class Connection:
    def __init__(self, answer_calls=True):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.stream = wire.Stream()
        self.answers = {}  # (threadId, packetId) -> (result, raw bytes)
        self.order = []  # answer keys in arrival order
        self.requests = []  # the daemon's calls: (method, params, raw bytes)
        self.answer_calls = answer_calls

    def send(self, data):
        self.sock.sendall(data)

    def call(self, method, params, thread_id, packet_id):
        self.send(wire.request(method, [thread_id, packet_id, params]))

    def pump(self):
        data = self.sock.recv(65536)
        if not data:
            sys.exit(1)
        for flag, body, raw in self.stream.feed(data):
            parsed = wire.parse(flag, body, raw_strings=True)
            if parsed[0] == "response":
                value = parsed[1]
                key = (value[0], value[1])
                self.answers[key] = (value[2], raw)
                self.order.append(key)
            else:
                method, params = parsed[1], parsed[2]
                self.requests.append((method, params, raw))
                if self.answer_calls:
                    self.send(wire.response([params[0], None]))

    def wait_answers(self, keys):
        while not all(key in self.answers for key in keys):
            self.pump()
        return [self.answers[key][0] for key in keys]

    def wait_request(self, method, count=1):
        while len([r for r in self.requests if r[0] == method]) < count:
            self.pump()
        return [r for r in self.requests if r[0] == method][count - 1]

    def handshake(self):
        self.call("setPid", [os.getpid()], T0, 0)
        self.wait_answers([(T0, 0)])

    def report(self, payload, packet_id):
        self.call("nodeOutput", [node_id, 0, {"payload": payload}], 1, packet_id)
        self.wait_answers([(1, packet_id)])

    def serve_forever(self):
        while True:
            self.pump()


def as_pair(result):
    if isinstance(result, dict) and set(result) == {"faultCode", "faultString"}:
        return [result, None]
    return [None, result]


def exchange(data, timeout=2.0):
    """Send raw bytes on a connection of its own: (closed, [answer packets as hex])."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.connect(path)
    stream = wire.Stream()
    answers, closed = [], False
    try:
        sock.sendall(data)
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                closed = True
                break
            answers.extend(raw.hex() for _f, _b, raw in stream.feed(chunk))
    except TimeoutError:
        pass
    except (ConnectionResetError, BrokenPipeError):
        closed = True
    finally:
        sock.close()
    return {"closed": closed, "answers": answers}


conn = Connection()
early_key = (0x7EFF00000001, 7)
# A node call before setPid (the real client does not wait for setPid's answer).
conn.call("getNodeData", [node_id, "early"], *early_key)
conn.handshake()
conn.wait_answers([early_key])
ping = conn.wait_request("ping")
if os.environ.get("RAW_SCENARIO") == "no_read":
    while True:
        time.sleep(1)
# The scenario comes with startUpComplete's nodeInfo.
startup = conn.wait_request("broadcastEvent")
info = startup[1][1][4][0]["info"]
scenario = info["scenario"]

if scenario == "calls":
    keys = []
    for number, (method, params) in enumerate(info["calls"], 1):
        key = (1000 + number, number)
        conn.call(method, params, *key)
        keys.append(key)
    pairs = [as_pair(result) for result in conn.wait_answers(keys)]
    conn.report(pairs, len(keys) + 1)
    conn.serve_forever()
elif scenario == "protocol":
    # An input tells which device to write to (the test holds that write back).
    nodeinput = conn.wait_request("nodeInput")
    peer = nodeinput[1][1][2]["payload"]["peer"]
    a, b, c = (0x7EFF000000A0, 8), (0x7EFF000000B0, 9), (0x7EFF000000C0, 10)
    conn.send(
        wire.request("setValue", [a[0], a[1], [peer, 0, "level", 5]])
        + wire.request("getVersion", [b[0], b[1], []])
        + wire.request("noSuchMethod", [c[0], c[1], [1]])
    )
    # The two answered at once: say which answers there are by then (setValue's is held).
    conn.wait_answers([b, c])
    conn.report({"answered": [list(key) for key in conn.order]}, 12)
    conn.wait_answers([a, b, c])
    conn.report({
        "early": conn.answers[early_key][0],
        "setPid": conn.answers[(T0, 0)][1].hex(),
        "ping": ping[2].hex(),
        "startUpComplete": startup[1][1],
        "nodeInput": nodeinput[1][1],
        "order": [list(key) for key in conn.order],
        "answers": [conn.answers[key][0] for key in (a, b, c)],
        "answer_bytes": [conn.answers[key][1].hex() for key in (a, b, c)],
    }, 11)
    conn.serve_forever()
elif scenario == "frames":
    results = [exchange(bytes.fromhex(frame)) for frame in info["frames"]]
    conn.report(results, 1)
    conn.serve_forever()
