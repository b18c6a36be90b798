"""The live event stream (Server-Sent Events), with taps on node outputs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hadaemon.web.api.table import routes, running
from hadaemon.web.events import EventStream, tap_frame
from hadaemon.web.http import ApiError, bad_request, not_found
from hadaemon.web.routes import Call, Field

if TYPE_CHECKING:
    from hadaemon.web.plugin import WebPlugin


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
    plugin = running(web, "nodes")
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

