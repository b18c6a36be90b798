"""Services, through the running services plugin: state, recent lines, restart."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hadaemon.web.api.table import routes, running
from hadaemon.web.http import ApiError, not_found
from hadaemon.web.routes import Call

if TYPE_CHECKING:
    from hadaemon.web.plugin import WebPlugin


def _service(web: WebPlugin, info: dict[str, Any], lines: int = 20) -> dict[str, Any]:
    recent = web.log_ring.lines(source=f"hadaemon.services.{info['id']}", limit=lines)
    return {**info, "recent": recent}


@routes.get("/api/services", "Every service: state, restarts, recent Debug lines",
            tag="services", errors=(404,))
def services(web: WebPlugin, call: Call) -> Any:
    found = running(web, "services").services().values()
    return {"services": [_service(web, s, 5) for s in found]}


@routes.get("/api/services/{service_id}", "One service", tag="services",
            params={"service_id": str})
def service(web: WebPlugin, call: Call) -> Any:
    found = running(web, "services").services().get(call.params["service_id"].lower())
    if found is None:
        raise not_found("service", f"no service {call.params['service_id']!r}")
    return _service(web, found, 50)


@routes.post("/api/services/{service_id}/restart", "Restart a service (Stop, then Start)",
             tag="services", params={"service_id": str}, errors=(409,))
async def restart_service(web: WebPlugin, call: Call) -> Any:
    service_id = call.params["service_id"]
    plugin = running(web, "services")
    try:
        await plugin.restart_service(service_id)
    except KeyError:
        raise not_found("service", f"no service {service_id!r}") from None
    except ValueError as exc:
        raise ApiError(409, "disabled", str(exc)) from None
    return _service(web, plugin.services()[service_id.lower()])

