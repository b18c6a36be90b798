"""The calls of node processes, whatever wire they came on: node methods and RPC methods.

A wire protocol authenticates a connection (msgpack: ``authenticate`` with the node's
token; Homegear binary RPC: the peer pid of a process the supervisor started), binds it
to its node with :meth:`Dispatcher.bind`, and hands every later call to
:meth:`Dispatcher.call`. The eleven node methods carry the node id first: it must be the
id the connection authenticated as, or the call faults and nothing happens. Everything
else is an RPC method backed by the registry (:mod:`hadaemon.nodes.rpc`).

No answer here ever waits for a callback into the calling node (that deadlocks a node
whose callback thread is the caller). The only answer that may wait is ``nodeOutput``'s,
while a destination's queue is full, under the rules in :mod:`hadaemon.nodes.delivery`
that keep such waits from ever forming a cycle.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from hadaemon.bus import Bus, ErrorEvent, Level, StatusUpdate, VariableChanged
from hadaemon.bus.topics import InvalidTopic
from hadaemon.nodes import faults, wire
from hadaemon.nodes.auth import Tokens
from hadaemon.nodes.delivery import Throttle, suppressed
from hadaemon.nodes.faults import Fault
from hadaemon.nodes.flows import Flows
from hadaemon.nodes.flushes import Flushes
from hadaemon.nodes.link import EventMessage, NodeLink, OutgoingMessage
from hadaemon.nodes.routing import Router
from hadaemon.nodes.rpc import RegistryMethods
from hadaemon.nodes.runtime import NodeRuntime, compile_filter
from hadaemon.nodes.scopes import (
    FLOW_SCOPE,
    GLOBAL_SCOPE,
    NODE_SCOPE,
    DataScopes,
    NodeCredentials,
)
from hadaemon.sentinels import UNKNOWN

CREDITS = 512
"""Calls a node may send without awaiting answers (nodeOutput...) before it must wait
for the daemon to take some: the sender's flow control (see hadaemon.nodes.delivery)."""

STATUS_SOURCE = "nodes"
"""``StatusUpdate.source`` of node statuses (``status/nodes/<node id>``)."""

NodeMethod = Callable[[NodeRuntime, list[Any]], Any]

_LOG_LEVELS = {1: "critical", 2: "error", 3: "warn", 4: "info", 5: "debug"}


def error_source(node_id: str) -> str:
    """``ErrorEvent.source`` of a node's errors."""
    return f"node:{node_id}"


