"""``node:``/``service:`` addresses across hosts, through real daemons on a real broker:
ids with ``@host`` and ids only one host has, refusals at once (an unknown or offline
host, an id several hosts have, an endpoint the host does not have), and a request that
arrives twice applied once."""

from __future__ import annotations

import pathlib
import uuid
from typing import Any

from hadaemon import values
from hadaemon.testing.waiting import poll_until
from tests.federation.conftest import Host, Site, with_zigbee
from tests.federation.scenario import PONG, SENSOR, SITE, TALLY

PLUGINS = str(pathlib.Path(__file__).parent / "plugins")

SENDS = {
    "service:tally_py/add": "ok",  # only C has it: no @host needed
    "service:tally_py@pi-c/add": "ok",
    "service:pong_py/ping": "fail AmbiguousDestination: service:pong_py/ping is on several "
                            "hosts (pi-b, pi-c): name one, as <kind>:<id>@<host>/<path>",
    "service:pong_py@pi-z/ping": "fail HostOffline: host 'pi-z' is offline: "
                                 "service:pong_py@pi-z/ping not sent (unknown to this site)",
    "service:nope_py@pi-c/x": "fail UnknownDestination: no destination registered for "
                              "service:nope_py@pi-c/x (host 'pi-c' has no service:nope_py)",
    "node:nowhere/0": "fail UnknownDestination: no destination registered for node:nowhere/0",
    "service:pong_py@pi-a/ping": "fail UnknownDestination: no destination registered for "
                                 "service:pong_py@pi-a/ping",
}


def services(*names: str, files: dict[str, str]) -> dict[str, Any]:
    return {"directories": ["services"], "service": {
        name: ({"static": {"path": "tally.out"}} if name == "Tally" else {})
        for name in names}}


def start_site(site: Site) -> tuple[Host, Host, Host, Any]:
    broker = site.broker()
    a = site.host("pi-a", broker, sections=with_zigbee({
        "daemon": {"plugin_dirs": [PLUGINS], "plugins": ["fedprobe"]},
        "fedprobe": {"trigger": "variable/zigbee2mqtt/+/0/humidity",
                     "send_to": list(SENDS)},
    }))
    b = site.host("pi-b", broker, sections={
        "daemon": {"plugins": ["services"]},
        "services": services("Pong", files={}),
    }, files={"services/Pong.py": PONG})
    c = site.host("pi-c", broker, sections={
        "daemon": {"plugins": ["services"]},
        "services": services("Pong", "Tally", files={}),
    }, files={"services/Pong.py": PONG, "services/Tally.py": TALLY})
    for host in (b, c, a):
        host.start()
    c.wait_for("tally ready")
    b.wait_for("pong ready")
    a.wait_for("zigbee2mqtt: device Garden 2ch")
    # (with the services plugin's own: logger, orchestrator, com)
    a.wait_for("federation: pi-b has 4 node/service endpoint(s)")
    a.wait_for("federation: pi-c has 5 node/service endpoint(s)")
    return a, b, c, broker


def test_addresses_across_hosts_and_their_refusals(site_factory: Site) -> None:
    site = site_factory
    a, b, c, broker = start_site(site)
    site.client(broker).publish(SENSOR, '{"humidity": 50}')
    out = a.directory / "probe.out"
    poll_until(lambda: out.exists() and len(out.read_text().splitlines()) == len(SENDS),
               60, "an outcome for every send")
    lines = {line.split(" ")[2]: line for line in out.read_text().splitlines()}
    for address, expected in SENDS.items():
        line = lines[address]
        if expected == "ok":
            assert line.startswith("ok 0 "), line
        else:
            kind, _, message = expected.partition(" ")
            assert line.startswith(f"{kind} 0 {address} {message} took "), line
    c.wait_for_count("tally", 1)
    assert (c.directory / "tally.out").read_text().split() == ["0", "0"]
    for host in (a, b, c):
        assert host.stop() == 0


def test_a_request_that_arrives_twice_is_applied_once(site_factory: Site) -> None:
    """Two copies of one command (as a sender's retry after a lost answer makes: the same
    body id in two requests) reach C's service once; both are answered alike."""
    site = site_factory
    broker = site.broker()
    c = site.host("pi-c", broker, sections={
        "daemon": {"plugins": ["services"]},
        "services": services("Tally", files={}),
    }, files={"services/Tally.py": TALLY})
    c.start()
    c.wait_for("tally ready")
    # "pi-a" here is the test itself (no ACL on this broker: any client may say so).
    peer = site.client(broker)
    peer.subscribe(f"{SITE}/pi-a/resp/pi-c")
    body = {"id": f"test-{uuid.uuid4().hex[:8]}-1", "to": "service:tally_py/add",
            "from": "fedprobe:a@pi-a", "msg": {"seq": 7}}
    for rid in ("r-1", "r-2"):
        peer.publish(f"{SITE}/pi-c/req/pi-a", values.pack(
            {"v": 1, "host": "pi-a", "id": rid, "kind": "bus.send", "body": body}))
    answers = [values.unpack(bytes(peer.expect(f"{SITE}/pi-a/resp/pi-c", timeout=30).payload))
               for _ in range(2)]
    assert sorted(answer["id"] for answer in answers) == ["r-1", "r-2"]
    assert all(answer["ok"] and answer["result"] == 7 for answer in answers), answers
    assert (c.directory / "tally.out").read_text().split() == ["7"]
    assert c.stop() == 0
