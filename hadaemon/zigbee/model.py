"""zigbee2mqtt's bridge payloads (``bridge/devices``, ``bridge/groups``) as plain data.

Parsing is tolerant: an element that is not usable is skipped with a problem naming it,
and never costs the rest of the network.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hadaemon.zigbee.exposes import Feature, parse_exposes


@dataclass(frozen=True)
class DeviceInfo:
    """One element of ``bridge/devices``."""

    ieee_address: str
    friendly_name: str
    type: str = ""
    power_source: str = ""
    model: str = ""
    model_id: str = ""
    vendor: str = ""
    description: str = ""
    manufacturer: str = ""
    supported: bool = True
    disabled: bool = False
    interview_state: str = ""
    features: tuple[Feature, ...] = ()

    @property
    def is_coordinator(self) -> bool:
        return self.type == "Coordinator"

    @property
    def battery_powered(self) -> bool:
        return self.power_source.lower() == "battery"

    @property
    def info(self) -> dict[str, Any]:
        """The description kept in the registry device's ``info``."""
        return {
            "ieee_address": self.ieee_address, "type": self.type,
            "power_source": self.power_source, "model": self.model, "vendor": self.vendor,
            "description": self.description, "model_id": self.model_id,
            "supported": self.supported, "disabled": self.disabled,
        }


@dataclass(frozen=True)
class GroupMember:
    ieee_address: str
    endpoint: Any = None


@dataclass(frozen=True)
class GroupInfo:
    """One element of ``bridge/groups`` (groups have no exposes of their own)."""

    id: int
    friendly_name: str
    members: tuple[GroupMember, ...] = ()


@dataclass
class Parsed:
    devices: list[DeviceInfo] = field(default_factory=list)
    groups: list[GroupInfo] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def parse_devices(payload: Any) -> Parsed:
    """Parse ``bridge/devices``; the coordinator is included (``is_coordinator``)."""
    out = Parsed()
    if not isinstance(payload, list):
        out.problems.append(f"bridge/devices is not a list ({type(payload).__name__})")
        return out
    seen_ieee: set[str] = set()
    seen_names: set[str] = set()
    for index, element in enumerate(payload):
        where = f"bridge/devices[{index}]"
        if not isinstance(element, dict):
            out.problems.append(f"{where}: not an object")
            continue
        ieee = element.get("ieee_address")
        name = element.get("friendly_name")
        if not isinstance(ieee, str) or not ieee:
            out.problems.append(f"{where}: no ieee_address")
            continue
        if not isinstance(name, str) or not name:
            out.problems.append(f"{where} ({ieee}): no friendly_name")
            continue
        if ieee in seen_ieee or name in seen_names:
            out.problems.append(f"{where}: duplicate device {name!r} ({ieee}) ignored")
            continue
        seen_ieee.add(ieee)
        seen_names.add(name)
        definition = element.get("definition")
        features: tuple[Feature, ...] = ()
        model = vendor = description = ""
        if isinstance(definition, dict):
            parsed = parse_exposes(definition.get("exposes"), f"device {name!r}")
            features = tuple(parsed.features)
            out.problems.extend(parsed.problems)
            model = _text(definition.get("model"))
            vendor = _text(definition.get("vendor"))
            description = _text(definition.get("description"))
        elif definition is not None:
            out.problems.append(f"device {name!r}: definition is not an object")
        out.devices.append(DeviceInfo(
            ieee_address=ieee,
            friendly_name=name,
            type=_text(element.get("type")),
            power_source=_text(element.get("power_source")),
            model=model,
            model_id=_text(element.get("model_id")),
            vendor=vendor,
            description=description,
            manufacturer=_text(element.get("manufacturer")),
            supported=element.get("supported") is not False,
            disabled=element.get("disabled") is True,
            interview_state=_text(element.get("interview_state")),
            features=features,
        ))
    return out


def parse_groups(payload: Any) -> Parsed:
    out = Parsed()
    if not isinstance(payload, list):
        out.problems.append(f"bridge/groups is not a list ({type(payload).__name__})")
        return out
    seen: set[int] = set()
    for index, element in enumerate(payload):
        where = f"bridge/groups[{index}]"
        if not isinstance(element, dict):
            out.problems.append(f"{where}: not an object")
            continue
        group_id = element.get("id")
        name = element.get("friendly_name")
        if isinstance(group_id, bool) or not isinstance(group_id, int) or group_id in seen:
            out.problems.append(f"{where}: missing or duplicate id {group_id!r}")
            continue
        if not isinstance(name, str) or not name:
            out.problems.append(f"{where}: no friendly_name")
            continue
        seen.add(group_id)
        members = []
        for member in element.get("members") or ():
            if isinstance(member, dict) and isinstance(member.get("ieee_address"), str):
                members.append(GroupMember(member["ieee_address"], member.get("endpoint")))
        out.groups.append(GroupInfo(group_id, name, tuple(members)))
    return out


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""
