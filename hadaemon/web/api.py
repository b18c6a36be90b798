"""The API's endpoints: one function each, declared in :data:`routes` (which the
dispatcher and the OpenAPI document read). Each takes the web plugin and the
:class:`Call`; what it returns is answered as JSON; :class:`ApiError` is a 4xx/5xx.

Reactor thread only.
"""

from __future__ import annotations

import math
import platform
import time
from typing import TYPE_CHECKING, Any

import twisted
from hadaemon._version import __version__
from hadaemon.logs import LEVEL_NAMES
from hadaemon.registry import (
    UNKNOWN,
    Device,
    RegistryError,
    SystemVariableNotFound,
    UnknownChannel,
    UnknownDevice,
    UnknownVariable,
    Variable,
    VariableSpec,
)
from hadaemon.web.events import EventStream, tap_frame
from hadaemon.web.http import ApiError, RawJson, bad_request, not_found
from hadaemon.web.jsonvalues import dumps, from_json, to_json
from hadaemon.web.openapi import document
from hadaemon.web.routes import Call, Field, RouteTable

if TYPE_CHECKING:
    from hadaemon.web.plugin import WebPlugin

routes = RouteTable()

# -- the API itself ------------------------------------------------------------------------


@routes.get("/api/openapi.json", "This document (OpenAPI 3)", auth="public", tag="api")
def openapi(web: WebPlugin, call: Call) -> Any:
    return document(routes.routes)


# -- who may enter -------------------------------------------------------------------------


@routes.post("/api/login", "Log in with the admin password: a session cookie and the CSRF "
             "token state-changing requests send as X-CSRF-Token", auth="public", tag="auth",
             body=[Field("password", "string", required=True)], errors=(401, 429))
async def login(web: WebPlugin, call: Call) -> Any:
    address = call.request.getClientAddress()
    result = await web.auth.login(call.body["password"],
                                  client=str(getattr(address, "host", "?")))
    call.request.setHeader(b"Set-Cookie", result.set_cookie)
    principal = result.principal
    return {"kind": principal.kind, "name": principal.name,
            "csrf_token": principal.csrf_token}


@routes.post("/api/logout", "End the session", tag="auth")
def logout(web: WebPlugin, call: Call) -> Any:
    call.request.setHeader(b"Set-Cookie", web.auth.logout(call.request))
    return {"ok": True}


@routes.get("/api/session", "Who is asking: session or token, and the CSRF token", tag="auth")
def session(web: WebPlugin, call: Call) -> Any:
    principal = call.principal
    return {"kind": principal.kind, "name": principal.name,
            "csrf_token": principal.csrf_token}


@routes.get("/api/tokens", "The API tokens (never their secrets)", tag="auth")
def tokens(web: WebPlugin, call: Call) -> Any:
    return {"tokens": to_json(web.auth.tokens())}


@routes.post("/api/tokens", "Create an API token; its secret is shown only in this answer",
             tag="auth", status=201,
             body=[Field("name", "string", required=True, min_length=1)])
def create_token(web: WebPlugin, call: Call) -> Any:
    token_id, secret = web.auth.create_token(call.body["name"])
    return {"id": token_id, "name": call.body["name"], "secret": secret}


@routes.delete("/api/tokens/{token_id}", "Revoke an API token", tag="auth",
               params={"token_id": str})
def revoke_token(web: WebPlugin, call: Call) -> Any:
    if not web.auth.revoke_token(call.params["token_id"]):
        raise not_found("token", f"no token {call.params['token_id']!r}")
    return {"ok": True}


# -- status --------------------------------------------------------------------------------


@routes.get("/api/status", "Plugins and their state, uptime, versions, counts, reactor lag, "
            "recent errors", tag="status")
