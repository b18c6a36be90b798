"""The route table every endpoint module declares into, and the running plugin behind an
endpoint (shared by the nodes, services, zigbee and events endpoints)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hadaemon.web.http import ApiError
from hadaemon.web.routes import RouteTable

if TYPE_CHECKING:
    from hadaemon.web.plugin import WebPlugin

routes = RouteTable()


def running(web: WebPlugin, name: str) -> Any:
    """The running plugin ``name`` behind an endpoint, or a 404 saying it is not."""
    plugin = web.context.plugin(name)
    if plugin is None:
        raise ApiError(404, "not_enabled", f"the {name} plugin is not running")
    return plugin


__all__ = ["routes", "running"]
