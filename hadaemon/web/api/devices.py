"""Devices and their variables: listed as JSON text composed here, read, written."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from hadaemon.registry import (
    UNKNOWN,
    Device,
    RegistryError,
    UnknownChannel,
    UnknownDevice,
    UnknownVariable,
    Variable,
    VariableSpec,
)
from hadaemon.web.api.table import routes
from hadaemon.web.http import ApiError, RawJson, not_found
from hadaemon.web.jsonvalues import dumps, from_json, to_json
from hadaemon.web.routes import Call, Field

if TYPE_CHECKING:
    from hadaemon.web.plugin import WebPlugin


# The device list is composed as JSON text: each variable's description is encoded once
# per spec, and its values by the fast paths of _scalar (benchmarks/api.py: 5,000
# variables built ~10 ms and encoded ~25 ms as dicts).
_DESCRIPTIONS: dict[int, tuple[VariableSpec, str]] = {}


def _description(spec: VariableSpec) -> str:
    """What never changes about a variable, as JSON members, made once per spec."""
    cached = _DESCRIPTIONS.get(id(spec))
    if cached is not None and cached[0] is spec:
        return cached[1]
    out: dict[str, Any] = {
        "name": spec.name, "type": spec.type.value,
        "access": {"read": spec.readable, "write": spec.writable, "query": spec.queryable},
    }
    if spec.unit:
        out["unit"] = spec.unit
    if spec.minimum is not None or spec.maximum is not None:
        out["range"] = {"min": spec.minimum, "max": spec.maximum, "step": spec.step}
    if spec.values:
        out["values"] = to_json(list(spec.values))
    if spec.is_event:
        out["is_event"] = True
    if spec.label:
        out["label"] = spec.label
    if len(_DESCRIPTIONS) > 100_000:  # specs of removed devices: start over
        _DESCRIPTIONS.clear()
    members = dumps(out).decode()[1:-1]
    _DESCRIPTIONS[id(spec)] = (spec, members)
    return members


def _scalar(value: Any) -> str:
    """A value as JSON text (numbers without the encoder's detour)."""
    kind = type(value)
    if kind is float and math.isfinite(value):
        return repr(value)
    if kind is int:
        return str(value)
    if kind is bool:
        return "true" if value else "false"
    if value is None or value is UNKNOWN:
        return "null"
    return dumps(to_json(value)).decode()


def _variable(var: Variable, now: float) -> str:
    value = var.current(now)
    pending = "" if var.pending is UNKNOWN else f',"pending":{_scalar(var.pending)}'
    known = "false" if value is UNKNOWN else "true"
    stamp = "null" if var.timestamp is None else repr(float(var.timestamp))
    return (f'{{{_description(var.spec)},"value":{_scalar(value)},"known":{known},'
            f'"confirmed":{_scalar(var.value)},"timestamp":{stamp}{pending}}}')


def _device(device: Device, now: float) -> str:
    head = dumps({"peer_id": device.peer_id, "source": device.source, "key": device.key,
                  "name": device.name, "type": device.type,
                  "info": to_json(device.info)}).decode()[:-1]
    channels = ",".join(
        f'{{"index":{channel.index},"name":{_scalar(channel.name)},'
        f'"type":{_scalar(channel.type)},"variables":['
        + ",".join(_variable(v, now) for v in channel.variables.values()) + "]}"
        for channel in device.channels.values()
    )
    return f'{head},"channels":[{channels}]}}'


def _find_device(web: WebPlugin, peer_id: int) -> Device:
    try:
        return web.registry.device(peer_id)
    except UnknownDevice:
        raise not_found("device", f"no device {peer_id}") from None


@routes.get("/api/devices", "Every device of every world, with channels and variables",
            tag="devices", query=[Field("source", "string", "only this adapter's devices")])
def devices(web: WebPlugin, call: Call) -> Any:
    now = web.reactor.seconds()
    listed = web.registry.devices(call.query.get("source"))
    return RawJson(('{"devices":[' + ",".join(_device(d, now) for d in listed)
                    + "]}").encode())


@routes.get("/api/devices/{peer_id}", "One device", tag="devices", params={"peer_id": int})
def device(web: WebPlugin, call: Call) -> Any:
    device = _find_device(web, call.params["peer_id"])
    return RawJson(_device(device, web.reactor.seconds()).encode())


@routes.get("/api/devices/{peer_id}/{channel}/{name}", "One variable", tag="devices",
            params={"peer_id": int, "channel": int, "name": str})
def variable(web: WebPlugin, call: Call) -> Any:
    p = call.params
    device = _find_device(web, p["peer_id"])
    try:
        found = device.variable(p["channel"], p["name"])
    except (UnknownChannel, UnknownVariable) as exc:
        raise not_found("variable", str(exc)) from None
    return RawJson(_variable(found, web.reactor.seconds()).encode())


@routes.put("/api/devices/{peer_id}/{channel}/{name}", "Write a variable (through its "
            "adapter); with confirm, answer once the device reported it", tag="devices",
            params={"peer_id": int, "channel": int, "name": str},
            body=[Field("value", "any", required=True),
                  Field("confirm", "boolean", "wait for the device to report the value"),
                  Field("timeout", "number", "seconds to wait with confirm", minimum=0.1,
                        maximum=300)],
            errors=(403, 422, 502, 504))
async def write_variable(web: WebPlugin, call: Call) -> Any:
    p = call.params
    device = _find_device(web, p["peer_id"])
    value = from_json(call.body["value"])
    try:
        device.variable(p["channel"], p["name"])
    except (UnknownChannel, UnknownVariable) as exc:
        raise not_found("variable", str(exc)) from None
    try:
        await web.registry.set_value(p["peer_id"], p["channel"], p["name"], value,
                                     confirm=bool(call.body.get("confirm")),
                                     timeout=call.body.get("timeout"))
    except RegistryError:
        raise  # checks and confirmation: answered by their kind
    except Exception as exc:  # the adapter refused the write
        raise ApiError(502, "write_failed", f"the device's adapter ({device.source}) "
                       f"refused the write: {type(exc).__name__}: {exc}") from None
    return RawJson(_variable(device.variable(p["channel"], p["name"]),
                             web.reactor.seconds()).encode())

