"""Service-to-service SubmitAction throughput and latency, against a bare asyncio floor.

Runs the real daemon (services plugin, default settings, the reactor watchdog on) in a
fresh asyncio reactor, with two service files:

- one-way: ``sender_py`` submits N messages to ``receiver_py``; the time runs from the
  first SubmitAction until the receiver handled the last one;
- round trips: ``sender_py`` submits a ping, ``receiver_py`` answers with a SubmitAction to
  ``msg.source``, the sender waits for the pong before the next ping; p50 of each round
  trip's latency;
- the floor, in the same loop: two bare asyncio tasks passing N messages one way through
  an ``asyncio.Queue``, and M ping-pongs through two queues;
- and, to show where the time goes, the bus alone in the same daemon: N ``bus.send`` to
  an endpoint whose handler does nothing, and to one whose handler starts one asyncio task
  per message (what every SubmitAction costs before any service code runs).

Usage: ``python benchmarks/services.py [--messages N] [--round-trips M]``. The original
agent manages about 10 messages per second; the target is >= 100,000 one-way messages/s
and >= 20,000 round trips/s.
"""

from __future__ import annotations

import argparse
import asyncio
import pathlib
import statistics
import tempfile
import textwrap
import time
from typing import Any

from twisted.internet.defer import Deferred

from hadaemon.config import read, validate
from hadaemon.daemon import Daemon
from hadaemon.plugin import Catalog, PluginInfo
from hadaemon.services import ServicesPlugin
from hadaemon.testing import run_in_reactor

SENDER = '''
import asyncio, time
from base_service import CustomService

class Sender(CustomService):
    async def oneway(self, msg):
        count = msg.message[0]
        for i in range(count):
            await self.SubmitAction("receiver_py", "count", i)

    async def roundtrip(self, msg):
        loop = asyncio.get_running_loop()
        latencies = []
        for i in range(msg.message[0]):
            self.waiting = loop.create_future()
            started = time.perf_counter()
            await self.SubmitAction("receiver_py", "ping", i)
            await self.waiting
            latencies.append(time.perf_counter() - started)
        return latencies

    async def pong(self, msg):
        self.waiting.set_result(msg.message[0])
'''

RECEIVER = '''
import time
from base_service import CustomService

class Receiver(CustomService):
    def __init__(self, id, queue, config):
        super().__init__(id, queue, config)
        self.seen = 0
        self.expected = 0

    async def expect(self, msg):
        self.seen, self.expected = 0, msg.message[0]

    async def count(self, msg):
        self.seen += 1
        if self.seen == self.expected:
            await self.SubmitAction("node:bench", "done", time.perf_counter())

    async def ping(self, msg):
        await self.SubmitAction(msg.source, "pong", msg.message[0])
'''


async def bus_floor(bus: Any, messages: int, *, with_task: bool) -> float:
    """Messages/s through the daemon's bus to a no-op endpoint (optionally one task each)."""
    loop = asyncio.get_running_loop()
    count = 0
    finished: Deferred[None] = Deferred()

    async def action() -> None:
        pass

    def handler(address: Any, message: Any) -> Any:
        nonlocal count
        count += 1
        if count == messages:
            finished.callback(None)
        if with_task:
            done: Deferred[None] = Deferred()
            loop.create_task(action()).add_done_callback(lambda _: done.callback(None))
            return done
        return None

    endpoint = f"service:floor_{'task' if with_task else 'sync'}"
    bus.register(endpoint, handler, queue_size=1000, concurrency=100)
    started = time.perf_counter()
    sent = 0
    while sent < messages:
        d = bus.send(f"{endpoint}/x", sent)
        d.addErrback(lambda _: None)
        if d.called:  # the queue is full: let the loop drain it
            await asyncio.sleep(0)
            continue
        sent += 1
    await finished
    return messages / (time.perf_counter() - started)


