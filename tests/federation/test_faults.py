"""Hosts and brokers that fail, through real daemons and a real Mosquitto:

- ``kill -9`` of host B: A and C keep working, B's devices turn unavailable on both,
  sends to B fail at once (HostOffline, not a timeout); B restarted: its devices are
  available again everywhere, with their values;
- the broker restarted during a stream of QoS 1 commands from A to C: none lost, none
  applied twice (those sent while the broker said C was offline are refused at once).
"""

from __future__ import annotations

import json
import pathlib
import re
import signal
import time
from typing import Any

from hadaemon.testing.waiting import poll_until
from tests.federation.conftest import KEEPALIVE, Host, Site, with_zigbee
from tests.federation.scenario import PONG, SENSOR, TALLY

PLUGINS = str(pathlib.Path(__file__).parent / "plugins")
WATCH = ["variable/+/+/0/available", "variable/demo@pi-b/+/0/temperature"]


def pong_service(sections: dict[str, Any]) -> dict[str, Any]:
    sections["daemon"]["plugins"].append("services")
    sections["services"] = {"directories": ["services"], "service": {"Pong": {}}}
    return sections


def outcomes(host: Host) -> list[str]:
    path = host.directory / "probe.out"
    return path.read_text().splitlines() if path.exists() else []


def round_outcomes(host: Host, first_seq: int, last_seq: int) -> dict[str, str]:
    """address -> outcome line of the messages numbered first_seq..last_seq."""
    found = {}
    for line in outcomes(host):
        _, seq, address, *_ = line.split(" ")
        if first_seq <= int(seq) <= last_seq:
            found[f"{address} {seq}"] = line
    return found


def availability(host: Host, source: str) -> dict[int, bool]:
    """The last ``available`` the host's probe saw per peer of ``source``."""
    seen: dict[int, bool] = {}
    pattern = re.compile(rf"fedprobe saw {re.escape(source)} (\d+) available=(True|False)")
    for match in pattern.finditer(host.output()):
        seen[int(match.group(1))] = match.group(2) == "True"
    return seen


class ThreeHosts:
    """A (zigbee; its probe pings B's and C's Pong on each humidity report and watches
    availability), B (demo devices, Pong), C (Pong, watching), all started and ready."""

    def __init__(self, site: Site) -> None:
        broker = site.broker()
        self.a = site.host("pi-a", broker, sections=with_zigbee({
            "daemon": {"plugin_dirs": [PLUGINS], "plugins": ["fedprobe"]},
            "fedprobe": {"trigger": "variable/zigbee2mqtt/+/0/humidity",
                         "send_to": ["service:pong_py@pi-b/ping",
                                     "service:pong_py@pi-c/ping"],
                         "watch": WATCH},
        }))
        self.b = site.host("pi-b", broker, sections=pong_service({
            "daemon": {"plugins": ["demo"]},
            "demo": {"interval": 0.5, "follow": False},
        }), files={"services/Pong.py": PONG})
        self.c = site.host("pi-c", broker, sections=pong_service({
            "daemon": {"plugin_dirs": [PLUGINS], "plugins": ["fedprobe"]},
            "fedprobe": {"watch": WATCH},
        }), files={"services/Pong.py": PONG})
        for host in (self.a, self.b, self.c):
            host.start()
        self.b.wait_for("pong ready")
        self.c.wait_for("pong ready")
        self.a.wait_for("zigbee2mqtt: device Garden 2ch")
        self.sensor = site.client(broker)
        # B's devices (three demo devices) are on A and C, available.
        for host in (self.a, self.c):
            poll_until(lambda h=host: len(availability(h, "demo@pi-b")) == 3  # type: ignore[misc]
                       and all(availability(h, "demo@pi-b").values()), 60,
                       f"B's demo devices available on {host.name}")
        self.before = {h.name: availability(h, "demo@pi-b") for h in (self.a, self.c)}

    def ping_round(self, humidity: float, first: int) -> dict[str, str]:
        """One report: A pings B and C; their outcomes (address seq -> line)."""
        self.sensor.publish(SENSOR, json.dumps({"humidity": humidity}))
        poll_until(lambda: len(round_outcomes(self.a, first, first)) == 2, 60,
                   f"both outcomes of seq {first}")
        return round_outcomes(self.a, first, first)

    def b_unavailable_everywhere(self) -> None:
        for host in (self.a, self.c):
            poll_until(lambda h=host: not any(availability(h, "demo@pi-b").values()),  # type: ignore[misc]
                       60, f"B's devices unavailable on {host.name}")
            assert set(availability(host, "demo@pi-b")) == set(self.before[host.name])

    def b_available_everywhere(self) -> None:
        for host in (self.a, self.c):  # same peer ids
            poll_until(lambda h=host: all(availability(h, "demo@pi-b").values()),  # type: ignore[misc]
                       60, f"B's devices available again on {host.name}")
            assert set(availability(host, "demo@pi-b")) == set(self.before[host.name])