def status(web: WebPlugin, call: Call) -> Any:
    daemon = web.daemon
    failed = dict(getattr(daemon, "failed", {}))
    plugins = []
    for name, service in list(getattr(daemon, "plugins", [])):
        state = "failed" if name in failed else ("running" if service.running else "stopped")
        plugins.append({"name": name, "state": state, "error": failed.get(name)})
    started = {p["name"] for p in plugins}
    plugins += [{"name": n, "state": "failed", "error": e} for n, e in failed.items()
                if n not in started]
    devices = web.registry.devices()
    nodes = web.context.plugin("nodes")
    services = web.context.plugin("services")
    return {
        "name": web.context.daemon_config.core.name,
        "uptime": time.time() - web.started_at,
        "started_at": web.started_at,
        "versions": {"hadaemon": __version__, "python": platform.python_version(),
                     "twisted": twisted.__version__},
        "plugins": plugins,
        "counts": {
            "devices": len(devices),
            "variables": sum(len(c.variables) for d in devices for c in d.channels.values()),
            "system_variables": len(web.registry.system_variables()),
            "nodes": len(nodes.runtimes) if nodes is not None else 0,
            "services": len(services.services()) if services is not None else 0,
            "event_clients": len(web.journal.streams),
        },
        "reactor": web.lag.summary(),
        "events": {"last_id": web.journal.last_id, "kept": len(web.journal.entries)},
        "recent_errors": list(web.recent_errors),
    }


# -- devices -------------------------------------------------------------------------------


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


# -- system variables ----------------------------------------------------------------------


@routes.get("/api/sysvars", "Every system variable", tag="system variables")
def sysvars(web: WebPlugin, call: Call) -> Any:
    return {"variables": {k: to_json(v) for k, v in web.registry.system_variables().items()}}


@routes.get("/api/sysvars/{name}", "One system variable", tag="system variables",
            params={"name": str})
def sysvar(web: WebPlugin, call: Call) -> Any:
    name = call.params["name"]
    try:
        return {"name": name, "value": to_json(web.registry.get_system_variable(name))}
    except SystemVariableNotFound:
        raise not_found("variable", f"no system variable {name!r}") from None


@routes.put("/api/sysvars/{name}", "Write a system variable (created if new)",
            tag="system variables", params={"name": str},
            body=[Field("value", "any", required=True)])
def write_sysvar(web: WebPlugin, call: Call) -> Any:
    name = call.params["name"]
    web.registry.set_system_variable(name, from_json(call.body["value"]))
    return {"name": name, "value": to_json(web.registry.get_system_variable(name))}


@routes.post("/api/sysvars", "Create a system variable (409 if it exists)",
             tag="system variables", status=201, errors=(409,),
             body=[Field("name", "string", required=True, min_length=1),
                   Field("value", "any", required=True)])
def create_sysvar(web: WebPlugin, call: Call) -> Any:
    name = call.body["name"]
    if not name:
        raise bad_request("bad_name", "a system variable's name is a non-empty string")
    if name in web.registry.system_variables():
        raise ApiError(409, "exists", f"system variable {name!r} exists (PUT writes it)")
    web.registry.set_system_variable(name, from_json(call.body["value"]))
    return {"name": name, "value": to_json(web.registry.get_system_variable(name))}


@routes.delete("/api/sysvars/{name}", "Delete a system variable", tag="system variables",
               params={"name": str})
def delete_sysvar(web: WebPlugin, call: Call) -> Any:
    name = call.params["name"]
    try:
        web.registry.delete_system_variable(name)
    except SystemVariableNotFound:
        raise not_found("variable", f"no system variable {name!r}") from None
    return {"ok": True}


def _running(web: WebPlugin, name: str) -> Any:
    """The running plugin ``name`` behind an endpoint, or a 404 saying it is not."""
    plugin = web.context.plugin(name)
    if plugin is None:
        raise ApiError(404, "not_enabled", f"the {name} plugin is not running")
    return plugin


# -- nodes and flows -----------------------------------------------------------------------


@routes.get("/api/nodes", "Every node: process, pid, restarts, crash loop, status",
            tag="nodes", errors=(404,))
def nodes(web: WebPlugin, call: Call) -> Any:
    return {"nodes": list(to_json(_running(web, "nodes").nodes()).values())}


@routes.get("/api/nodes/{node_id}", "One node", tag="nodes", params={"node_id": str})
def node(web: WebPlugin, call: Call) -> Any:
    found = _running(web, "nodes").nodes().get(call.params["node_id"])
    if found is None:
        raise not_found("node", f"no node {call.params['node_id']!r}")
    return to_json(found)


@routes.post("/api/nodes/{node_id}/restart", "Restart a node's process; answers once it "
             "was started again", tag="nodes", params={"node_id": str})
