"""Looking back: the log ring, recorded history, Prometheus metrics."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from hadaemon.logs import LEVEL_NAMES
from hadaemon.web.api.table import routes
from hadaemon.web.http import ApiError, bad_request
from hadaemon.web.routes import Call, Field

if TYPE_CHECKING:
    from hadaemon.web.plugin import WebPlugin


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

