"""hadaemon's nodes side by side with Node-RED 4.1, in one run, with equivalent flows.

1. Chain throughput: producer -> relay -> relay -> sink (four nodes; the producer sends
   ``--messages`` small messages as fast as it can from one input, each relay outputs
   what it got, the sink checks every message arrived, in order). Reported: messages/s
   from the producer's first send to the sink's last input, and whether it was
   lossless. hadaemon: four Python node processes (hg.nodeOutput); Node-RED: four
   function nodes (node.send in a loop, ``return msg``).
2. MQTT reaction latency: MQTT in -> node -> node -> MQTT out. A tester process (raw
   MQTT 3.1.1 over TCP, QoS 0) publishes a sequence number and waits for it to come back
   before it sends the next one (a closed loop: one message in the flow at a time);
   reported p50/p99 of the round trip. Node-RED: its mqtt in/out nodes and two function
   nodes (``return msg``). hadaemon: the ``mqtt`` plugin's subscription posts the
   message to node 1 (its ``nodeInput`` outputs it), node 2 is wired to a bus endpoint
   that publishes it: the daemon's equivalent of the mqtt in/out nodes, in its process.
3. Anchors, same run: the daemon alone (a subscription that publishes what it gets, no
   node), and a bare Python process echoing over a Unix socket (the least a hop to
   another process costs): what the two nodes add, against what the sockets must cost.

One mosquitto broker for both, started here on a free port on 127.0.0.1 (mosquitto's
defaults, persistence off, TCP_NODELAY on; see hadaemon.testing.Broker). Node-RED is
found at $NODE_RED, else /work/nodered/node_modules/.bin/node-red, else on PATH; without
it the hadaemon figures are printed with a line saying how to install it.

Run it by hand: ``.venv/bin/python benchmarks/nodes_vs_nodered.py [--messages 200000]``.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
from typing import Any

from twisted.internet.defer import Deferred

from hadaemon.bus import Address
from hadaemon.config import read, validate
from hadaemon.daemon import Daemon
from hadaemon.mqtt import MqttService
from hadaemon.nodes import SCHEMA, NodesPlugin
from hadaemon.plugin import Catalog, PluginInfo
from hadaemon.testing import Broker, free_tcp_port, run_in_reactor, wait_until

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from node_routing import Results  # the benchmarks' own helper (after the path)

NODE_RED_DEFAULT = "/work/nodered/node_modules/.bin/node-red"

# -- hadaemon's nodes ------------------------------------------------------------------

NODE = '''
import sys, time
from homegear import Homegear

state = {"count": 0, "expected": 0, "disorder": 0, "t0": None}

def nodeInput(nodeInfo, inputIndex, msg):
    mode = nodeInfo["info"]["mode"]
    if mode == "relay":
        hg.nodeOutput(0, msg)
    elif mode == "produce":
        output = hg.nodeOutput
        n = msg["payload"]
        output(0, {"payload": 0, "t0": time.monotonic_ns()})
        for i in range(1, n):
            output(0, {"payload": i})
    else:  # check
        payload = msg["payload"]
        if payload == 0:
            state.update(count=0, expected=0, disorder=0, t0=msg["t0"])
        state["count"] += 1
        if payload != state["expected"]:
            state["disorder"] += 1
        state["expected"] = payload + 1
        if payload == nodeInfo["info"]["last"]:
            elapsed = (time.monotonic_ns() - state["t0"]) / 1e9
            hg.nodeOutput(0, {"payload": {"count": state["count"],
                                          "disorder": state["disorder"],
                                          "elapsed": elapsed}})

hg = Homegear(sys.argv[1], None, sys.argv[2], nodeInput)
while hg.connected():
    time.sleep(1)
'''

# -- Node-RED's flows ------------------------------------------------------------------

PRODUCE_JS = """
const n = Number(msg.payload);
node.send({payload: 0, t0: Date.now()});
for (let i = 1; i < n; i++) { node.send({payload: i}); }
return null;
"""

CHECK_JS = """
let s = context.get("s");
if (msg.payload === 0) { s = {count: 0, expected: 0, disorder: 0, t0: msg.t0}; }
s.count++;
if (msg.payload !== s.expected) { s.disorder++; }
s.expected = msg.payload + 1;
context.set("s", s);
if (msg.payload === LAST) {
    return {payload: JSON.stringify({count: s.count, disorder: s.disorder,
                                     elapsed: (Date.now() - s.t0) / 1000})};
}
return null;
"""


def nodered_flows(port: int, count: int) -> list[dict[str, Any]]:
    def function(node_id: str, code: str, wires: list[str]) -> dict[str, Any]:
        return {"id": node_id, "type": "function", "z": "tab", "name": "",
                "func": code, "outputs": 1, "wires": [wires]}

    return [
        {"id": "tab", "type": "tab", "label": "bench"},
        {"id": "broker", "type": "mqtt-broker", "name": "bench", "broker": "127.0.0.1",
         "port": str(port), "clientid": "", "autoConnect": True, "usetls": False,
         "protocolVersion": "4", "keepalive": "60", "cleansession": True},
        # Latency: mqtt in -> two functions -> mqtt out.
        {"id": "in", "type": "mqtt in", "z": "tab", "topic": "nr/in", "qos": "0",
         "datatype": "utf8", "broker": "broker", "nl": False, "rap": True, "wires": [["f1"]]},
        function("f1", "return msg;", ["f2"]),
        function("f2", "return msg;", ["out"]),
        {"id": "out", "type": "mqtt out", "z": "tab", "topic": "nr/out", "qos": "0",
         "retain": "false", "broker": "broker", "wires": []},
        # Chain: producer -> relay -> relay -> sink; started and reported over MQTT.
        {"id": "start", "type": "mqtt in", "z": "tab", "topic": "nr/chain/start", "qos": "0",
         "datatype": "utf8", "broker": "broker", "nl": False, "rap": True,
         "wires": [["producer"]]},
        function("producer", PRODUCE_JS, ["r1"]),
        function("r1", "return msg;", ["r2"]),
        function("r2", "return msg;", ["sink"]),
        function("sink", CHECK_JS.replace("LAST", str(count - 1)), ["result"]),
        {"id": "result", "type": "mqtt out", "z": "tab", "topic": "nr/chain/result",
         "qos": "0", "retain": "false", "broker": "broker", "wires": []},
    ]


# -- the tester: a raw MQTT 3.1.1 client (QoS 0), in a process of its own --------------

TESTER = r'''
import json, socket, struct, sys, time

def packet(kind, body):
    length, out = len(body), bytearray([kind])
    while True:
        byte, length = length % 128, length // 128
        out.append(byte | (128 if length else 0))
        if not length:
            return bytes(out) + body

def string(text):
    data = text.encode()
    return struct.pack("!H", len(data)) + data

class Client:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""
        self.sock.sendall(packet(0x10, string("MQTT") + bytes([4, 2, 0, 60])
                                 + string(f"tester-{time.monotonic_ns()}")))
        assert self.read()[0] == 0x20

    def read(self):
        while True:
            if len(self.buffer) >= 2:
                length, shift, i = 0, 0, 1
                while i < len(self.buffer):
                    byte = self.buffer[i]
                    length |= (byte & 127) << shift
                    shift += 7
                    i += 1
                    if not byte & 128:
                        if len(self.buffer) >= i + length:
                            kind, body = self.buffer[0], self.buffer[i:i + length]
                            self.buffer = self.buffer[i + length:]
                            return kind & 0xF0, body
                        break
            data = self.sock.recv(65536)
            if not data:
                raise SystemExit("broker closed the connection")
            self.buffer += data

    def subscribe(self, topic):
        self.sock.sendall(packet(0x82, struct.pack("!H", 1) + string(topic) + b"\0"))
        while self.read()[0] != 0x90:
            pass

    def publish(self, topic, payload):
        self.sock.sendall(packet(0x30, string(topic) + payload))

    def receive(self, timeout=None):
        self.sock.settimeout(timeout)
        try:
            while True:
                kind, body = self.read()
                if kind == 0x30:
                    (n,) = struct.unpack("!H", body[:2])
                    return body[2:2 + n].decode(), body[2 + n:]
        finally:
            self.sock.settimeout(None)

mode, port, prefix = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if mode == "hop":  # the anchor: a Python process that echoes over a Unix socket
    import os
    rounds, warmup = int(sys.argv[4]), int(sys.argv[5])
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    if os.fork() == 0:
        ours.close()
        while data := theirs.recv(65536):
            theirs.sendall(data)
        os._exit(0)
    theirs.close()
    times = []
    for i in range(rounds + warmup):
        payload = b"\x93\x02\xa9nodeInput\x92\x00\x81\xa7payload" + str(i).encode()
        start = time.perf_counter_ns()
        ours.sendall(payload)
        got = b""
        while len(got) < len(payload):
            got += ours.recv(65536)
        if i >= warmup:
            times.append(time.perf_counter_ns() - start)
    ours.close()
    print(json.dumps(times))
    raise SystemExit
client = Client(port)
if mode == "latency":
    rounds, warmup = int(sys.argv[4]), int(sys.argv[5])
    client.subscribe(f"{prefix}/out")
    deadline = time.monotonic() + 60
    while True:  # until the flow answers (its subscription may still be on the way)
        client.publish(f"{prefix}/in", b"ping")
        try:
            client.receive(0.2)
            break
        except socket.timeout:
            if time.monotonic() > deadline:
                raise SystemExit("the flow never answered")
    times = []
    for i in range(rounds + warmup):
        payload = str(i).encode()
        start = time.perf_counter_ns()
        client.publish(f"{prefix}/in", payload)
        while client.receive()[1] != payload:
            pass  # a late answer to a ping
        if i >= warmup:
            times.append(time.perf_counter_ns() - start)
    print(json.dumps(times))
else:  # chain: start it, wait for the sink's report
    client.subscribe(f"{prefix}/chain/result")
    client.publish(f"{prefix}/chain/start", sys.argv[4].encode())
    print(client.receive(600)[1].decode())
'''


def tester(workdir: pathlib.Path, *args: Any) -> Any:
    script = workdir / "tester.py"
    script.write_text(TESTER)
    done = subprocess.run([sys.executable, str(script), *map(str, args)],
                          capture_output=True, text=True, timeout=900, check=False)
    if done.returncode:
        raise SystemExit(f"tester failed: {done.stderr}")
    return json.loads(done.stdout)


# -- hadaemon --------------------------------------------------------------------------

def catalog() -> Catalog:
    return Catalog({
        "nodes": PluginInfo("nodes", NodesPlugin, SCHEMA, "benchmark"),
        "mqtt": PluginInfo("mqtt", MqttService, MqttService.schema, "benchmark"),
    })


def hadaemon_run(workdir: pathlib.Path, port: int, count: int, rounds: int,
                 warmup: int) -> dict[str, Any]:
    workdir.mkdir(exist_ok=True)
    node_file = workdir / "bench_node.py"
    node_file.write_text(NODE)

    def node(node_id: str, mode: str, wires: list[str], **info: Any) -> dict[str, Any]:
        return {"id": node_id, "file": str(node_file), "wires": [wires],
                "info": {"mode": mode, **info}}

    nodes = [
        node("producer", "produce", ["r1"]), node("r1", "relay", ["r2"]),
        node("r2", "relay", ["sink"]),
        node("sink", "check", ["bench:results"], last=count - 1),
        node("m1", "relay", ["m2"]), node("m2", "relay", ["bench:mqtt-out"]),
    ]
    sections = {
        "daemon": {"state_dir": str(workdir / "var"), "plugins": ["mqtt", "nodes"]},
        "mqtt": {"host": "127.0.0.1", "port": port, "client_id": "hadaemon-bench"},
        "nodes": {"node": nodes, "start_deadline": 60.0},
    }
    config, errors = validate(read(sections, base_dir=workdir, environ={}),
                              catalog().schemas())
    if errors:
        raise SystemExit("\n".join(map(str, errors)))
    out: dict[str, Any] = {}

    async def scenario(reactor: Any) -> None:
        daemon = Daemon(config, reactor, catalog=catalog())
        daemon.startService()
        try:
            await daemon.started
            plugin: Any = daemon.plugin("nodes")
            mqtt: Any = daemon.plugin("mqtt")
            await wait_until(reactor, lambda: mqtt.connected and plugin.startup_done and all(
                r.startup_sent for r in plugin.runtimes.values()), timeout=120.0,
                what="the nodes and the broker link", interval=0.005)
            # The mqtt in and out "nodes": a subscription posting to m1, an endpoint
            # publishing what m2 outputs.
            bus = daemon.bus
            post = bus.post
            m1 = Address.parse("node:m1/0")
            mqtt.subscribe("hd/in", lambda message: post(
                m1, {"payload": message.payload.decode()}), qos=0)
            # The anchor: MQTT in straight to MQTT out, no node in between.
            mqtt.subscribe("direct/in", lambda message: mqtt.publish(
                "direct/out", message.payload, qos=0).addErrback(lambda _: None), qos=0)
            bus.register("bench:mqtt-out", lambda address, msg: mqtt.publish(
                "hd/out", str(msg["payload"]).encode(), qos=0).addErrback(lambda _: None),
                concurrency=100)
            results = Results(bus)
            await results.after("node:producer/0", {"payload": count})  # warm-up
            out["chain"] = await results.after("node:producer/0", {"payload": count})
            out["dropped"] = sum(s["dropped"] for s in plugin.nodes().values())
            out["latency"] = await reactor_thread_call(
                reactor, tester, workdir, "latency", port, "hd", rounds, warmup)
            out["direct"] = await reactor_thread_call(
                reactor, tester, workdir, "latency", port, "direct", rounds, warmup)
        finally:
            await daemon.stopService()

    run_in_reactor(scenario, timeout=1800)
    return out


def reactor_thread_call(reactor: Any, f: Any, *args: Any) -> Deferred[Any]:
    """Run a blocking ``f`` (the tester) in a thread: the reactor keeps serving."""
    from twisted.internet.threads import deferToThreadPool

    return deferToThreadPool(reactor, reactor.getThreadPool(), f, *args)


# -- Node-RED ----------------------------------------------------------------------------

def find_node_red() -> str | None:
    for candidate in (os.environ.get("NODE_RED"), NODE_RED_DEFAULT, shutil.which("node-red")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def nodered_run(node_red: str, workdir: pathlib.Path, port: int, count: int, rounds: int,
                warmup: int) -> dict[str, Any]:
    user_dir = workdir / "nodered"
    user_dir.mkdir()
    flows = user_dir / "flows.json"
    flows.write_text(json.dumps(nodered_flows(port, count)))
    log = (workdir / "nodered.log").open("w")
    proc = subprocess.Popen(
        [node_red, "--userDir", str(user_dir), "--port", str(free_tcp_port("127.0.0.1")),
         "--no-telemetry", str(flows)],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        out: dict[str, Any] = {}
        out["latency"] = tester(workdir, "latency", port, "nr", 50, 50)  # up and warm
        tester(workdir, "chain", port, "nr", count)  # warm-up
        out["chain"] = tester(workdir, "chain", port, "nr", count)
        out["latency"] = tester(workdir, "latency", port, "nr", rounds, warmup)
        return out
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


# -- report ------------------------------------------------------------------------------

def chain_line(label: str, count: int, result: dict[str, Any], lost: int | None) -> float:
    rate = float(result["count"] / result["elapsed"])
    lossless = result["count"] == count and result["disorder"] == 0 and not lost
    print(f"  {label:<18} {rate:>10,.0f} msg/s   {result['count']:,}/{count:,} arrived, "
          f"{result['disorder']} out of order"
          + (f", {lost} dropped" if lost is not None else "")
          + ("  (lossless)" if lossless else "  (NOT lossless)"))
    return rate


def latency_line(label: str, times: list[int]) -> float:
    ordered = sorted(times)
    p50 = statistics.median(ordered) / 1e6
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] / 1e6
    print(f"  {label:<18} p50 {p50:7.3f} ms   p99 {p99:7.3f} ms   ({len(times)} round trips)")
    return p50


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=2_000)
    parser.add_argument("--warmup", type=int, default=200)
    args = parser.parse_args()
    node_red = find_node_red()
    with tempfile.TemporaryDirectory(prefix="hadaemon-vs-nodered-", dir="/tmp") as tmp:
        workdir = pathlib.Path(tmp)
        hop = tester(workdir, "hop", 0, "-", args.rounds, args.warmup)
        broker = Broker(impl="mosquitto", workdir=workdir / "broker").start()
        try:
            print(f"nodes vs Node-RED: {os.cpu_count()} CPUs, Python "
                  f"{sys.version.split()[0]}, mosquitto on 127.0.0.1:{broker.port} "
                  "(QoS 0, TCP_NODELAY, persistence off); closed-loop MQTT tester")
            ours = hadaemon_run(workdir / "hadaemon", broker.port, args.messages,
                                args.rounds, args.warmup)
            theirs = None
            version: list[str] = []
            if node_red is None:
                print("Node-RED not installed: npm install node-red "
                      "(or set NODE_RED to its node-red script)")
            else:
                version = subprocess.run([node_red, "--version"], capture_output=True,
                                         text=True, check=False).stdout.split()[1:2]
                theirs = nodered_run(node_red, workdir, broker.port, args.messages,
                                     args.rounds, args.warmup)
        finally:
            broker.stop()
    print(f"four-node chain, {args.messages:,} messages flat out (second run of two):")
    ours_rate = chain_line("hadaemon", args.messages, ours["chain"], ours["dropped"])
    if theirs is not None:
        theirs_rate = chain_line(f"Node-RED {''.join(version)}", args.messages,
                                 theirs["chain"], None)
        print(f"  hadaemon / Node-RED: {ours_rate / theirs_rate:.2f}x (goal: at least 2x)")
    print("MQTT in -> two nodes -> MQTT out, closed loop, round trip:")
    ours_p50 = latency_line("hadaemon", ours["latency"])
    if theirs is not None:
        theirs_p50 = latency_line(f"Node-RED {''.join(version)}", theirs["latency"])
        print(f"  p50 hadaemon / Node-RED: {ours_p50 / theirs_p50:.2f} (goal: at most 1)")
    # The anchors, same run: what the two nodes add, against the least two hops to
    # other processes can cost (a Python process that only echoes, no daemon at all).
    print("anchors:")
    direct_p50 = latency_line("MQTT in -> out", ours["direct"])
    hop_p50 = latency_line("raw Unix hop", hop)
    print(f"  two nodes add {ours_p50 - direct_p50:.3f} ms to the daemon's own round trip; "
          f"two bare Python echo hops take {2 * hop_p50:.3f} ms")


if __name__ == "__main__":
    main()