def test_kill_9_of_b_then_its_restart(site_factory: Site) -> None:
    hosts = ThreeHosts(site_factory)
    a, b, c, ping_round = hosts.a, hosts.b, hosts.c, hosts.ping_round
    first = ping_round(40.0, 0)
    assert all(line.startswith("ok ") for line in first.values()), first
    b.wait_for("pong 0 from fedprobe:a@pi-a")
    c.wait_for("pong 0 from fedprobe:a@pi-a")

    b.kill()
    # Unavailable on A and C: the broker's last will (the socket closed).
    hosts.b_unavailable_everywhere()
    second = ping_round(41.0, 1)
    to_b, to_c = (second[f"service:pong_py@{h}/ping 1"] for h in ("pi-b", "pi-c"))
    assert to_c.startswith("ok 1"), to_c               # A and C keep working
    assert to_b.startswith("fail 1"), to_b
    assert " HostOffline: host 'pi-b' is offline" in to_b, to_b  # at once: no timeout
    c.wait_for("pong 1 from fedprobe:a@pi-a")

    b.start()
    b.wait_for("pong ready")
    hosts.b_available_everywhere()
    marker = len(c.output())
    poll_until(lambda: "fedprobe saw demo@pi-b" in c.output()[marker:]
               and "temperature=" in c.output()[marker:], 60, "B's temperature on C again")
    third = ping_round(42.0, 2)
    assert all(line.startswith("ok ") for line in third.values()), third
    b.wait_for("pong 2 from fedprobe:a@pi-a")
    for host in (a, b, c):
        assert host.stop() == 0, host.output()[-4000:]


def test_a_frozen_b_turns_unavailable_within_its_keepalive_and_comes_back(
    site_factory: Site,
) -> None:
    """SIGSTOP: B's socket stays open, so only the broker's keepalive check (1.5 x
    [mqtt].keepalive, 5 s here) publishes its last will."""
    hosts = ThreeHosts(site_factory)
    a, b, c = hosts.a, hosts.b, hosts.c
    assert all(line.startswith("ok ") for line in hosts.ping_round(40.0, 0).values())
    assert b.daemon.proc is not None
    frozen = time.monotonic()
    b.daemon.proc.send_signal(signal.SIGSTOP)
    try:
        hosts.b_unavailable_everywhere()
        print(f"B unavailable on A and C {time.monotonic() - frozen:.1f} s after it froze "
              f"(keepalive {KEEPALIVE} s)")
        second = hosts.ping_round(41.0, 1)
        assert second["service:pong_py@pi-c/ping 1"].startswith("ok 1")
        assert " HostOffline: host 'pi-b' is offline" in second["service:pong_py@pi-b/ping 1"]
    finally:
        b.daemon.proc.send_signal(signal.SIGCONT)
    # Thawed, B finds its link dead, connects again and is back everywhere.
    hosts.b_available_everywhere()
    assert all(line.startswith("ok ") for line in hosts.ping_round(42.0, 2).values())
    for host in (a, b, c):
        assert host.stop() == 0, host.output()[-4000:]


def test_broker_restart_during_commands_loses_none_and_applies_none_twice(
    site_factory: Site,
) -> None:
    site = site_factory
    broker = site.broker(persistent=True)
    count = 300
    a = site.host("pi-a", broker, sections=with_zigbee({
        "daemon": {"plugin_dirs": [PLUGINS], "plugins": ["fedprobe"]},
        "fedprobe": {"trigger": "variable/zigbee2mqtt/+/0/humidity",
                     "send_to": ["service:tally_py@pi-c/add"], "count": count,
                     "pace": 0.01, "watch": ["lifecycle/federation/#"]},
    }))
    c = site.host("pi-c", broker, sections={
        "daemon": {"plugins": ["services"]},
        "services": {"directories": ["services"],
                     "service": {"Tally": {"static": {"path": "tally.out"}}}},
    }, files={"services/Tally.py": TALLY})
    c.start()
    a.start()
    c.wait_for("tally ready")
    a.wait_for("zigbee2mqtt: device Garden 2ch")
    tally = c.directory / "tally.out"

    def applied() -> list[int]:
        return [int(x) for x in tally.read_text().split()] if tally.exists() else []

    sensor = site.client(broker)
    a.wait_for("fedprobe saw federation host-online {'host': 'pi-c'}")
    sensor.publish(SENSOR, json.dumps({"humidity": 50.0}))
    sensor.close()
    poll_until(lambda: len(applied()) >= 30, 60, "the first 30 commands applied")
    broker.restart()  # SIGTERM (mosquitto saves its store), then the same port again
    poll_until(lambda: len(outcomes(a)) == count, 120, "an outcome for every command")
    results = outcomes(a)
    ok = {int(line.split()[1]) for line in results if line.startswith("ok ")}
    refused = [line for line in results if not line.startswith("ok ")]
    print(f"{len(ok)} applied and answered, {len(refused)} refused:", *refused[:5], sep="\n")
    poll_until(lambda: len(applied()) >= len(ok), 30, "every answered command in the tally")
    seen = applied()
    assert len(seen) == len(set(seen)), sorted(x for x in seen if seen.count(x) > 1)
    # Every command answered was applied, once; none applied went unanswered (an answer
    # lost with the broker is asked for again, under the same id, and not applied again).
    assert set(seen) == ok
    # What the broker's stop did refuse: sends while it said C was offline (C's last
    # will, which Mosquitto publishes when it stops), refused at once, never sent.
    for line in refused:
        assert "HostOffline: host 'pi-c' is offline: service:tally_py@pi-c/add not sent" \
            in line, line
    assert len(ok) > count // 2, results
    for host in (a, c):
        assert host.stop() == 0, host.output()[-4000:]
