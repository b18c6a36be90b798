"""The ``[zigbee2mqtt]`` section, declared once: schema, defaults, docs/config.md and the
typed settings the network runs with all come from :class:`ZigbeeSettings`."""

from __future__ import annotations

import pathlib
from dataclasses import dataclass, field
from typing import ClassVar

from hadaemon.config import Bool, Float, Int, List, Path, Settings, Str, setting

MIB = 1024 * 1024


@dataclass(frozen=True, kw_only=True)
class ZigbeeSettings(Settings):
    """One zigbee2mqtt instance: the validated section (and what code may set besides)."""

    section_doc: ClassVar[str] = (
        "zigbee2mqtt devices in the registry, and pyziggy-style automations."
    )

    mqtt: str = setting(Str(
        default="mqtt", non_empty=True,
        doc="The MQTT connection plugin to use (it must be enabled in "
        "[daemon].plugins; it starts first).",
    ))
    base_topic: str = setting(Str(
        default="zigbee2mqtt", non_empty=True,
        doc="zigbee2mqtt's base topic (its mqtt.base_topic)."))
    qos: int = setting(Int(
        default=1, min=0, max=1,
        doc="QoS of /set and /get messages (1: none lost across reconnects)."))
    initial_query: bool = setting(Bool(
        default=True,
        doc="On the first connect, ask mains-powered devices for their queryable "
        "values (throttled by query_interval).",
    ))
    requery_on_reconnect: bool = setting(Bool(
        default=True, doc="Ask again after a reconnect, to re-sync the state."))
    query_interval: float = setting(Float(
        default=0.25, min=0.0, doc="Seconds between two devices' queries (no flooding)."))
    query_battery_devices: bool = setting(Bool(
        default=False, doc="Also query battery devices (they sleep and rarely answer)."))
    devices_timeout: float = setting(Float(
        default=3.0, min=0.05,
        doc="Seconds to wait for bridge/devices after connecting before automations' "
        "on_connect runs anyway.",
    ))
    request_timeout: float = setting(Float(
        default=10.0, min=0.1, doc="Seconds a bridge/request waits for its response."))
    max_payload: int = setting(Int(
        default=MIB, min=1024,
        doc="Bytes; a bigger message from zigbee2mqtt is ignored (with a warning) "
        "before it is parsed.",
    ))
    max_devices_payload: int = setting(Int(
        default=32 * MIB, min=1024,
        doc="The same for bridge/devices and bridge/groups, which grow with the "
        "network (about 6 KiB per device).",
    ))
    automations: list[pathlib.Path] = setting(List(
        Path(must_exist=True, kind="file"), default=[],
        doc="Automation files (pyziggy style) to run, in this order.",
    ))
    generate: bool = setting(Bool(
        default=False,
        doc="Keep pyziggy_autogenerate/available_devices.py next to each automation "
        "up to date with the live network (rewritten only when it changes).",
    ))
    typecheck: bool = setting(Bool(
        default=True,
        doc="hadaemon check runs mypy on the automations (needs the 'zigbee' extra).",
    ))
    # Not a config key: seconds between repeated warnings of one kind (tests shorten it).
    warn_interval: float = field(default=60.0)


__all__ = ["ZigbeeSettings"]