async def restart_node(web: WebPlugin, call: Call) -> Any:
    node_id = call.params["node_id"]
    try:
        restarted = _running(web, "nodes").restart_node(node_id)
    except KeyError:
        raise not_found("node", f"no node {node_id!r}") from None
    await restarted
    return to_json(_running(web, "nodes").nodes()[node_id])


@routes.get("/api/flows", "The flows as a graph: nodes and wires", tag="nodes", errors=(404,))
def flows(web: WebPlugin, call: Call) -> Any:
    return to_json(_running(web, "nodes").graph())


# -- services ------------------------------------------------------------------------------


def _service(web: WebPlugin, info: dict[str, Any], lines: int = 20) -> dict[str, Any]:
    recent = web.log_ring.lines(source=f"hadaemon.services.{info['id']}", limit=lines)
    return {**info, "recent": recent}


@routes.get("/api/services", "Every service: state, restarts, recent Debug lines",
            tag="services", errors=(404,))
def services(web: WebPlugin, call: Call) -> Any:
    found = _running(web, "services").services().values()
    return {"services": [_service(web, s, 5) for s in found]}


@routes.get("/api/services/{service_id}", "One service", tag="services",
            params={"service_id": str})
def service(web: WebPlugin, call: Call) -> Any:
    found = _running(web, "services").services().get(call.params["service_id"].lower())
    if found is None:
        raise not_found("service", f"no service {call.params['service_id']!r}")
    return _service(web, found, 50)


@routes.post("/api/services/{service_id}/restart", "Restart a service (Stop, then Start)",
             tag="services", params={"service_id": str}, errors=(409,))
async def restart_service(web: WebPlugin, call: Call) -> Any:
    service_id = call.params["service_id"]
    plugin = _running(web, "services")
    try:
        await plugin.restart_service(service_id)
    except KeyError:
        raise not_found("service", f"no service {service_id!r}") from None
    except ValueError as exc:
        raise ApiError(409, "disabled", str(exc)) from None
    return _service(web, plugin.services()[service_id.lower()])


# -- the zigbee bridge ---------------------------------------------------------------------


@routes.get("/api/zigbee", "The zigbee2mqtt bridge: online, version, permit join, counts",
            tag="zigbee", errors=(404,))
def zigbee(web: WebPlugin, call: Call) -> Any:
    return to_json(_running(web, "zigbee2mqtt").bridge_state())


@routes.post("/api/zigbee/permit_join", "Let devices join for N seconds (0 closes)",
             tag="zigbee", errors=(404, 502, 504),
             body=[Field("seconds", "integer", required=True, minimum=0, maximum=254)])
async def permit_join(web: WebPlugin, call: Call) -> Any:
    plugin = _running(web, "zigbee2mqtt")
    try:
        answer = await plugin.permit_join(call.body["seconds"])
    except TimeoutError as exc:
        raise ApiError(504, "bridge_timeout", str(exc)) from None
    except Exception as exc:  # the bridge answered with an error
        raise ApiError(502, "bridge_error", f"zigbee2mqtt refused: {exc}") from None
    return {"answer": to_json(answer), "bridge": to_json(plugin.bridge_state())}


# -- log, history, metrics -----------------------------------------------------------------


@routes.get("/api/log", "Recent log lines, filtered by level and source", tag="log",
            query=[Field("level", "string", "lowest level: debug, info, warn, error, critical"),
                   Field("source", "string", "a log namespace and its children, e.g. "
                         "hadaemon.nodes"),
                   Field("limit", "integer", "at most this many (newest)", minimum=1,
                         maximum=10000)])
def log(web: WebPlugin, call: Call) -> Any:
    level = call.query.get("level")
    if level is not None and level.lower() not in LEVEL_NAMES:
        raise bad_request("bad_parameter", f"query parameter 'level': {level!r} is not one "
                          f"of {', '.join(LEVEL_NAMES)}")
    return {"lines": web.log_ring.lines(level=level and level.lower(),
                                        source=call.query.get("source"),
                                        limit=call.query.get("limit", 200))}


