"""Who may say what: the documented Mosquitto ACL refuses a host that publishes on
another host's topics with its own credentials; without an ACL the daemons drop claims
that do not match the topic they came on."""

from __future__ import annotations

import pathlib
import threading
from typing import Any

import paho.mqtt.client as mqtt

from hadaemon import values
from hadaemon.testing import Broker
from hadaemon.testing.client import make_client
from hadaemon.testing.waiting import poll_until
from tests.federation.conftest import Host, Site, with_zigbee
from tests.federation.scenario import SENSOR, SITE, TALLY


class Mqtt5:
    """A plain MQTT 5 client: Mosquitto answers a QoS 1 publish the ACL refuses with the
    reason code 0x87 (not authorized) under MQTT 5 (under 3.1.1 it drops it silently)."""

    def __init__(self, broker: Broker, user: str, password: str) -> None:
        self.client = make_client(broker, username=user, password=password,
                                  protocol=mqtt.MQTTv5)
        self._acks: dict[int, str] = {}
        self._cond = threading.Condition()
        self.client.on_publish = self._on_publish
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def _on_publish(self, client: Any, userdata: Any, mid: int, rc: Any, props: Any) -> None:
        with self._cond:
            self._acks[mid] = str(rc) if rc.is_failure else "accepted"
            self._cond.notify_all()

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> str:
        """The broker's answer to a QoS 1 publish: "accepted" (success, or no
        subscriber) or the refusal ("Not authorized")."""
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        with self._cond:
            if not self._cond.wait_for(lambda: info.mid in self._acks, 30):
                raise TimeoutError(f"no PUBACK for {topic}")
            return self._acks.pop(info.mid)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_the_acl_lets_a_host_publish_its_own_topics_and_requests_only(
    site_factory: Site,
) -> None:
    site = site_factory
    broker = site.acl_broker(["pi-a", "pi-b", "pi-c"])
    intruder = Mqtt5(broker, "pi-b", site.passwords["pi-b"])
    try:
        # Its own state, presence and records; requests to others and answers to
        # others, as itself.
        for own in ("status", "device/4", "value/4/0/state", "event/4/0/action",
                    "devices", "info/endpoints"):
            assert intruder.publish(f"{SITE}/pi-b/{own}", b"x") == "accepted", own
        assert intruder.publish(f"{SITE}/pi-c/req/pi-b", b"x") == "accepted"
        assert intruder.publish(f"{SITE}/pi-a/resp/pi-b", b"x") == "accepted"
        # Anything of another host: its state, presence, records, requests in its name,
        # answers in its name.
        for forged in ("pi-a/status", "pi-a/device/4", "pi-a/value/4/0/state",
                       "pi-a/event/4/0/action", "pi-a/devices", "pi-a/info/endpoints",
                       "pi-c/req/pi-a", "pi-c/resp/pi-a", "pi-a/req/pi-c"):
            answer = intruder.publish(f"{SITE}/{forged}", b"x", retain=True)
            assert answer == "Not authorized", forged
        # Only the host with the stick writes zigbee2mqtt's topics.
        assert intruder.publish("zigbee2mqtt/Living room temp", b"{}") == "Not authorized"
    finally:
        intruder.close()
    owner = Mqtt5(broker, "pi-a", site.passwords["pi-a"])
    try:
        assert owner.publish("zigbee2mqtt/Living room temp", b"{}") == "accepted"
    finally:
        owner.close()


PLUGINS = str(pathlib.Path(__file__).parent / "plugins")


def tally_site(site: Site, broker: Broker) -> tuple[Host, Host]:
    """A (zigbee; its probe sends to C's tally on each humidity report) and C (tally)."""
    a = site.host("pi-a", broker, sections=with_zigbee({
        "daemon": {"plugin_dirs": [PLUGINS], "plugins": ["fedprobe"]},
        "fedprobe": {"trigger": "variable/zigbee2mqtt/+/0/humidity",
                     "send_to": ["service:tally_py@pi-c/add"]},
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
    a.wait_for("federation: pi-c has 4 node/service endpoint(s)")  # tally + built-ins
    return a, c


def forged_request(claimed: str, seq: int, *, sender: str | None = None) -> bytes:
    """A bus.send request to C's tally as host ``claimed`` writes one."""
    body = {"id": f"forged-{seq}", "to": "service:tally_py/add",
            "from": sender or f"fedprobe:a@{claimed}", "msg": {"seq": seq}}
    return values.pack({"v": 1, "host": claimed, "id": f"r-{seq}", "kind": "bus.send",
                        "body": body})


def tallied(c: Host) -> list[str]:
    path = c.directory / "tally.out"
    return path.read_text().split() if path.exists() else []


def test_under_the_acl_the_site_works_and_an_impersonator_is_refused(
    site_factory: Site,
) -> None:
    site = site_factory
    broker = site.acl_broker(["pi-a", "pi-b", "pi-c"])
    a, c = tally_site(site, broker)  # presence, records, requests, answers: all allowed
    sensor = site.client(broker)      # (the probe user: zigbee2mqtt's side)
    sensor.publish(SENSOR, '{"humidity": 50}')
    poll_until(lambda: tallied(c) == ["0"], 60, "the first command")
    # pi-b's credentials, pi-a's topics: a request in A's name, A's presence, A's values.
    intruder = Mqtt5(broker, "pi-b", site.passwords["pi-b"])
    try:
        assert intruder.publish(f"{SITE}/pi-c/req/pi-a",
                                forged_request("pi-a", 99)) == "Not authorized"
        assert intruder.publish(f"{SITE}/pi-a/status", b'{"state": "offline"}',
                                retain=True) == "Not authorized"
        assert intruder.publish(f"{SITE}/pi-a/devices", b"", retain=True) == "Not authorized"
    finally:
        intruder.close()
    # A is still online for C and its next command goes through; the forged one never came.
    sensor.publish(SENSOR, '{"humidity": 51}')
    poll_until(lambda: tallied(c) == ["0", "1"], 60, "the second command")
    assert "host pi-a is offline" not in c.output()
    for host in (a, c):
        assert host.stop() == 0, host.output()[-4000:]


def test_without_an_acl_the_daemons_drop_mismatched_claims(site_factory: Site) -> None:
    site = site_factory
    broker = site.broker()
    a, c = tally_site(site, broker)
    forger = site.client(broker)
    forger.subscribe(f"{SITE}/pi-a/resp/pi-c")
    # A payload that claims pi-b on a topic of pi-a: dropped with a warning, unanswered.
    forger.publish(f"{SITE}/pi-c/req/pi-a", forged_request("pi-b", 98))
    c.wait_for("claims to come from host 'pi-b', but arrived on a topic of host 'pi-a'")
    # A request of pi-a in the name of a sender on pi-b: refused, answered as an error.
    forger.publish(f"{SITE}/pi-c/req/pi-a",
                   forged_request("pi-a", 97, sender="fedprobe:a@pi-b"))
    answer = values.unpack(bytes(forger.expect(f"{SITE}/pi-a/resp/pi-c", timeout=30).payload))
    assert answer["id"] == "r-97" and answer["ok"] is False, answer
    assert "is not on 'pi-a', the host the request came from" in answer["error"]["message"]
    # Neither was applied; a real command still is.
    site.client(broker).publish(SENSOR, '{"humidity": 50}')
    poll_until(lambda: tallied(c) == ["0"], 60, "A's command")
    for host in (a, c):
        assert host.stop() == 0, host.output()[-4000:]
