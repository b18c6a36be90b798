"""Nodes and flows, through the running nodes plugin."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hadaemon.web.api.table import routes, running
from hadaemon.web.http import not_found
from hadaemon.web.jsonvalues import to_json
from hadaemon.web.routes import Call

if TYPE_CHECKING:
    from hadaemon.web.plugin import WebPlugin


@routes.get("/api/nodes", "Every node: process, pid, restarts, crash loop, status",
            tag="nodes", errors=(404,))
def nodes(web: WebPlugin, call: Call) -> Any:
    return {"nodes": list(to_json(running(web, "nodes").nodes()).values())}


@routes.get("/api/nodes/{node_id}", "One node", tag="nodes", params={"node_id": str})
def node(web: WebPlugin, call: Call) -> Any:
    found = running(web, "nodes").nodes().get(call.params["node_id"])
    if found is None:
        raise not_found("node", f"no node {call.params['node_id']!r}")
    return to_json(found)


@routes.post("/api/nodes/{node_id}/restart", "Restart a node's process; answers once it "
             "was started again", tag="nodes", params={"node_id": str})
async def restart_node(web: WebPlugin, call: Call) -> Any:
    node_id = call.params["node_id"]
    try:
        restarted = running(web, "nodes").restart_node(node_id)
    except KeyError:
        raise not_found("node", f"no node {node_id!r}") from None
    await restarted
    return to_json(running(web, "nodes").nodes()[node_id])


@routes.get("/api/flows", "The flows as a graph: nodes and wires", tag="nodes", errors=(404,))
def flows(web: WebPlugin, call: Call) -> Any:
    return to_json(running(web, "nodes").graph())

