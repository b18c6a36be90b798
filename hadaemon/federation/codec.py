"""The payload of every federation message: a msgpack map in hadaemon's value model
(docs/values.md), versioned and naming the host that sent it.

Every payload is ``{"v": 1, "host": <sender>, ...}``; what else it holds depends on its
topic (docs/federation.md). :func:`decode` refuses (:class:`Refused`) what is too large,
not msgpack, not a map, of another version, or claims a host other than the topic's; the
readers of each kind check their own fields with :func:`field`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hadaemon import values
from hadaemon.federation.errors import PayloadTooLarge, Refused
from hadaemon.registry import Access, ChannelSpec, Device, ValueType, VariableSpec

VERSION = 1
"""The payload version this daemon writes and reads; others are dropped with a warning."""

_TYPES = {t.value: t for t in ValueType}


def encode(host: str, fields: Mapping[str, Any], *, limit: int, what: str) -> bytes:
    """``fields`` with the version and ``host``, packed; :class:`PayloadTooLarge` beyond
    ``limit``, ``UnsupportedValue`` (a TypeError) for a value outside the value model."""
    data = values.pack({"v": VERSION, "host": host, **fields})
    if len(data) > limit:
        raise PayloadTooLarge(what, len(data), limit)
    return data


def decode(topic: str, host: str, payload: bytes, *, limit: int) -> dict[str, Any]:
    """The fields of a payload that arrived on ``topic`` (under ``host``); Refused
    when it cannot be trusted."""
    if len(payload) > limit:
        raise Refused(topic, f"{len(payload)} bytes, more than [federation].max_payload "
                      f"({limit})")
    try:
        message = values.unpack(payload)
    except Exception as exc:
        raise Refused(topic, f"not a msgpack payload ({type(exc).__name__}: {exc})") from None
    if not isinstance(message, dict):
        raise Refused(topic, f"the payload is a {type(message).__name__}, not a map")
    version = message.get("v")
    if version != VERSION:
        raise Refused(topic, f"unknown payload version {version!r} (this daemon reads "
                      f"{VERSION})")
    claimed = message.get("host")
    if claimed != host:
        raise Refused(topic, f"claims to come from host {claimed!r}, but arrived on a topic "
                      f"of host {host!r}", claimed)
    return message


def field(topic: str, message: Mapping[str, Any], name: str, kind: type | tuple[type, ...],
          *, optional: bool = False) -> Any:
    """``message[name]`` if it has type ``kind`` (bool is no int); Refused otherwise."""
    if name not in message:
        if optional:
            return None
        raise Refused(topic, f"no {name!r} field")
    value = message[name]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
        raise Refused(topic, f"field {name!r} is {value!r}, expected "
                      f"{' or '.join(k.__name__ for k in kinds)}")
    return value


# -- device descriptions ---------------------------------------------------------------

def describe(device: Device) -> dict[str, Any]:
    """A local device as the fields of its description (its values travel apart)."""
    channels = []
    for index, channel in sorted(device.channels.items()):
        channels.append({
            "index": index, "name": channel.name, "type": channel.type,
            "variables": [_spec_fields(v.spec) for v in channel.variables.values()],
        })
    return {"peer": device.peer_id, "source": device.source, "key": device.key,
            "name": device.name, "type": device.type, "info": _packable(device.info),
            "channels": channels}


def _spec_fields(spec: VariableSpec) -> dict[str, Any]:
    fields: dict[str, Any] = {"name": spec.name, "type": spec.type.value,
                              "access": int(spec.access)}
    if spec.unit is not None:
        fields["unit"] = spec.unit
    for key, value in (("min", spec.minimum), ("max", spec.maximum), ("step", spec.step)):
        if value is not None:
            fields[key] = value
    if spec.values:
        fields["values"] = _packable(list(spec.values)) or []
    if spec.is_event:
        fields["event"] = True
    if spec.label:
        fields["label"] = spec.label
    if spec.extra:
        fields["extra"] = _packable(dict(spec.extra))
    return fields


def _packable(value: Any) -> Any:
    """``value`` if the value model holds it, else an empty one of its kind (a device's
    free-form info is not worth refusing the device for)."""
    try:
        values.pack(value)
    except (TypeError, ValueError):
        return type(value)() if isinstance(value, dict | list) else None
    return value


def read_channels(topic: str, raw: Any) -> list[ChannelSpec]:
    """The channels of a received description; Refused if any part is malformed."""
    if not isinstance(raw, list):
        raise Refused(topic, "'channels' is not a list")
    channels = []
    seen: set[int] = set()
    for item in raw:
        if not isinstance(item, dict):
            raise Refused(topic, f"a channel is {item!r}, not a map")
        index = field(topic, item, "index", int)
        if index in seen:
            raise Refused(topic, f"channel {index} is described twice")
        seen.add(index)
        variables = field(topic, item, "variables", list)
        specs = [_read_spec(topic, index, v) for v in variables]
        if len({s.name for s in specs}) != len(specs):
            raise Refused(topic, f"channel {index} names a variable twice")
        channels.append(ChannelSpec(
            index, specs, name=field(topic, item, "name", str, optional=True) or "",
            type=field(topic, item, "type", str, optional=True) or ""))
    return channels


def _read_spec(topic: str, channel: int, raw: Any) -> VariableSpec:
    if not isinstance(raw, dict):
        raise Refused(topic, f"a variable of channel {channel} is {raw!r}, not a map")
    name = field(topic, raw, "name", str)
    if not name:
        raise Refused(topic, f"a variable of channel {channel} has an empty name")
    type_name = field(topic, raw, "type", str)
    kind = _TYPES.get(type_name)
    if kind is None:
        raise Refused(topic, f"variable {name!r}: unknown type {type_name!r}")
    access = field(topic, raw, "access", int)
    if not 0 <= access <= int(Access.ALL):
        raise Refused(topic, f"variable {name!r}: access {access} is not 0..7")
    number = (int, float)
    allowed = field(topic, raw, "values", list, optional=True) or []
    extra = field(topic, raw, "extra", dict, optional=True) or {}
    return VariableSpec(
        name, kind, Access(access), unit=field(topic, raw, "unit", str, optional=True),
        minimum=field(topic, raw, "min", number, optional=True),
        maximum=field(topic, raw, "max", number, optional=True),
        step=field(topic, raw, "step", number, optional=True),
        values=tuple(allowed), is_event=bool(field(topic, raw, "event", bool, optional=True)),
        label=field(topic, raw, "label", str, optional=True) or "", extra=extra)


def peers_of(topic: str, raw: Any) -> set[int]:
    """The peer ids of an index message."""
    if not isinstance(raw, list) or not all(
            isinstance(p, int) and not isinstance(p, bool) for p in raw):
        raise Refused(topic, "'peers' is not a list of peer ids")
    return set(raw)


def names_of(raw: Sequence[Any]) -> list[str]:
    return [n for n in raw if isinstance(n, str)]


__all__ = ["VERSION", "decode", "describe", "encode", "field", "names_of", "peers_of",
           "read_channels"]