async def bare_floor(messages: int, round_trips: int) -> tuple[float, float, float]:
    """One-way msgs/s, round trips/s and p50 latency (s) of two bare asyncio tasks."""
    queue: asyncio.Queue[int] = asyncio.Queue(maxsize=1000)

    async def consume() -> None:
        for _ in range(messages):
            await queue.get()

    started = time.perf_counter()
    consumer = asyncio.get_running_loop().create_task(consume())
    for i in range(messages):
        await queue.put(i)
    await consumer
    oneway = messages / (time.perf_counter() - started)

    pings: asyncio.Queue[int] = asyncio.Queue()
    pongs: asyncio.Queue[int] = asyncio.Queue()

    async def echo() -> None:
        for _ in range(round_trips):
            pongs.put_nowait(await pings.get())

    echoer = asyncio.get_running_loop().create_task(echo())
    latencies = []
    started = time.perf_counter()
    for i in range(round_trips):
        t0 = time.perf_counter()
        pings.put_nowait(i)
        await pongs.get()
        latencies.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - started
    await echoer
    return oneway, round_trips / elapsed, statistics.median(latencies)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--round-trips", type=int, default=20_000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        base = pathlib.Path(tmp)
        (base / "services").mkdir()
        (base / "services" / "Sender.py").write_text(textwrap.dedent(SENDER))
        (base / "services" / "Receiver.py").write_text(textwrap.dedent(RECEIVER))
        raw = read(
            {
                "daemon": {"state_dir": "var", "plugins": ["services"]},
                "log": {"level": "warn"},
                "services": {"directories": ["services"],
                             "service": {"Sender": {}, "Receiver": {}}},
            },
            base_dir=base,
        )
        config, errors = validate(raw, {"services": ServicesPlugin.schema})
        if errors:
            raise SystemExit("\n".join(map(str, errors)))
        catalog = Catalog(
            {"services": PluginInfo("services", ServicesPlugin, ServicesPlugin.schema, "bench")}
        )

        async def scenario(reactor: Any) -> dict[str, float]:
            daemon = Daemon(config, reactor, catalog=catalog)
            done: list[Deferred[float]] = []
            daemon.bus.register("node:bench", lambda a, m: done.pop().callback(m))
            daemon.startService()
            await daemon.started
            bus = daemon.bus
            out: dict[str, float] = {}
            for label, count in (("warmup", 20_000), ("oneway", args.messages)):
                await bus.send("service:receiver_py/expect", count)
                finished: Deferred[float] = Deferred()
                done.append(finished)
                started = time.perf_counter()
                await bus.send("service:sender_py/oneway", count)
                out[label] = count / (await finished - started)
            await bus.send("service:sender_py/roundtrip", 2000)  # warm up
            started = time.perf_counter()
            latencies = await bus.send("service:sender_py/roundtrip", args.round_trips)
            out["rt"] = args.round_trips / (time.perf_counter() - started)
            out["p50"] = statistics.median(latencies)
            floor = await asyncio.ensure_future(bare_floor(args.messages, args.round_trips))
            out["floor_oneway"], out["floor_rt"], out["floor_p50"] = floor
            out["bus_sync"] = await bus_floor(bus, args.messages, with_task=False)
            out["bus_task"] = await bus_floor(bus, args.messages, with_task=True)
            await daemon.stopService()
            return out

        r = run_in_reactor(scenario, timeout=600)

    print(f"service-to-service SubmitAction ({args.messages} messages, "
          f"{args.round_trips} round trips):")
    print(f"  one-way:      {r['oneway']:>10,.0f} messages/s   (target >= 100,000)")
    print(f"  round trips:  {r['rt']:>10,.0f} /s            (target >= 20,000)  "
          f"p50 {r['p50'] * 1e6:.1f} us")
    print("bare asyncio floor (two tasks, asyncio.Queue):")
    print(f"  one-way:      {r['floor_oneway']:>10,.0f} messages/s")
    print(f"  round trips:  {r['floor_rt']:>10,.0f} /s                                "
          f"p50 {r['floor_p50'] * 1e6:.1f} us")
    print("the daemon's bus alone (same settings: queue 1000, concurrency 100, watchdog on):")
    print(f"  bus.send, no-op handler:        {r['bus_sync']:>10,.0f} messages/s")
    print(f"  bus.send, one task per message: {r['bus_task']:>10,.0f} messages/s")


if __name__ == "__main__":
    main()
