"""Issue 15's scenario across three real daemons: A's zigbee sensor reaches a node's
``eventHandler`` on B, whose ``setValue`` switches the lamp on C, whose service sends to a
node on A; on one Mosquitto, and on two joined by a Mosquitto bridge."""

from __future__ import annotations

import json
import time

import pytest

from hadaemon.testing import Broker
from tests.federation.conftest import Host, Site
from tests.federation.scenario import READY, SENSOR, scenario_sections

LAMP_ON = "a_sink got {'lamp': True} from lampnote"
LAMP_OFF = "a_sink got {'lamp': False} from lampnote"


def start_scenario(site: Site, brokers: dict[str, Broker]) -> dict[str, Host]:
    """The three hosts on their brokers, started, their user code ready."""
    hosts = {}
    for name, parts in scenario_sections().items():
        hosts[name] = site.host(name, brokers[name], sections=parts["sections"],
                                files=parts["files"])
    for name in ("pi-c", "pi-a", "pi-b"):
        hosts[name].start()
    for name, host in hosts.items():
        host.wait_for(READY[name])
    return hosts


def report_humidity_until(site: Site, broker: Broker, host: Host, expected: str,
                          start: float, timeout: float = 90.0) -> float:
    """Send sensor reports (a new value each time: only changes travel) until ``host``
    printed ``expected``; the remote lamp may not be mirrored on B yet at first.
    Returns the next value to send."""
    sensor = site.client(broker)
    value = start
    deadline = time.monotonic() + timeout
    while expected not in host.output():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {expected!r} in {host.name}'s output in {timeout} s")
        sensor.publish(SENSOR, json.dumps({"humidity": value, "temperature": 21.0}))
        value += 0.5 if start > 50 else -0.5
        for _ in range(100):  # up to 2 s for this report's walk, then a new report
            if expected in host.output():
                break
            time.sleep(0.02)
    return value


def walk(site: Site, brokers: dict[str, Broker], hosts: dict[str, Host]) -> None:
    a, b, c = hosts["pi-a"], hosts["pi-b"], hosts["pi-c"]
    report_humidity_until(site, brokers["pi-a"], a, LAMP_ON, 60.0)
    # B's node got A's sensor through the federation, as zigbee2mqtt@pi-a ...
    assert "from zigbee2mqtt@pi-a -> lamp True" in b.output()
    # ... its setValue switched C's lamp, and its wire reached C's service by an id that
    # only C has (no @host), the node's address with its host as the sender.
    c.wait_for("lampnote seen {'payload': {'humidity': ")
    assert "'lamp': True}, 'source': 'b_relay'} from node:b_relay@pi-b" in c.output()
    report_humidity_until(site, brokers["pi-a"], a, LAMP_OFF, 40.0)
    assert "-> lamp False" in b.output()


def stop_cleanly(hosts: dict[str, Host]) -> None:
    for host in hosts.values():
        assert host.stop() == 0, host.output()[-4000:]
        assert "Traceback" not in host.output(), host.output()[-6000:]


@pytest.mark.parametrize("layout", ["one broker", "bridged brokers"])
def test_sensor_on_a_node_on_b_lamp_on_c_service_on_c_to_node_on_a(
    site_factory: Site, layout: str
) -> None:
    site = site_factory
    if layout == "one broker":
        broker = site.broker()
        brokers = {"pi-a": broker, "pi-b": broker, "pi-c": broker}
    else:  # A and B on the first, C on the second: every hop crosses the bridge
        first, second = site.bridged_brokers()
        brokers = {"pi-a": first, "pi-b": first, "pi-c": second}
    hosts = start_scenario(site, brokers)
    walk(site, brokers, hosts)
    stop_cleanly(hosts)
