"""``[federation]``: the site a daemon belongs to and the limits of what it accepts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from hadaemon.config import Float, Int, List, Str
from hadaemon.config.settings import Settings, setting


@dataclass(frozen=True, kw_only=True)
class FederationSettings(Settings):
    section_doc: ClassVar[str] = (
        "Daemons of one site sharing devices and requests over the [mqtt] broker "
        "(docs/federation.md).")

    site: str = setting(Str(
        default="hadaemon", non_empty=True,
        doc="The site: the topic prefix every daemon of one home shares (levels of its own "
        "may be separated by /; no wildcards). This host's presence is the [mqtt] status "
        "topic <site>/<[daemon].name>/status: its default when [mqtt].status_topic is not "
        "set."))
    request_timeout: float = setting(Float(
        default=5.0, min=0.01,
        doc="Seconds a request to another host (a remote write, a command) waits for its "
        "answer before failing with RemoteTimeout."))
    max_payload: int = setting(Int(
        default=256 * 1024, min=1024,
        doc="Largest message (bytes) accepted from or sent to another host; larger ones "
        "are dropped with a warning (received) or refused (sent)."))
    dedup_window: float = setting(Float(
        default=600.0, min=1.0,
        doc="Seconds a request id is remembered, so a redelivered request is not served "
        "twice (its answer is sent again)."))
    settle_delay: float = setting(Float(
        default=5.0, min=0.0,
        doc="Seconds after its first broker connection before this host publishes its "
        "device index and "
        "clears the retained descriptions of devices it no longer has (adapters add their "
        "devices in the meantime), so the others remove them."))
    exclude_sources: list[str] = setting(List(
        Str(non_empty=True), default=[], unique=True,
        doc="Registry sources (adapters) whose devices this host does not publish to the "
        'site, e.g. ["zigbee2mqtt"] on a host whose zigbee2mqtt adapter reads another '
        "host's zigbee2mqtt (that host publishes them). Other hosts' devices of these "
        "sources are mirrored only after settle_delay, once this host's own adapter has "
        "listed its devices (one of its own is never mirrored)."))
    value_qos: int = setting(Int(
        default=0, min=0, max=1,
        doc="QoS of value and event messages. 0: the broker's cheapest path; a host "
        "publishes every value again when its link comes back, so only events sent "
        "during a link drop can be lost. 1: events too survive a drop, at about twice the "
        "cost per value. Descriptions, the index, requests and answers always use 1."))


SCHEMA = FederationSettings.schema()

__all__ = ["SCHEMA", "FederationSettings"]
