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

Both run on the same brokers, one after the other, each figure printed under the whole
config of the broker it used (issue 11: "stock means defaults"; benchmarks/brokers.py):

- ``stock``: mosquitto as installed, only a listener (Nagle on, 1000 queued messages);
- ``test``: the test suite's broker (``set_tcp_nodelay true``, ``max_queued_messages
  100000``, persistence off; see hadaemon.testing.Broker).

With ``--repeat N`` hadaemon and Node-RED take turns N times per broker; the ranges of
the runs are printed. Besides the rates: CPU per message of the chain (the daemon, the
four nodes; Node-RED's process), and per MQTT round trip the daemon's CPU, the two
nodes' CPU and how often the nodes' threads went to sleep (each a wake-up that may wait
for a CPU on a loaded machine): figures that move less with the machine's load than the
rates do. Node-RED is found at $NODE_RED, else /work/nodered/node_modules/.bin/node-red,
else on PATH; without it the hadaemon figures are printed with a line saying how to
install it.

Run it by hand: ``.venv/bin/python benchmarks/nodes_vs_nodered.py [--messages 200000]
[--brokers stock,test] [--repeat 1] [--sides hadaemon,nodered] [--parts chain,latency]``.
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
import time
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred

import hadaemon.nodes.client as client_package
from hadaemon.bus import Address
from hadaemon.config import read, validate
from hadaemon.daemon import Daemon
from hadaemon.mqtt import MqttService
from hadaemon.nodes import SCHEMA, NodesPlugin
from hadaemon.plugin import Catalog, PluginInfo
from hadaemon.testing import Broker, free_tcp_port, run_in_reactor, wait_until

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from brokers import config_lines, stock_broker  # the benchmarks' own helpers
from node_routing import Results, cpu_seconds

BROKERS: dict[str, Callable[[], Any]] = {
    # Mosquitto as installed: only a listener (Nagle on, 1000 queued messages).
    "stock": stock_broker,
    # The test suite's broker: TCP_NODELAY, persistence off, 100,000 queued messages.
    "test": lambda: Broker(impl="mosquitto"),
}

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
         "protocolVersion": "4", "keepalive": "0", "cleansession": True},
        # keepalive 0: the chain blocks Node-RED's event loop; on a loaded machine longer
        # than 1.5 keepalives, and the broker would drop it (and the chain's result).
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
        # Keepalive 0: a chain run on a loaded machine may outlast 1.5 keepalives.
        self.sock.sendall(packet(0x10, string("MQTT") + bytes([4, 2, 0, 0])
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
if mode == "nodehop":  # the anchor: one relay node's client, driven without the daemon
    import os, subprocess, tempfile
    import msgpack
    rounds, warmup, client_dir = int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
    tmp = tempfile.mkdtemp(prefix="nodehop-")
    path, script = os.path.join(tmp, "s"), os.path.join(tmp, "relay.py")
    with open(script, "w") as f:
        f.write("import sys, time\nfrom homegear import Homegear\n"
                "def nodeInput(nodeInfo, inputIndex, msg):\n    hg.nodeOutput(0, msg)\n"
                "hg = Homegear(sys.argv[1], None, sys.argv[2], nodeInput)\n"
                "while hg.connected():\n    time.sleep(1)\n")
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen(1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HADAEMON_")}
    node = subprocess.Popen([sys.executable, script, path, "m1"],
                            env=dict(env, PYTHONPATH=client_dir))
    conn = server.accept()[0]
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)

    def message():
        while True:
            for got in unpacker:
                return got
            unpacker.feed(conn.recv(65536))

    message()  # authenticate: answered as the daemon does
    info = {"id": "m1", "flowId": "f", "type": "relay", "name": "", "info": {},
            "wiresIn": [{}], "wiresOut": [{}], "allWiresIn": [[]], "allWiresOut": [[]]}
    conn.sendall(msgpack.packb([1, 0, None, {"nodeInfo": info, "window": 256,
                                             "credits": 512, "protocol": 2}]))
    conn.sendall(msgpack.packb([0, 1, "ping", []]))
    while message()[:2] != [1, 1]:
        pass

    def sleeps():
        count = 0
        for task in os.listdir(f"/proc/{node.pid}/task"):
            with open(f"/proc/{node.pid}/task/{task}/status") as f:
                count += sum(int(line.split()[1]) for line in f if "ctxt_switches" in line)
        return count

    times, owed = [], 0
    for i in range(rounds + warmup):
        if i == warmup:
            before = sleeps()
        data = msgpack.packb([2, "nodeInput", [0, {"payload": str(i), "topic": "hd/in"}]])
        start = time.perf_counter_ns()
        conn.sendall(data)
        while message()[:2] != [2, "nodeOutput"]:
            pass
        if i >= warmup:
            times.append(time.perf_counter_ns() - start)
        owed += 1
        if owed == 128:  # credits back in batches, as the daemon grants them
            conn.sendall(msgpack.packb([2, "credit", [owed]]))
            owed = 0
    slept = (sleeps() - before) / rounds
    node.kill()
    print(json.dumps({"times": times, "sleeps": slept}))
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


def hadaemon_run(workdir: pathlib.Path, port: int, args: argparse.Namespace) -> dict[str, Any]:
    count, rounds, warmup = args.messages, args.rounds, args.warmup
    workdir.mkdir(parents=True, exist_ok=True)
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
            if "chain" in args.parts:
                await results.after("node:producer/0", {"payload": count})  # warm-up
                pids = [plugin.runtimes[n].pid for n in ("producer", "r1", "r2", "sink")]
                before = time.process_time(), sum(map(cpu_seconds, pids))
                out["chain"] = await results.after("node:producer/0", {"payload": count})
                # CPU per message: what the rate would be on an idle machine, less noisy.
                out["cpu"] = {"daemon": time.process_time() - before[0],
                              "nodes": sum(map(cpu_seconds, pids)) - before[1]}
                out["dropped"] = sum(s["dropped"] for s in plugin.nodes().values())
            if "latency" in args.parts:
                pids = [plugin.runtimes[n].pid for n in ("m1", "m2")]
                start = time.process_time(), sum(map(cpu_seconds, pids)), switches(pids)
                out["latency"] = await reactor_thread_call(
                    reactor, tester, workdir, "latency", port, "hd", rounds, warmup)
                # Per round trip (warm-up included): CPU, and how often the two nodes'
                # threads went to sleep (each one a wake-up that may wait for a CPU).
                total = rounds + warmup
                out["per_trip"] = {
                    "daemon_cpu_us": (time.process_time() - start[0]) / total * 1e6,
                    "nodes_cpu_us": (sum(map(cpu_seconds, pids)) - start[1]) / total * 1e6,
                    "node_sleeps": (switches(pids) - start[2]) / total,
                }
                out["direct"] = await reactor_thread_call(
                    reactor, tester, workdir, "latency", port, "direct", rounds, warmup)
        finally:
            await daemon.stopService()

    run_in_reactor(scenario, timeout=1800)
    return out


def switches(pids: list[int | None]) -> int:
    """Context switches of every thread of these processes so far."""
    count = 0
    for pid in pids:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/status") as f:
                count += sum(int(line.split()[1]) for line in f if "ctxt_switches" in line)
    return count


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


def nodered_run(node_red: str, workdir: pathlib.Path, port: int,
                args: argparse.Namespace) -> dict[str, Any]:
    count, rounds, warmup = args.messages, args.rounds, args.warmup
    user_dir = workdir / "nodered"
    user_dir.mkdir(parents=True)
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
        tester(workdir, "latency", port, "nr", 50, 50)  # up and warm
        if "chain" in args.parts:
            tester(workdir, "chain", port, "nr", count)  # warm-up
            before = cpu_seconds(proc.pid)
            out["chain"] = tester(workdir, "chain", port, "nr", count)
            out["cpu"] = {"nodered": cpu_seconds(proc.pid) - before}
        if "latency" in args.parts:
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

def chain_rate(result: dict[str, Any]) -> float:
    return float(result["count"] / result["elapsed"])


def lossless(count: int, result: dict[str, Any], lost: int | None) -> bool:
    return bool(result["count"] == count and result["disorder"] == 0 and not lost)


def p50(times: list[int]) -> float:
    return float(statistics.median(times)) / 1e6


def p99(times: list[int]) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] / 1e6


def span(values: list[float], digits: int) -> str:
    """``low-high`` (or one value), the way the docs give figures of several runs."""
    low, high = min(values), max(values)
    if f"{low:.{digits}f}" == f"{high:.{digits}f}":
        return f"{low:.{digits}f}"
    return f"{low:.{digits}f}-{high:.{digits}f}"


def cpu_cells(run: dict[str, Any], count: int) -> str:
    """CPU time per message of the measured chain run, by process."""
    cells = [f"{name} {seconds / count * 1e6:.1f}"
             for side in ("hadaemon", "nodered") if side in run
             for name, seconds in run[side]["cpu"].items()]
    return "   CPU us/msg: " + ", ".join(cells)


def report(args: argparse.Namespace, setting: str, config: list[str],
           runs: list[dict[str, Any]], version: str) -> None:
    """One broker setting's figures: every run's, then the ranges and the goals."""
    count = args.messages
    print(f"\n== mosquitto '{setting}', its whole config: {'; '.join(config)}")
    ours = [run["hadaemon"] for run in runs if "hadaemon" in run]
    theirs = [run["nodered"] for run in runs if "nodered" in run]
    if "chain" in args.parts:
        print(f"four-node chain, {count:,} messages flat out (second run of two), msg/s:")
        for i, run in enumerate(runs, 1):
            cells = []
            for side, label in (("hadaemon", "hadaemon"), ("nodered", "Node-RED")):
                if side in run:
                    result = run[side]["chain"]
                    lost = run[side].get("dropped")
                    cells.append(f"{label} {chain_rate(result):>8,.0f}"
                                 + ("" if lossless(count, result, lost) else
                                    f" (NOT lossless: {result['count']:,} arrived, "
                                    f"{result['disorder']} out of order, {lost} dropped)"))
            ratio = ""
            if len(cells) == 2:
                ours_rate = chain_rate(run["hadaemon"]["chain"])
                ratio = f"   {ours_rate / chain_rate(run['nodered']['chain']):.2f}x"
            print(f"  run {i}: " + "   ".join(cells) + ratio + cpu_cells(run, count))
        if ours and theirs:
            ratios = [chain_rate(run["hadaemon"]["chain"]) / chain_rate(run["nodered"]["chain"])
                      for run in runs if "hadaemon" in run and "nodered" in run]
            print(f"  hadaemon {span([chain_rate(o['chain']) for o in ours], 0)} msg/s, "
                  f"Node-RED {version} {span([chain_rate(t['chain']) for t in theirs], 0)}: "
                  f"{span(ratios, 2)}x (goal: at least 2x, lossless)")
    if "latency" in args.parts:
        print("MQTT in -> two nodes -> MQTT out, closed loop, round trip p50 / p99 ms:")
        for i, run in enumerate(runs, 1):
            cells = []
            for side, label in (("hadaemon", "hadaemon"), ("nodered", "Node-RED")):
                if side in run:
                    times = run[side]["latency"]
                    cells.append(f"{label} {p50(times):.3f} / {p99(times):.3f}")
            if "hadaemon" in run:
                cells.append(f"daemon alone {p50(run['hadaemon']['direct']):.3f}")
                trip = run["hadaemon"]["per_trip"]
                cells.append(f"per trip: daemon CPU {trip['daemon_cpu_us']:.0f} us, nodes "
                             f"{trip['nodes_cpu_us']:.0f} us, node threads slept "
                             f"{trip['node_sleeps']:.1f} times")
            print(f"  run {i}: " + "   ".join(cells))
        if ours:
            print(f"  hadaemon p50 {span([p50(o['latency']) for o in ours], 3)} ms; the daemon "
                  f"alone (MQTT in -> out, no node) {span([p50(o['direct']) for o in ours], 3)}"
                  " ms")
        if ours and theirs:
            ratios = [p50(run["hadaemon"]["latency"]) / p50(run["nodered"]["latency"])
                      for run in runs if "hadaemon" in run and "nodered" in run]
            print(f"  Node-RED {version} p50 {span([p50(t['latency']) for t in theirs], 3)} ms;"
                  f" hadaemon / Node-RED {span(ratios, 2)} (goal: at most 1)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=2_000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs per broker setting, hadaemon and Node-RED taking turns")
    parser.add_argument("--brokers", default="stock,test",
                        help=f"comma-separated, of {', '.join(BROKERS)}")
    parser.add_argument("--sides", default="hadaemon,nodered")
    parser.add_argument("--parts", default="chain,latency")
    parser.add_argument("--json", help="also write every raw figure to this file")
    args = parser.parse_args()
    args.parts = args.parts.split(",")
    sides = args.sides.split(",")
    node_red = find_node_red() if "nodered" in sides else None
    version = ""
    if node_red is not None:
        version = " ".join(subprocess.run([node_red, "--version"], capture_output=True,
                                          text=True, check=False).stdout.split()[1:2])
    print(f"nodes vs Node-RED: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; QoS 0; "
          "closed-loop MQTT tester (TCP_NODELAY on its own socket)")
    if "nodered" in sides and node_red is None:
        print("Node-RED not installed: npm install node-red "
              "(or set NODE_RED to its node-red script); hadaemon's figures only")
    everything: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="hadaemon-vs-nodered-", dir="/tmp") as tmp:
        workdir = pathlib.Path(tmp)
        # The anchor: the least a hop to another process costs (no broker, no daemon).
        hop = tester(workdir, "hop", 0, "-", args.rounds, args.warmup)
        print(f"anchor: a bare Python process echoing over a Unix socket, p50 "
              f"{p50(hop):.3f} ms per hop (two nodes are two such hops at least)")
        relay = tester(workdir, "nodehop", 0, "-", args.rounds, args.warmup,
                       pathlib.Path(client_package.__file__).parent)
        print(f"anchor: one relay node (hadaemon's client, a nodeInput that outputs its "
              f"message) driven by a bare Python process instead of the daemon, p50 "
              f"{p50(relay['times']):.3f} ms per hop, its threads slept "
              f"{relay['sleeps']:.1f} times per message")
        for setting in args.brokers.split(","):
            broker = BROKERS[setting]()
            runs: list[dict[str, Any]] = []
            with broker:
                config = config_lines(broker)
                for i in range(args.repeat):
                    run: dict[str, Any] = {}
                    # Taking turns, each side first every other run: the same machine.
                    order = ["hadaemon", "nodered"][:: 1 if i % 2 == 0 else -1]
                    for side in order:
                        here = workdir / f"{setting}-{side}-{i}"
                        if side == "hadaemon" and "hadaemon" in sides:
                            run[side] = hadaemon_run(here, broker.port, args)
                        elif side == "nodered" and node_red is not None:
                            run[side] = nodered_run(node_red, here, broker.port, args)
                    runs.append(run)
            report(args, setting, config, runs, version)
            everything[setting] = {"config": config, "runs": runs}
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps({"hop": hop, "relay": relay,
                                                       **everything}))


if __name__ == "__main__":
    main()
