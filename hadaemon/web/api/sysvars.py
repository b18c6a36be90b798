"""System variables: list, read, write, create, delete."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hadaemon.registry import (
    SystemVariableNotFound,
)
from hadaemon.web.api.table import routes
from hadaemon.web.http import ApiError, bad_request, not_found
from hadaemon.web.jsonvalues import from_json, to_json
from hadaemon.web.routes import Call, Field

if TYPE_CHECKING:
    from hadaemon.web.plugin import WebPlugin


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

