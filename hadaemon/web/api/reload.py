"""Re-reading the config through the API: what ``hadaemon reload`` calls when the web
plugin runs (docs/reload.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hadaemon.web.api.table import routes
from hadaemon.web.http import ApiError
from hadaemon.web.routes import Call

if TYPE_CHECKING:
    from hadaemon.web.plugin import WebPlugin


@routes.post("/api/reload", "Re-read the config file and apply it (as SIGHUP does); a "
             "config hadaemon check refuses is refused with its messages", tag="status",
             errors=(503,))
async def reload(web: WebPlugin, call: Call) -> Any:
    reloader = getattr(web.daemon, "reloader", None)
    if reloader is None:
        raise ApiError(503, "not_available", "this daemon cannot reload its config")
    result = await reloader.reload_config()
    return result.as_dict()
