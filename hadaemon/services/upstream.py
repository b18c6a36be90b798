"""The ``com`` service's way upstream: an MQTT connection another plugin owns.

The ``mqtt`` plugin (``hadaemon/mqtt/``) provides the daemon's shared MQTT connection;
``context.plugin("mqtt")`` returns it, used through its public face
:class:`hadaemon.mqtt.MqttClient` (here only ``publish`` and ``connected``). Without an
``mqtt`` plugin, ``SubmitMessage`` goes to the bus only.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from hadaemon.bus import Level
from hadaemon.mqtt import MqttClient
from hadaemon.services.reporting import Reporter


def encode_payload(payload: Any) -> bytes | str:
    """bytes and str as they are; anything else as JSON (values JSON lacks as strings)."""
    if isinstance(payload, bytes | str):
        return payload
    return json.dumps(payload, default=str, separators=(",", ":"))


def format_topic(template: str, *, node: str, service: str) -> str:
    """The topic of one message: ``{node}`` and ``{service}`` filled in."""
    return template.format(node=node, service=service)


class Upstream:
    """Publishes ``SubmitMessage`` payloads on the ``mqtt`` plugin's connection, if any."""

    def __init__(
        self,
        lookup: Callable[[], object | None],
        reporter: Reporter,
        *,
        template: str,
        node: str,
        qos: int = 1,
        retain: bool = False,
    ) -> None:
        self._lookup = lookup
        self._reporter = reporter
        self.template = template
        self.node = node
        self.qos = qos
        self.retain = retain
        self._failing = False

    def connection(self) -> MqttClient | None:
        found = self._lookup()
        return found if isinstance(found, MqttClient) else None

    def send(self, service: str, payload: Any) -> Deferred[None] | None:
        """Publish, or None when there is no mqtt plugin; failures are reported once."""
        mqtt = self.connection()
        if mqtt is None:
            return None
        topic = format_topic(self.template, node=self.node, service=service)
        try:
            d = mqtt.publish(topic, encode_payload(payload), qos=self.qos, retain=self.retain)
        except Exception:
            d = Deferred()
            d.errback(Failure())
        return d.addCallbacks(self._published, self._failed, errbackArgs=(topic,))

    def _published(self, _: object) -> None:
        if self._failing:
            self._failing = False
            self._reporter.event("com", "publishing upstream works again", Level.INFO)

    def _failed(self, failure: Failure, topic: str) -> None:
        # One report per outage, not one per message.
        if not self._failing:
            self._failing = True
            self._reporter.event(
                "com", f"publishing upstream on {topic} failed: {failure.getErrorMessage()}"
                " (messages still go to the bus)", Level.WARNING,
            )


__all__ = ["Upstream", "encode_payload", "format_topic"]