@routes.get("/api/history", "A variable's recorded values (the history plugin), downsampled",
            tag="history", errors=(404, 503),
            query=[Field("source", "string", "the device's adapter (system for system "
                         "variables)", required=True),
                   Field("peer_id", "integer", required=True),
                   Field("channel", "integer", required=True),
                   Field("name", "string", required=True),
                   Field("start", "number", "Unix time; default a day ago"),
                   Field("end", "number", "Unix time; default now"),
                   Field("max_points", "integer", minimum=1, maximum=10000)])
async def history(web: WebPlugin, call: Call) -> Any:
    plugin = web.context.plugin("history")
    if plugin is None:
        if "history" in web.context.daemon_config.core.plugins:
            raise ApiError(503, "not_running", "the history plugin is enabled but not "
                           "running (see GET /api/status)")
        raise ApiError(404, "not_enabled", "history is not recorded: add \"history\" to "
                       "[daemon].plugins")
    from hadaemon.history import HistoryUnavailable

    q = call.query
    end = q.get("end", time.time())
    start = q.get("start", end - 86400.0)
    try:
        return await plugin.query(source=q["source"], peer_id=q["peer_id"],
                                  channel=q["channel"], name=q["name"], start=start, end=end,
                                  max_points=q.get("max_points", 1000))
    except ValueError as exc:
        raise bad_request("bad_query", str(exc)) from None
    except HistoryUnavailable as exc:
        raise ApiError(503, "unavailable", str(exc)) from None


@routes.get("/metrics", "Prometheus metrics (text format); an API token unless "
            "[web].metrics_public", tag="metrics", raw=True, errors=(404,))
def metrics(web: WebPlugin, call: Call) -> Any:
    from hadaemon.metrics import MetricsNotRunning, render

    try:
        body, content_type = render(web.context)
    except MetricsNotRunning as exc:
        raise ApiError(404, "not_enabled", str(exc)) from None
    request = call.request
    request.setHeader(b"Content-Type", content_type.encode()
                      if isinstance(content_type, str) else content_type)
    return body


# -- live events ---------------------------------------------------------------------------


@routes.get("/api/events", "Live events (Server-Sent Events): variable, lifecycle, error, "
            "status, device; with tap, a node output's messages", tag="events", stream=True,
            errors=(404,),
            query=[Field("topics", "string", "comma-separated topic filters (MQTT syntax), "
                         "e.g. variable/demo/#,error/#; default all"),
                   Field("tap", "string", "comma-separated node outputs to watch: "
                         "<node id>/<output>"),
                   Field("last_event_id", "string", "resume after this id (as the "
                         "Last-Event-ID header, for clients that cannot set it)")])
def events(web: WebPlugin, call: Call) -> Any:
    request = call.request
    if request.method == b"HEAD":  # the headers only: no stream that never ends
        request.setHeader(b"Content-Type", b"text/event-stream; charset=utf-8")
        request.finish()
        return None
    raw_last = request.getHeader(b"Last-Event-ID")
    last = raw_last.decode("latin-1") if raw_last else call.query.get("last_event_id")
    resume = web.journal.parse_id(last) if last else None
    topics = [t.strip() for t in call.query.get("topics", "").split(",") if t.strip()]
    holder: list[EventStream] = []
    removers: list[Any] = []
    try:
        for spec in [t.strip() for t in call.query.get("tap", "").split(",") if t.strip()]:
            removers.append(_tap(web, holder, spec))
        stream = EventStream(request, web.journal, reactor=web.reactor, patterns=topics,
                             log=web.log)
    except ApiError:
        for remove in removers:
            remove()
        raise
    holder.append(stream)
    stream.cleanups.extend(removers)
    stream.open(resume)
    return None


def _tap(web: WebPlugin, holder: list[EventStream], spec: str) -> Any:
    node_id, _, output = spec.rpartition("/")
    if not node_id or not output.isdigit():
        raise bad_request("bad_parameter", f"tap {spec!r}: expected <node id>/<output>")
    index = int(output)
    plugin = _running(web, "nodes")
    seconds = web.reactor.seconds

    def watch(msg: Any) -> None:
        if holder:
            holder[0].tap(tap_frame(node_id, index, msg, seconds()))

    try:
        return plugin.add_tap(node_id, index, watch)
    except KeyError:
        raise not_found("node", f"tap {spec!r}: no node {node_id!r}") from None
    except IndexError as exc:
        raise not_found("output", f"tap {spec!r}: {exc}") from None


__all__ = ["routes"]