class Dispatcher(Flushes):
    """Node methods and RPC methods for authenticated links (reactor thread only)."""

    def __init__(
        self,
        flows: Flows,
        runtimes: Mapping[str, NodeRuntime],
        tokens: Tokens,
        rpc: RegistryMethods,
        scopes: DataScopes,
        credentials: NodeCredentials,
        router: Router,
        bus: Bus,
        log: Logger,
        throttle: Throttle,
        on_ready: Callable[[NodeRuntime], None],
    ) -> None:
        self.flows = flows
        self.runtimes = runtimes
        self.tokens = tokens
        self.rpc = rpc
        self.scopes = scopes
        self.credentials = credentials
        self.router = router
        self.bus = bus
        self.log = log
        self._throttle = throttle
        self._on_ready = on_ready
        Flushes.__init__(self)
        self.node_methods: dict[str, NodeMethod] = {
            "nodeOutput": self._node_output,
            "nodeLog": self._node_log,
            "nodeEvent": self._node_event,
            "getNodeData": self._data_getter(NODE_SCOPE),
            "setNodeData": self._data_setter(NODE_SCOPE),
            "getFlowData": self._data_getter(FLOW_SCOPE),
            "setFlowData": self._data_setter(FLOW_SCOPE),
            "getGlobalData": self._data_getter(GLOBAL_SCOPE),
            "setGlobalData": self._data_setter(GLOBAL_SCOPE),
            "getNodeCredentials": self._get_credentials,
            "setNodeCredentials": self._set_credentials,
        }
        # hadaemon's extensions: about the calling node, without a node id on the wire.
        self.extensions: dict[str, NodeMethod] = {"setEventFilter": self._set_event_filter}

    def read_done(self) -> None:
        """The end of a read from a node: what it gave nodes goes out, and what it gave
        the bus is delivered now (whose drain then writes what it gave nodes)."""
        self.flush_all()
        self.bus.flush()

    # -- connections ----------------------------------------------------------------------

    def authenticate(self, link: NodeLink, node_id: Any, token: Any) -> dict[str, Any]:
        """Check a node's token; the answer carries its nodeInfo. Call :meth:`bind` after
        the answer went out."""
        if not self.tokens.check(node_id, token) or node_id not in self.runtimes:
            raise Fault(faults.AUTH_REFUSED, "unknown node or wrong token: this process "
                        "was not started by this daemon, or was replaced")
        assert isinstance(node_id, str)
        return {
            "nodeInfo": self.flows.node_info(node_id),
            "window": link.window,
            "credits": CREDITS,
            "protocol": wire.PROTOCOL_VERSION,
            "daemon": os.getpid(),
        }

    def node_for_pid(self, pid: int) -> str | None:
        """The node whose current process has ``pid`` (for wires that authenticate by
        the peer's pid, as Homegear's binary RPC does: the supervisor executes nodes
        directly, so the pid the kernel reports is the node's)."""
        for node_id, runtime in self.runtimes.items():
            if runtime.pid == pid:
                return node_id
        return None

    def bind(self, link: NodeLink, node_id: str) -> None:
        """Make ``link`` the node's connection (replacing an older one), then ping it;
        the node is ready (gets inputs, events, startUpComplete) once it answered."""
        runtime = self.runtimes[node_id]
        old = runtime.link
        link.node_id = node_id
        if old is not None and old is not link:
            self.unbind(old)
            old.close("replaced by a newer connection of the same node")
        runtime.link = link
        runtime.ready = False
        link.ping().addCallbacks(self._pinged, self._ping_failed, (link,), {}, (link,))

    def _pinged(self, _: object, link: NodeLink) -> None:
        runtime = self.runtimes.get(link.node_id or "")
        if runtime is None or runtime.link is not link:
            return
        runtime.ready = True
        runtime.inputs.open(link)
        self._on_ready(runtime)

    def _ping_failed(self, failure: Failure, link: NodeLink) -> None:
        runtime = self.runtimes.get(link.node_id or "")
        if runtime is not None:  # (None: removed by a reload meanwhile)
            runtime.log.warn(
                "node did not answer ping: {error}", error=failure.getErrorMessage()
            )

    def unbind(self, link: NodeLink) -> None:
        """The connection is gone (or replaced); inputs wait for the next one."""
        runtime = self.runtimes.get(link.node_id or "")
        if runtime is not None and runtime.link is link:
            runtime.link = None
            runtime.ready = False
            runtime.inputs.close()

    # -- calls ------------------------------------------------------------------------------

    def call(self, link: NodeLink, method: str, params: list[Any]) -> Any:
        """Run a call of an authenticated link: a value, a Deferred, or raises a Fault."""
        node_id = link.node_id
        if node_id is None:
            raise Fault(faults.NOT_AUTHENTICATED, "not authenticated")
        runtime = self.runtimes.get(node_id)
        if runtime is None:
            raise Fault(faults.AUTH_REFUSED, f"node {node_id!r} was removed from the config")
        handler = self.node_methods.get(method)
        if handler is not None:
            if not params:
                raise faults.invalid_params(method, "the node id is missing")
            if params[0] != node_id:
                raise Fault(
                    faults.FORBIDDEN,
                    f"{method}: this connection is node {node_id!r}, not {params[0]!r}",
                )
            return handler(runtime, params[1:])
        extension = self.extensions.get(method)
        if extension is not None:
            return extension(runtime, params)
        rpc = self.rpc.methods.get(method)
        if rpc is not None:
            return rpc(node_id, params)
        runtime.log.warn("called an unknown RPC method: {method!r}", method=method)
        raise faults.method_not_found()

    def output_route(self, node_id: str) -> Callable[[Any, Any], Deferred[None] | None]:
        """``route(index, msg)``: the node's ``nodeOutput`` for a wire's fast path, once
        the wire checked that the call carries this node's id (the same as
        :meth:`call` with ``nodeOutput``, without the lookups)."""
        return functools.partial(self.router.output, self.runtimes[node_id].spec)

    # -- node methods -------------------------------------------------------------------

    def _node_output(self, runtime: NodeRuntime, params: list[Any]) -> Deferred[None] | None:
        if len(params) < 2:
            raise faults.invalid_params("nodeOutput", "expected (nodeId, index, msg)")
        # The answer may be held while a destination is full (flow control); it never
        # waits for this node itself, nor for any destination's callback.
        return self.router.output(runtime.spec, params[0], params[1])

    def _node_log(self, runtime: NodeRuntime, params: list[Any]) -> None:
        if len(params) < 2:
            raise faults.invalid_params("nodeLog", "expected (nodeId, level, message)")
        level, text = params[0], params[1]
        if isinstance(level, bool) or not isinstance(level, int):
            raise faults.invalid_params("nodeLog", "the level is an integer 1-5")
        self.report(runtime.id, text if isinstance(text, str) else repr(text),
                    min(max(level, 1), 5))

    def report(self, node_id: str, message: str, level: int) -> None:
        """A node's log line; levels 1-3 are also its errors on the bus (catchable)."""
        runtime = self.runtimes[node_id]
        getattr(runtime.log, _LOG_LEVELS[level])("{text}", text=message)
        if level <= int(Level.WARNING):
            spec = runtime.spec
            self.bus.publish(ErrorEvent(
                error_source(node_id), message, Level(level),
                {"node": node_id, "flowId": spec.flow, "type": spec.type, "name": spec.name},
            ))

    def _node_event(self, runtime: NodeRuntime, params: list[Any]) -> None:
        if len(params) < 2 or not isinstance(params[0], str):
            raise faults.invalid_params("nodeEvent", "expected (nodeId, topic, value)")
        topic, value = params[0], params[1]
        if topic.startswith("status/"):
            if topic != f"status/{runtime.id}":
                raise Fault(faults.FORBIDDEN,
                            f"nodeEvent: node {runtime.id!r} cannot set the status of "
                            f"{topic[len('status/'):]!r}")
            if not isinstance(value, dict):
                raise faults.invalid_params("nodeEvent", "a status is a dict {text, shape, fill}")
            runtime.status = value
            self.bus.publish(StatusUpdate(STATUS_SOURCE, runtime.id, value))
            return
        runtime.log.debug("nodeEvent {topic} ignored (only status/<id> is kept)", topic=topic)

    def _data_getter(self, scope: str) -> NodeMethod:
        def get(runtime: NodeRuntime, params: list[Any]) -> Any:
            key = params[0] if params else ""
            return self.scopes.get(scope, self._owner(scope, runtime), key)

        return get

    def _data_setter(self, scope: str) -> NodeMethod:
        def set_(runtime: NodeRuntime, params: list[Any]) -> None:
            if len(params) < 2:
                raise faults.invalid_params("set data", "expected (nodeId, key, value)")
            self.scopes.set(scope, self._owner(scope, runtime), params[0], params[1])

        return set_

    @staticmethod
    def _owner(scope: str, runtime: NodeRuntime) -> str | None:
        if scope == NODE_SCOPE:
            return runtime.id
        return runtime.spec.flow if scope == FLOW_SCOPE else None

    def _get_credentials(self, runtime: NodeRuntime, params: list[Any]) -> dict[str, Any]:
        return self.credentials.get(runtime.id)

    def _set_credentials(self, runtime: NodeRuntime, params: list[Any]) -> None:
        if len(params) != 1:
            raise faults.invalid_params("setNodeCredentials", "expected (nodeId, {key: value})")
        self.credentials.update(runtime.id, params[0])

    def _set_event_filter(self, runtime: NodeRuntime, params: list[Any]) -> None:
        patterns = params[0] if params else None
        if patterns is None:
            runtime.filters = None
            return
        if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
            raise faults.invalid_params("setEventFilter", "expected a list of topic patterns "
                                        "(variable/<source>/<peer id>/<channel>/<name>)")
        try:
            runtime.filters = compile_filter(patterns)
        except InvalidTopic as exc:
            raise faults.invalid_params("setEventFilter", str(exc)) from None

    # -- events to nodes -------------------------------------------------------------------

    def broadcast(self, event: VariableChanged) -> None:
        """A registry change to every ready node whose filter wants it."""
        if event.value is UNKNOWN:
            return
        message: EventMessage | None = None
        topic: str | None = None
        for runtime in self.runtimes.values():
            link = runtime.link
            if link is None or not runtime.ready:
                continue
            if runtime.filters is not None:
                if topic is None:
                    topic = event.topic
                if not any(match(topic) for match in runtime.filters):
                    continue
            if message is None:
                message = EventMessage(
                    event.source, event.peer_id, event.channel, event.name, event.value
                )
            try:
                sent = link.send_event(message)
            except TypeError as exc:
                count = self._throttle.hit(("event", event.topic))
                if count is not None:
                    self.log.warn("event {topic} cannot be sent to nodes: {error}{more}",
                                  topic=event.topic, error=str(exc), more=suppressed(count))
                return
            if not sent:
                runtime.events_dropped += 1

    def send_startup_complete(self, runtime: NodeRuntime) -> None:
        """``eventHandler("nodeBlue", 0, -1, "startUpComplete", nodeInfo)`` to one node."""
        if runtime.link is None or runtime.startup_sent:
            return
        runtime.startup_sent = True
        runtime.link.send_event(EventMessage(
            "nodeBlue", 0, -1, "startUpComplete", self.flows.node_info(runtime.id)
        ))

    def deliver_error(self, event: ErrorEvent) -> None:
        """A node's error to the catch nodes of its flow (or of all flows)."""
        if not event.source.startswith("node:"):
            return
        runtime = self.runtimes.get(event.source[len("node:"):])
        if runtime is None:
            return
        catchers = self.flows.catchers_of(runtime.spec)
        if not catchers:
            return
        message = OutgoingMessage({
            "payload": {
                "message": event.message,
                "source": runtime.spec.source_info(),
                "level": int(event.level) * 10,
            }
        })
        for catcher in catchers:
            # A full catch node loses it silently (counted): reporting that would be
            # another error, and errors must not breed errors.
            self.runtimes[catcher.id].inputs.offer(0, message)
