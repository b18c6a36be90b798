"""zigbee2mqtt adapter benchmark: ingest rate and reaction latency, next to plain paho.

Run by hand (it starts its own brokers on free ports)::

    .venv/bin/python benchmarks/zigbee.py [--messages 20000] [--reactions 300]

It prints, for a mosquitto with ``set_tcp_nodelay true`` (as the docs recommend) and for
a stock one (mosquitto's defaults, where Nagle and delayed ACKs stall QoS 1 round trips):

- state messages ingested per second by the adapter (parsed, reported to the registry,
  listeners called) and by a plain paho client that only counts them (the floor);
- reaction latency p50/p99 from a sensor report leaving a client to the resulting
  ``/set`` arriving back at it, through an automation that mirrors a sensor onto a lamp
  (reports every ``--interval`` seconds, the ``/set`` at QoS 1), next to a plain paho
  client doing the same mirroring (the floor).

The measuring clients run in child processes, so the adapter has its reactor to itself.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SENSOR = "zigbee2mqtt/Living room temp"
LAMP_SET = "zigbee2mqtt/Hallway Hue/set"

MIRROR = '''\
from pyziggy_autogenerate.available_devices import AvailableDevices

devices = AvailableDevices()


def mirror() -> None:
    humidity = devices.living_room_temp.humidity.get()
    if isinstance(humidity, float | int):
        devices.hallway_hue.brightness.set(int(humidity))


devices.living_room_temp.humidity.add_listener(mirror)
'''


# -- child processes -------------------------------------------------------------------


def _client(host: str, port: int, name: str, nodelay: bool = True) -> Any:
    import socket

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=name, protocol=mqtt.MQTTv311)
    if nodelay:
        client.on_socket_open = lambda c, u, s: s.setsockopt(socket.IPPROTO_TCP,
                                                             socket.TCP_NODELAY, 1)
    client.connect(host, port)
    return client


def child_measure(host: str, port: int, count: int, interval: float) -> None:
    """Publish a report, time until the mirrored /set arrives; print latencies (ms)."""
    got = threading.Event()
    client = _client(host, port, f"measure-{os.getpid()}")
    client.on_message = lambda c, u, m: got.set()
    client.subscribe(LAMP_SET, qos=1)
    client.loop_start()
    time.sleep(0.5)
    latencies = []
    for i in range(count + 20):
        got.clear()
        start = time.perf_counter()
        client.publish(SENSOR, json.dumps({"humidity": 10 + i % 200}), qos=0)
        if not got.wait(2.0):
            print("timeout", file=sys.stderr)
            continue
        if i >= 20:  # warm-up
            latencies.append((time.perf_counter() - start) * 1000)
        time.sleep(interval)
    client.loop_stop()
    print(json.dumps(latencies))


def child_mirror(host: str, port: int) -> None:
    """The floor: plain paho (its own thread), mirroring a report into a QoS 1 /set."""
    client = _client(host, port, "paho-mirror")

    def on_message(c: Any, u: Any, message: Any) -> None:
        value = json.loads(message.payload)["humidity"]
        c.publish(LAMP_SET, json.dumps({"brightness": value}), qos=1)

    client.on_message = on_message
    client.subscribe(SENSOR, qos=1)
    print("ready", flush=True)
    client.loop_forever()


def child_flood(host: str, port: int, count: int) -> None:
    """Publish ``count`` state messages as fast as possible (QoS 0)."""
    client = _client(host, port, f"flood-{os.getpid()}")
    client.loop_start()
    time.sleep(0.3)
    for i in range(count):
        info = client.publish(SENSOR, json.dumps({
            "battery": 90, "humidity": 40 + (i % 100) / 10, "linkquality": i % 255,
            "pressure": 1000 + i % 7, "temperature": 20 + (i % 50) / 10, "voltage": 3000,
        }), qos=0)
        if i % 1000 == 0:
            info.wait_for_publish()
    client.publish("bench/done", b"1", qos=1).wait_for_publish()
    client.loop_stop()


def child_count(host: str, port: int, count: int) -> None:
    """The ingest floor: a plain paho client counting (and parsing) state messages."""
    client = _client(host, port, "paho-count")
    state = {"n": 0, "first": 0.0, "last": 0.0}

    def on_message(c: Any, u: Any, message: Any) -> None:
        json.loads(message.payload)
        if state["n"] == 0:
            state["first"] = time.perf_counter()
        state["n"] += 1
        state["last"] = time.perf_counter()
        if state["n"] >= count:
            c.disconnect()

    client.on_message = on_message
    client.subscribe(SENSOR, qos=0)
    print("ready", flush=True)
    client.loop_forever()
    print(json.dumps(state))


# -- the adapter side --------------------------------------------------------------------


def spawn(*args: Any) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, __file__, *map(str, args)],
                            stdout=subprocess.PIPE, text=True)


def run_adapter(broker: Any, scenario_name: str, **kw: Any) -> Any:
    """The adapter (connection, network, automation) in a fresh reactor, measured."""
    from twisted.internet.task import deferLater

    from hadaemon.bus import Bus
    from hadaemon.logs import get_logger
    from hadaemon.mqtt import MqttConnection, MqttSettings
    from hadaemon.registry import Registry
    from hadaemon.testing import BlockingClient, run_in_reactor
    from hadaemon.zigbee.automation import AutomationRuntime
    from hadaemon.zigbee.codegen import write_module
    from hadaemon.zigbee.network import Network, NetworkSettings
    from hadaemon.zigbee.simulator import sample_devices
    from hadaemon.zigbee.testkit import _MemoryStore

    with BlockingClient(broker) as client:
        client.publish("zigbee2mqtt/bridge/devices", json.dumps(sample_devices()), retain=True)
    workdir = Path(tempfile.mkdtemp(prefix="hadaemon-bench-"))
    automation = workdir / "mirror.py"
    automation.write_text(MIRROR)
    write_module(workdir, sample_devices())

    async def scenario(reactor: Any) -> Any:
        bus = Bus(reactor)
        store = _MemoryStore()
        registry = Registry(reactor, bus, store)
        connection = MqttConnection(reactor, MqttSettings(host=broker.host, port=broker.port,
                                                          client_id="bench-adapter"), bus=bus)
        network = Network(reactor, connection, registry, bus, store,
                          NetworkSettings(initial_query=False), log=get_logger("bench"))
        runtime = AutomationRuntime(automation, network, reactor=reactor, bus=bus,
                                    log=get_logger("bench"))
        if scenario_name == "latency":
            runtime.load()
        network.start()
        connection.start()
        await connection.when_connected(5)
        while not network.ready:
            await deferLater(reactor, 0.01, lambda: None)
        if scenario_name == "latency":
            child = spawn("measure", broker.host, broker.port, kw["count"], kw["interval"])
            while child.poll() is None:
                await deferLater(reactor, 0.05, lambda: None)
            result = json.loads(child.stdout.read())  # type: ignore[union-attr]
        else:
            done: list[float] = []
            temp = network.find("Living room temp")
            connection.subscribe("bench/done", lambda m: done.append(time.perf_counter()))
            cpu0 = time.process_time()
            first = [0.0]
            start_count = network.messages_received

            def first_seen(_event: Any) -> None:
                if not first[0]:
                    first[0] = time.perf_counter()

            sub = bus.subscribe(f"variable/zigbee2mqtt/{temp.peer_id}/0/temperature",
                                first_seen)
            child = spawn("flood", broker.host, broker.port, kw["count"])
            while not done:
                await deferLater(reactor, 0.01, lambda: None)
            sub.cancel()
            received = network.messages_received - start_count - 1
            result = {"rate": received / (done[0] - first[0]),
                      "cpu_us": (time.process_time() - cpu0) / received * 1e6,
                      "received": received}
            child.wait()
        runtime.stop()
        await network.stop()
        await connection.stop()
        return result

    return run_in_reactor(scenario, timeout=600)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def floor_latency(broker: Any, count: int, interval: float) -> list[float]:
    mirror = spawn("mirror", broker.host, broker.port)
    assert mirror.stdout is not None and mirror.stdout.readline().strip() == "ready"
    try:
        child = spawn("measure", broker.host, broker.port, count, interval)
        out, _ = child.communicate()
        return list(json.loads(out))
    finally:
        mirror.terminate()
        mirror.wait()


def floor_ingest(broker: Any, count: int) -> dict[str, float]:
    counter = spawn("count", broker.host, broker.port, count)
    assert counter.stdout is not None and counter.stdout.readline().strip() == "ready"
    flood = spawn("flood", broker.host, broker.port, count)
    flood.wait()
    out = counter.stdout.read()
    counter.wait()
    state = json.loads(out)
    return {"rate": state["n"] / (state["last"] - state["first"]), "received": state["n"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--reactions", type=int, default=300)
    parser.add_argument("--interval", type=float, default=0.02,
                        help="seconds between sensor reports (< 40 ms triggers the stall)")
    args = parser.parse_args()
    from hadaemon.testing import Broker

    print(f"hadaemon zigbee benchmark: python {sys.version.split()[0]}, "
          f"{os.cpu_count()} cores, {args.messages} state messages, "
          f"{args.reactions} reactions {args.interval * 1000:.0f} ms apart")
    brokers = {
        "mosquitto set_tcp_nodelay true": (),
        "mosquitto stock (Nagle on)": ("set_tcp_nodelay false",),
    }
    for label, extra in brokers.items():
        with Broker(extra_config=extra) as broker:
            print(f"\n{label}:")
            ingest = run_adapter(broker, "ingest", count=args.messages)
            floor = floor_ingest(broker, args.messages)
            print(f"  ingest   hadaemon {ingest['rate']:8.0f} msg/s  "
                  f"({ingest['cpu_us']:.0f} us CPU/msg, {ingest['received']} received)"
                  f"   plain paho {floor['rate']:8.0f} msg/s")
            ours = run_adapter(broker, "latency", count=args.reactions,
                               interval=args.interval)
            base = floor_latency(broker, args.reactions, args.interval)
            print(f"  reaction hadaemon p50 {statistics.median(ours):6.2f} ms  "
                  f"p99 {percentile(ours, 99):6.2f} ms   plain paho p50 "
                  f"{statistics.median(base):6.2f} ms  p99 {percentile(base, 99):6.2f} ms")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in ("measure", "mirror", "flood", "count"):
        mode, host, port, *rest = sys.argv[1:]
        if mode == "measure":
            child_measure(host, int(port), int(rest[0]), float(rest[1]))
        elif mode == "mirror":
            child_mirror(host, int(port))
        elif mode == "flood":
            child_flood(host, int(port), int(rest[0]))
        else:
            child_count(host, int(port), int(rest[0]))
    else:
        main()
