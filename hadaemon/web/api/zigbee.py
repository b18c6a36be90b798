"""The zigbee2mqtt bridge: its state, and permit join."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hadaemon.web.api.table import routes, running
from hadaemon.web.http import ApiError
from hadaemon.web.jsonvalues import to_json
from hadaemon.web.routes import Call, Field

if TYPE_CHECKING:
    from hadaemon.web.plugin import WebPlugin


@routes.get("/api/zigbee", "The zigbee2mqtt bridge: online, version, permit join, counts",
            tag="zigbee", errors=(404,))
def zigbee(web: WebPlugin, call: Call) -> Any:
    return to_json(running(web, "zigbee2mqtt").bridge_state())


@routes.post("/api/zigbee/permit_join", "Let devices join for N seconds (0 closes)",
             tag="zigbee", errors=(404, 502, 504),
             body=[Field("seconds", "integer", required=True, minimum=0, maximum=254)])
async def permit_join(web: WebPlugin, call: Call) -> Any:
    plugin = running(web, "zigbee2mqtt")
    try:
        answer = await plugin.permit_join(call.body["seconds"])
    except TimeoutError as exc:
        raise ApiError(504, "bridge_timeout", str(exc)) from None
    except Exception as exc:  # the bridge answered with an error
        raise ApiError(502, "bridge_error", f"zigbee2mqtt refused: {exc}") from None
    return {"answer": to_json(answer), "bridge": to_json(plugin.bridge_state())}

