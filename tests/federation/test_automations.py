"""A pyziggy-style automation on a host without the Zigbee stick, through real daemons.

``pi-a`` has the stick (the zigbee2mqtt simulator and its adapter); ``pi-b`` runs an
automation (like etc/automations/hall_lights.py) with a zigbee2mqtt adapter of its own
that reads the same zigbee2mqtt over the broker (shared, or bridged with the base topic
bridged too), and ``exclude_sources = ["zigbee2mqtt"]``; ``pi-c`` has neither. The hall
motion sensor's report reaches the automation on B, whose ``set()`` switches the lamp
that A's simulator plays. No registry shows a zigbee device twice: B has its own and no
mirrors of A's, C mirrors them once (from A, not B), and B still mirrors A's other
devices (its system variables).
"""

from __future__ import annotations

import json
import pathlib
import re
import time
from typing import Any

import pytest

from hadaemon.testing import Broker
from hadaemon.testing.waiting import poll_until
from tests.federation.conftest import Host, Site, with_zigbee

PLUGINS = str(pathlib.Path(__file__).parent / "plugins")
MOTION = "zigbee2mqtt/Hall motion"
LAMP = "zigbee2mqtt/Hallway Hue"

AUTOMATION = '''\
"""On pi-b, without the stick: the hall light follows the hall's motion sensor."""

from typing import Any

from pyziggy_autogenerate.available_devices import AvailableDevices

devices: Any = AvailableDevices()


def on_motion() -> None:
    occupied = bool(devices.hall_motion.occupancy.get())
    devices.hallway_hue.state.set(occupied)
    print(f"automation on pi-b: hall occupied {occupied}, Hallway Hue set", flush=True)


def on_lamp() -> None:
    print(f"automation on pi-b sees Hallway Hue {devices.hallway_hue.state.get()}",
          flush=True)


def on_connect() -> None:
    devices.hall_motion.occupancy.add_listener(on_motion)
    devices.hallway_hue.state.add_listener(on_lamp)
    print("automation on pi-b connected", flush=True)


devices.on_connect.add_listener(on_connect)
'''

LISTED = re.compile(r"fedprobe devices: (\[.*\])$", re.MULTILINE)
ADDED = re.compile(r"fedprobe saw device added (\S+) \d+ '([^']*)'")


def registry_of(host: Host) -> list[tuple[str, str]]:
    """The host's registry as fedprobe last listed it: (source, name) of every device."""
    listed = LISTED.findall(host.output())
    return [tuple(d) for d in json.loads(listed[-1])] if listed else []


def names_of(devices: list[tuple[str, str]], source: str) -> list[str]:
    return sorted(name for src, name in devices if src == source)


def probe(sections: dict[str, Any]) -> dict[str, Any]:
    """fedprobe listing the host's registry every 0.2 s and logging every device added."""
    daemon = sections.setdefault("daemon", {})
    daemon["plugin_dirs"] = [PLUGINS]
    daemon["plugins"] = [*daemon.get("plugins", []), "fedprobe"]
    sections["fedprobe"] = {"list_every": 0.2, "watch": ["device/+/+/added",
                                                        "variable/zigbee2mqtt/+/0/state"]}
    return sections


@pytest.mark.parametrize("layout", ["one broker", "bridged brokers"])
def test_an_automation_on_another_host_switches_the_sticks_lamp(
    site_factory: Site, layout: str
) -> None:
    site = site_factory
    if layout == "one broker":
        first = second = site.broker()
    else:  # B alone on the second broker: zigbee2mqtt's topics cross the bridge too
        first, second = site.bridged_brokers(also=["zigbee2mqtt"])
    brokers: dict[str, Broker] = {"pi-a": first, "pi-b": second, "pi-c": first}
    a = site.host("pi-a", first, sections=probe(with_zigbee({"daemon": {}})))
    b = site.host("pi-b", second, files={"automation.py": AUTOMATION}, sections=probe({
        "daemon": {"plugins": ["zigbee2mqtt"]},
        "zigbee2mqtt": {"automations": ["automation.py"], "typecheck": False},
        # (a settle delay long enough for B's adapter to list the devices on a loaded
        # machine: A's zigbee2mqtt descriptions wait for it)
        "federation": {"exclude_sources": ["zigbee2mqtt"], "settle_delay": 3.0}}))
    c = site.host("pi-c", brokers["pi-c"], sections=probe({"daemon": {}}))
    for host in (a, b, c):
        host.start()
    b.wait_for("automation on pi-b connected")

    # Someone in the hall (the sensor's report, on A's broker): B's automation sets the
    # lamp, A's simulator switches it and reports, A's registry has it on.
    lamp_reports = site.client(first)
    lamp_reports.subscribe(LAMP)
    sensor = site.client(first)
    deadline = time.monotonic() + 90
    while "hall occupied True" not in b.output():  # (B's adapter may still be subscribing)
        assert time.monotonic() < deadline, "the motion report never reached pi-b"
        sensor.publish(MOTION, json.dumps({"occupancy": True, "battery": 90}))
        for _ in range(100):  # up to 2 s for this report, then another
            if "hall occupied True" in b.output():
                break
            time.sleep(0.02)

    def lamp_on() -> bool:
        return any(json.loads(m.payload).get("state") == "ON" for m in lamp_reports.pending()
                   if m.topic == LAMP)

    poll_until(lamp_on, 30, "the simulator's Hallway Hue reported ON")
    a.wait_for("state=True")
    b.wait_for("automation on pi-b sees Hallway Hue True")
    # and off again
    sensor.publish(MOTION, json.dumps({"occupancy": False, "battery": 90}))
    b.wait_for("automation on pi-b sees Hallway Hue False")
    a.wait_for("state=False")

    # Every registry of the site, once it settled: each zigbee device once.
    def settled() -> bool:
        on_a, on_b, on_c = registry_of(a), registry_of(b), registry_of(c)
        zigbee = names_of(on_a, "zigbee2mqtt")
        return ("Hallway Hue" in zigbee and names_of(on_b, "zigbee2mqtt") == zigbee
                and names_of(on_c, "zigbee2mqtt@pi-a") == zigbee
                and ("system@pi-a", "pi-a system variables") in on_b
                and ("system@pi-b", "pi-b system variables") in on_c)

    poll_until(settled, 60, "B with its own zigbee devices, C with A's mirrored")
    on_a, on_b, on_c = registry_of(a), registry_of(b), registry_of(c)
    zigbee = names_of(on_a, "zigbee2mqtt")
    assert len(zigbee) == len(set(zigbee)) > 15, zigbee  # the sample network, bridge included
    assert names_of(on_b, "zigbee2mqtt@pi-a") == []  # no mirror of what B has itself ...
    assert not [added for added in ADDED.findall(b.output())  # ... not even at its start
                if added[0] == "zigbee2mqtt@pi-a"]
    assert names_of(on_c, "zigbee2mqtt@pi-b") == []  # B publishes none of them
    assert names_of(on_c, "zigbee2mqtt") == []
    for host in (c, b, a):
        assert host.stop() == 0, host.output()[-4000:]
        assert "Traceback" not in host.output(), host.output()[-6000:]
