"""Who may say what: the documented Mosquitto ACL refuses a host that publishes on
another host's topics with its own credentials; without an ACL the daemons drop claims
that do not match the topic they came on."""

from __future__ import annotations

import threading
from typing import Any

import paho.mqtt.client as mqtt

from hadaemon.testing import Broker
from hadaemon.testing.client import make_client
from tests.federation.conftest import Site
from tests.federation.scenario import SITE


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
