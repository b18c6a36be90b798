"""zigbee2mqtt adapter benchmark: ingest rate, CPU per message and reaction latency, each
next to a plain paho client in the same run, on a stock mosquitto (and a tuned one).

Run by hand (it starts its own brokers on free ports)::

    .venv/bin/python benchmarks/zigbee.py [--messages 20000] [--reactions 300]
        [--interval 0.02] [--brokers stock,tuned] [--hops] [--latency-only]

Brokers (each figure is printed under the mosquitto config it used, line by line):

- ``stock``: mosquitto with only a listener (``listener <port> 127.0.0.1`` and
  ``allow_anonymous true``, which mosquitto 2 needs for anonymous clients): Nagle on,
  1000 queued messages per client;
- ``tuned``: the same plus ``set_tcp_nodelay true`` and ``max_queued_messages 100000``
  (docs/mqtt.md recommends both).

Figures, hadaemon (the ``mqtt`` connection, the zigbee2mqtt network, an automation) next
to the floor, a plain paho 2 client with its defaults (its own network thread):

- ingest: state messages per second (each parsed; hadaemon also reports every value to
  the registry, which publishes bus events), from the first to the last message that
  arrived of ``--messages`` written at once on a raw socket (so the publisher is never
  the bottleneck), and CPU per message over the same span; what arrived is counted
  (the stock broker may drop what exceeds its 1000-message queue for a slow reader);
  the best of ``--repeat`` runs, hadaemon's and paho's taking turns;
- reaction latency p50/p99 from a sensor report leaving the sensor's client to the
  resulting ``/set`` (QoS 1) arriving back at it, through an automation that mirrors a
  sensor onto a lamp. Closed loop: the next report leaves ``--interval`` after the
  answer. Open loop: reports leave every ``--interval`` whatever the answers do, as a
  real sensor sends them; reports never answered are counted as lost (for hadaemon
  also two reports read in one reactor turn: their sets collate into one ``/set``).
- the reaction's floor, the same measurement against a raw-socket mirror doing no work
  (no library, the ``/set`` framed by hand): the broker, the kernel and the measuring
  client, which no adapter can go below.

- ``--hops``: where a closed-loop reaction's time goes, hop by hop (the sensor's
  publish, the adapter's epoll returning, its read, the listener, the ``/set``'s send,
  the sensor getting it; monotonic timestamps, one clock for every process), in a run
  of its own with probes wrapped around those methods, next to the raw mirror's split.
- ingest also prints messages per wake-up (doRead call): CPU per message is the path's
  own cost plus a wake-up's (epoll, asyncio, recv, quickack) shared by its messages, so
  a quiet machine (few messages per wake-up) shows a higher figure than a loaded one.

``benchmarks/zigbee_path.py`` measures the adapter's own CPU on the same paths in
process (no broker, no socket), steadier on a shared machine, and counts its
instructions per message under callgrind (``--callgrind``), which load does not move.

The measuring clients (the sensor: paho with TCP_NODELAY; the flood) run in child
processes, so the adapter has its reactor to itself. The machine may be shared: compare
the ratios within one run, not figures across runs.
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
sys.path.insert(0, str(ROOT / "benchmarks"))
from brokers import stock_broker  # noqa: E402  (the benchmarks' shared brokers)

SENSOR = "zigbee2mqtt/Living room temp"
LAMP_SET = "zigbee2mqtt/Hallway Hue/set"
WARMUP = 20

MIRROR = '''\
from pyziggy_autogenerate.available_devices import AvailableDevices

devices = AvailableDevices()


def mirror() -> None:
    humidity = devices.living_room_temp.humidity.get()
    if isinstance(humidity, float | int):
        devices.hallway_hue.brightness.set(int(humidity))


devices.living_room_temp.humidity.add_listener(mirror)
'''

# Extra lines over the stock config (listener + allow_anonymous only).
BROKERS: dict[str, tuple[str, ...]] = {
    "stock": (),
    "tuned": ("set_tcp_nodelay true", "max_queued_messages 100000"),
}


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


def _report(i: int) -> bytes:
    # Values 10..209 (a brightness the lamp takes); consecutive reports always differ.
    return json.dumps({"humidity": 10 + i % 200}).encode()


def child_measure(host: str, port: int, count: int, interval: float) -> None:
    """Closed loop: publish a report, time until the mirrored /set arrives, wait
    ``interval``, repeat; print the latencies (ms) and the count of timeouts."""
    got = threading.Event()
    arrived: list[float] = []
    client = _client(host, port, f"measure-{os.getpid()}")

    def on_message(c: Any, u: Any, m: Any) -> None:
        arrived.append(time.monotonic())  # CLOCK_MONOTONIC: comparable across processes
        got.set()

    client.on_message = on_message
    client.subscribe(LAMP_SET, qos=1)
    client.loop_start()
    time.sleep(0.5)
    latencies = []
    hops = []  # (sent, arrived) monotonic, for the per-hop split
    lost = 0
    for i in range(count + WARMUP):
        got.clear()
        arrived.clear()
        start = time.perf_counter()
        sent = time.monotonic()
        client.publish(SENSOR, _report(i), qos=0)
        if not got.wait(2.0):
            lost += 1
            continue
        if i >= WARMUP:
            latencies.append((time.perf_counter() - start) * 1000)
            hops.append((sent, arrived[0]))
        time.sleep(interval)
    client.loop_stop()
    print(json.dumps({"latencies": latencies, "lost": lost, "hops": hops}))


def child_measure_open(host: str, port: int, count: int, interval: float) -> None:
    """Open loop: a report every ``interval`` on a fixed schedule, answers matched by
    value; print the latencies (ms) and the count of reports never answered."""
    lock = threading.Lock()
    pending: dict[int, tuple[int, float]] = {}
    latencies: list[float] = []

    def on_message(c: Any, u: Any, message: Any) -> None:
        arrived = time.perf_counter()
        value = json.loads(message.payload).get("brightness")
        with lock:
            sent = pending.pop(value, None)
        if sent is not None and sent[0] >= WARMUP:
            latencies.append((arrived - sent[1]) * 1000)

    client = _client(host, port, f"measure-open-{os.getpid()}")
    client.on_message = on_message
    client.subscribe(LAMP_SET, qos=1)
    client.loop_start()
    time.sleep(0.5)
    t0 = time.perf_counter()
    for i in range(count + WARMUP):
        delay = t0 + i * interval - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        with lock:
            pending[10 + i % 200] = (i, time.perf_counter())
        client.publish(SENSOR, _report(i), qos=0)
    deadline = time.perf_counter() + 2.0
    while time.perf_counter() < deadline and len(latencies) < count:
        time.sleep(0.01)
    client.loop_stop()
    print(json.dumps({"latencies": latencies, "lost": count - len(latencies)}))


def child_mirror(host: str, port: int) -> None:
    """The floor: plain paho (defaults, its own thread) mirroring a report into a QoS 1
    /set."""
    client = _client(host, port, "paho-mirror", nodelay=False)

    def on_message(c: Any, u: Any, message: Any) -> None:
        value = json.loads(message.payload)["humidity"]
        c.publish(LAMP_SET, json.dumps({"brightness": value}), qos=1)

    client.on_message = on_message
    client.subscribe(SENSOR, qos=1)
    print("ready", flush=True)
    client.loop_forever()


def split_packets(data: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """The whole MQTT packets at the start of ``data`` (first byte, body), and the rest."""
    packets, pos = [], 0
    while len(data) - pos >= 2:
        length, shift, i = 0, 0, pos + 1
        while i < len(data):
            byte = data[i]
            i += 1
            length |= (byte & 0x7F) << shift
            if byte < 0x80:
                break
            shift += 7
        else:
            break  # the remaining length is not whole yet
        if len(data) < i + length:
            break
        packets.append((data[pos], data[i:i + length]))
        pos = i + length
    return packets, data[pos:]


def child_raw_mirror(host: str, port: int) -> None:
    """The floor of the reaction: a mirror with no library and no work (a blocking raw
    socket, TCP_NODELAY and TCP_QUICKACK, the /set framed by hand), so what is left is
    the broker, the kernel and the measuring client."""
    import socket

    from hadaemon.testing.packets import connect_packet, mqtt_packet, publish_packet

    sock = socket.create_connection((host, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    quickack = getattr(socket, "TCP_QUICKACK", None)
    sock.sendall(connect_packet("raw-mirror"))
    if sock.recv(4)[:1] != b"\x20":
        raise SystemExit("raw mirror: no CONNACK")
    topic = SENSOR.encode()
    sock.sendall(mqtt_packet(0x82, b"\x00\x01" + len(topic).to_bytes(2, "big") + topic + b"\x00"))
    buffer, mid, ready = b"", 1, False
    while True:
        data = sock.recv(65536)
        received = time.monotonic()
        if not data:
            return
        if quickack is not None:
            sock.setsockopt(socket.IPPROTO_TCP, quickack, 1)
        packets, buffer = split_packets(buffer + data)
        for first, body in packets:
            if first == 0x90 and not ready:  # SUBACK
                ready = True
                print("ready", flush=True)
            elif first & 0xF0 == 0x30:
                start = 2 + ((body[0] << 8) | body[1]) + (2 if first & 0x06 else 0)
                value = json.loads(body[start:])["humidity"]
                mid = mid % 65535 + 1
                sock.sendall(publish_packet(LAMP_SET, json.dumps({"brightness": value}).encode(),
                                            first=0x32, mid=mid.to_bytes(2, "big")))
                print(f"hop {received} {time.monotonic()}", flush=True)  # after: off the path


def child_flood(host: str, port: int, count: int) -> None:
    """Publish ``count`` state messages (QoS 0) as fast as the broker takes them: built
    beforehand and written on a raw socket, so the publisher is never the bottleneck."""
    import socket

    from hadaemon.testing.packets import connect_packet, mqtt_packet, publish_packet

    packets = b"".join(publish_packet(SENSOR, json.dumps({
        "battery": 90, "humidity": 40 + (i % 100) / 10, "linkquality": i % 255,
        "pressure": 1000 + i % 7, "temperature": 20 + (i % 50) / 10, "voltage": 3000,
    }).encode()) for i in range(count))
    sock = socket.create_connection((host, port))
    sock.sendall(connect_packet(f"flood-{os.getpid()}"))
    if sock.recv(4)[:1] != b"\x20":
        raise SystemExit("flood: no CONNACK")
    sock.sendall(packets)
    sock.sendall(mqtt_packet(0xE0, b""))  # DISCONNECT
    sock.shutdown(socket.SHUT_WR)
    sock.recv(1)  # the broker closes once it has read everything
    sock.close()


class _Span:
    """First and last arrival (wall clock and process CPU) of a stream of messages."""

    def __init__(self) -> None:
        self.n = 0
        self.first = self.last = self.cpu_first = self.cpu_last = 0.0

    def seen(self) -> None:
        now, cpu = time.perf_counter(), time.process_time()
        if not self.n:
            self.first, self.cpu_first = now, cpu
        self.n += 1
        self.last, self.cpu_last = now, cpu

    def result(self, received: int) -> dict[str, float]:
        spans = max(1, self.n - 1)  # the first message opens the span
        return {"rate": spans / (self.last - self.first),
                "cpu_us": (self.cpu_last - self.cpu_first) / spans * 1e6,
                "received": received}


def child_count(host: str, port: int, count: int) -> None:
    """The ingest floor: a plain paho client (defaults) counting (and parsing) state
    messages until none came for a second."""
    client = _client(host, port, "paho-count", nodelay=False)
    span = _Span()

    def on_message(c: Any, u: Any, message: Any) -> None:
        json.loads(message.payload)
        span.seen()

    client.on_message = on_message
    client.subscribe(SENSOR, qos=0)
    client.loop_start()
    time.sleep(0.3)
    print("ready", flush=True)
    _wait_quiet(lambda: span.n, count)
    client.loop_stop()
    print(json.dumps(span.result(span.n)))


def _wait_quiet(counter: Any, count: int, quiet: float = 1.0) -> None:
    """Until ``count`` arrived, or some did and then none for ``quiet`` seconds."""
    last, since = -1, time.perf_counter()
    while counter() < count:
        time.sleep(0.02)
        if counter() != last:
            last, since = counter(), time.perf_counter()
        elif last > 0 and time.perf_counter() - since > quiet:
            return


# -- the per-hop split of a reaction -----------------------------------------------------

# Where a closed-loop reaction's time goes, each a monotonic timestamp (CLOCK_MONOTONIC,
# one clock for every process of the machine): the sensor's publish, the adapter's
# epoll returning, doRead starting, the socket read (recv and TCP_QUICKACK) done, the
# message reaching the network, the automation's listener called, the /set's send()
# starting and done, the sensor's paho getting it.
HOPS = ("woke", "read", "recv", "message", "listener", "send", "sent")
SEGMENTS = (
    ("sensor publish -> adapter epoll returns (broker in, wake-up)", "publish", "woke"),
    ("epoll returns -> doRead (asyncio, Twisted dispatch)", "woke", "read"),
    ("doRead -> socket read done (recv, quickack)", "read", "recv"),
    ("read -> the PUBLISH is framed out of the buffer", "recv", "message"),
    ("framed -> automation listener (decode, registry, flush)", "message", "listener"),
    ("listener -> send() starts (set, collate, json, framing)", "listener", "send"),
    ("send() (the syscall)", "send", "sent"),
    ("send() done -> sensor gets the /set (broker out, sensor)", "sent", "arrived"),
)


class HopProbes:
    """Timestamps at the hops of a reaction inside the adapter, taken by wrapping the
    methods on the path (in this benchmark's process only; each probe costs ~1 us)."""

    def __init__(self, reactor: Any) -> None:
        from hadaemon.mqtt import transport
        from hadaemon.zigbee import broadcasters

        self.records: list[dict[str, float]] = []
        self._woke = 0.0
        self._current: dict[str, float] | None = None
        self._undo: list[tuple[Any, str, Any]] = []
        now = time.monotonic
        selector = reactor._asyncioEventloop._selector
        select = selector.select

        def timed_select(*a: Any, **k: Any) -> Any:
            events = select(*a, **k)
            self._woke = now()
            return events

        selector.select = timed_select
        self._undo.append((selector, "select", None))

        def wrap(owner: Any, name: str, before: str | None, after: str | None = None) -> None:
            original = getattr(owner, name)

            def probe(*a: Any, **k: Any) -> Any:
                record = self._current
                if before and record is not None and before not in record:
                    record[before] = now()
                result = original(*a, **k)
                if after and record is not None and after not in record:
                    record[after] = now()
                return result

            setattr(owner, name, probe)
            self._undo.append((owner, name, original))

        original_read = transport.PahoSession.doRead

        def do_read(session: Any) -> None:
            self._current = {"woke": self._woke, "read": now()}
            try:
                original_read(session)
            finally:
                record, self._current = self._current, None
                if "message" in record and "sent" in record:
                    self.records.append(record)

        transport.PahoSession.doRead = do_read  # type: ignore[method-assign,assignment]
        self._undo.append((transport.PahoSession, "doRead", original_read))
        wrap(transport._BufferedSocket, "_fill", None, "recv")
        wrap(transport._BufferedSocket, "take_publish", None, "message")
        wrap(broadcasters._ListenerList, "_dispatch", "listener")
        wrap(transport.PahoSession, "_write_own", "send", "sent")

    def remove(self) -> None:
        for owner, name, original in reversed(self._undo):
            if original is None:
                delattr(owner, name)
            else:
                setattr(owner, name, original)


def hop_split(hops: list[list[float]], records: list[dict[str, float]]) -> dict[str, float]:
    """Median ms of each segment, over the reactions matched to an adapter record (the
    first wake-up after the sensor's publish)."""
    import bisect

    records = sorted(records, key=lambda r: r["woke"])
    woken = [r["woke"] for r in records]
    rows: list[dict[str, float]] = []
    for published, arrived in hops:
        i = bisect.bisect_left(woken, published)
        if i < len(records) and records[i]["sent"] < arrived:
            rows.append({**records[i], "publish": published, "arrived": arrived})
    return {label: statistics.median((r[b] - r[a]) * 1000 for r in rows)
            for label, a, b in SEGMENTS if rows} | {"matched": len(rows)}


def mirror_split(hops: list[list[float]], mirror: list[tuple[float, ...]]) -> dict[str, float]:
    """The raw mirror's split: publish -> its read returns, its work, write -> sensor."""
    import bisect

    reads = [m[0] for m in mirror]
    rows = []
    for published, arrived in hops:
        i = bisect.bisect_left(reads, published)
        if i < len(mirror) and mirror[i][1] < arrived:
            rows.append((published, *mirror[i], arrived))
    if not rows:
        return {"matched": 0}
    return {"sensor publish -> mirror's read returns (broker in, wake-up)":
            statistics.median((r[1] - r[0]) * 1000 for r in rows),
            "read -> write done (its work)": statistics.median((r[2] - r[1]) * 1000 for r in rows),
            "write done -> sensor gets the /set (broker out, sensor)":
            statistics.median((r[3] - r[2]) * 1000 for r in rows), "matched": len(rows)}


def print_split(title: str, split: dict[str, float]) -> None:
    print(f"    {title} ({int(split.get('matched', 0))} reactions matched), median ms:")
    for label, value in split.items():
        if label != "matched":
            print(f"      {value:7.3f}  {label}")


# -- brokers and the adapter side ------------------------------------------------------


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
            probes = HopProbes(reactor) if kw.get("hops") else None
            child = spawn(kw["mode"], broker.host, broker.port, kw["count"], kw["interval"])
            while child.poll() is None:
                await deferLater(reactor, 0.05, lambda: None)
            result = json.loads(child.stdout.read())  # type: ignore[union-attr]
            if probes is not None:
                probes.remove()
                result["records"] = probes.records
        else:
            temp = network.find("Living room temp")
            assert temp is not None
            span = _Span()
            sub = bus.subscribe(f"variable/zigbee2mqtt/{temp.peer_id}/0/temperature",
                                lambda _event: span.seen())
            start_count = network.messages_received
            # Wake-ups (doRead calls) in the span: CPU per message is the path's cost plus
            # a wake-up's (epoll, asyncio, recv, quickack) over the messages it read.
            wakeups = [0]
            session_type = type(connection._session)
            original_read = session_type.doRead

            def counted_read(session: Any) -> None:
                if span.n:
                    wakeups[0] += 1
                original_read(session)

            session_type.doRead = counted_read
            child = spawn("flood", broker.host, broker.port, kw["count"])
            last, since = -1, time.perf_counter()
            while child.poll() is None or time.perf_counter() - since < 1.0:
                await deferLater(reactor, 0.05, lambda: None)
                if network.messages_received != last:
                    last, since = network.messages_received, time.perf_counter()
            sub.cancel()
            session_type.doRead = original_read
            result = span.result(network.messages_received - start_count)
            result["per_wakeup"] = span.n / max(1, wakeups[0])
        runtime.stop()
        await network.stop()
        await connection.stop()
        return result

    return run_in_reactor(scenario, timeout=600)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def floor_latency(broker: Any, mode: str, count: int, interval: float,
                  mirror_mode: str = "mirror") -> dict[str, Any]:
    mirror = spawn(mirror_mode, broker.host, broker.port)
    assert mirror.stdout is not None and mirror.stdout.readline().strip() == "ready"
    try:
        child = spawn(mode, broker.host, broker.port, count, interval)
        out, _ = child.communicate()
        result = dict(json.loads(out))
    finally:
        mirror.terminate()
        rest, _ = mirror.communicate()
    # the raw mirror's own times (read, written): the hops on either side of it
    result["mirror"] = [tuple(map(float, line.split()[1:])) for line in rest.splitlines()
                        if line.startswith("hop ")]
    return result


def floor_ingest(broker: Any, count: int) -> dict[str, float]:
    counter = spawn("count", broker.host, broker.port, count)
    assert counter.stdout is not None and counter.stdout.readline().strip() == "ready"
    spawn("flood", broker.host, broker.port, count).wait()
    out = counter.stdout.read()
    counter.wait()
    return dict(json.loads(out))


def _best(runs: list[dict[str, float]]) -> dict[str, float]:
    """The best rate and the least CPU of the runs (others' load only ever slows)."""
    best = min(runs, key=lambda r: r["cpu_us"])
    return {"rate": max(r["rate"] for r in runs), "cpu_us": best["cpu_us"],
            "received": min(r["received"] for r in runs),
            "per_wakeup": best.get("per_wakeup", 0.0)}


def _latency(label: str, ours: dict[str, Any], base: dict[str, Any], raw: dict[str, Any]) -> str:
    def one(r: dict[str, Any]) -> str:
        values = r["latencies"]
        if not values:
            return "no answers"
        return (f"p50 {statistics.median(values):6.2f} ms  p99 {percentile(values, 99):6.2f} ms"
                f"  lost {r['lost']:3d}")

    return (f"  reaction {label:6s} hadaemon {one(ours)}   plain paho {one(base)}\n"
            f"  {'':15s}raw mirror (the floor: broker, kernel, sensor) {one(raw)}")


def _load() -> str:
    """The 1-minute load average: figures from a shared machine need it beside them."""
    return f"{os.getloadavg()[0]:.1f}"


def bench_broker(name: str, args: argparse.Namespace) -> None:
    broker = stock_broker(BROKERS[name])
    with broker:
        config = broker.config_path.read_text().strip().splitlines()
        print(f"\nmosquitto '{name}', its whole config: " + "; ".join(config)
              + f"   (load average {_load()})")
        ingests, floors = [], []
        for _ in range(0 if args.latency_only else args.repeat):
            # alternately, so both see the same machine
            ingests.append(run_adapter(broker, "ingest", count=args.messages))
            floors.append(floor_ingest(broker, args.messages))
        if ingests:
            ingest, floor = _best(ingests), _best(floors)
            print(f"  ingest   hadaemon {ingest['rate']:8.0f} msg/s {ingest['cpu_us']:5.1f} us "
                  f"CPU/msg ({ingest['per_wakeup']:.1f} messages per wake-up; "
                  f"{ingest['received']} of {args.messages} arrived)   plain paho "
                  f"{floor['rate']:8.0f} msg/s {floor['cpu_us']:5.1f} us CPU/msg "
                  f"({floor['received']} arrived)   ratio {ingest['rate'] / floor['rate']:.2f}")
        for label, mode in (("closed", "measure"), ("open", "measure_open")):
            ours = run_adapter(broker, "latency", mode=mode, count=args.reactions,
                               interval=args.interval)
            base = floor_latency(broker, mode, args.reactions, args.interval)
            raw = floor_latency(broker, mode, args.reactions, args.interval, "raw_mirror")
            print(_latency(label, ours, base, raw))
            if args.hops and mode == "measure":
                probed = run_adapter(broker, "latency", mode=mode, count=args.reactions,
                                     interval=args.interval, hops=True)
                values = probed["latencies"]
                print(f"  per-hop split, closed loop, a run of its own with the probes in "
                      f"(p50 {statistics.median(values):.2f} ms, "
                      f"p99 {percentile(values, 99):.2f} ms):")
                print_split("hadaemon", hop_split(probed["hops"], probed["records"]))
                print_split("raw mirror", mirror_split(raw["hops"], raw["mirror"]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--reactions", type=int, default=300)
    parser.add_argument("--interval", type=float, default=0.02,
                        help="seconds between sensor reports (< 40 ms triggers the stall)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="ingest runs per side; the best is printed")
    parser.add_argument("--hops", action="store_true",
                        help="also print where a closed-loop reaction's time goes, hop by "
                        "hop (an extra run with probes), next to the raw mirror's")
    parser.add_argument("--latency-only", action="store_true", help="skip the ingest runs")
    parser.add_argument("--brokers", default="stock,tuned",
                        help=f"comma-separated, of {', '.join(BROKERS)}")
    args = parser.parse_args()
    from hadaemon.testing import find_mosquitto

    version = subprocess.run([find_mosquitto() or "mosquitto", "-h"], capture_output=True,
                             text=True, check=False).stdout.splitlines()[:1]
    print(f"hadaemon zigbee benchmark: python {sys.version.split()[0]}, "
          f"{os.cpu_count()} cores, {' '.join(version)}, {args.messages} state messages, "
          f"(best of {args.repeat} runs each), {args.reactions} reactions "
          f"{args.interval * 1000:.0f} ms apart")
    for name in args.brokers.split(","):
        bench_broker(name.strip(), args)
    print(f"\nload average at the end: {_load()}")


if __name__ == "__main__":
    modes = ("measure", "measure_open", "mirror", "raw_mirror", "flood", "count")
    if len(sys.argv) > 1 and sys.argv[1] in modes:
        mode, host, port, *rest = sys.argv[1:]
        if mode == "measure":
            child_measure(host, int(port), int(rest[0]), float(rest[1]))
        elif mode == "measure_open":
            child_measure_open(host, int(port), int(rest[0]), float(rest[1]))
        elif mode == "mirror":
            child_mirror(host, int(port))
        elif mode == "raw_mirror":
            child_raw_mirror(host, int(port))
        elif mode == "flood":
            child_flood(host, int(port), int(rest[0]))
        else:
            child_count(host, int(port), int(rest[0]))
    else:
        main()
