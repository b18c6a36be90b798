"""The ``nodes`` plugin: Homegear Node-BLUE Python nodes as processes of the daemon.

Start: build the flows (config and flows.json), open the node socket, make every node a
bus endpoint (``node:<id>``, the path is the input: ``node:n1/0``), follow the
registry's variable changes and the nodes' errors, start the reaper and the nodes.
Once the daemon published "started" and every node answered ping (or
``start_deadline`` passed), each started node gets ``startUpComplete``; a node started
later gets it right after its ping.

Stop: SIGTERM to every node, SIGKILL after ``grace``; then the socket, the endpoints
and the reaper go. The plugin's ``stop_timeout`` is ``grace`` plus a small margin; it
must fit in ``[daemon].stop_timeout`` (``hadaemon check`` says so if it does not).
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.interfaces import IDelayedCall, IListeningPort

from hadaemon.bus import (
    Address,
    ErrorEvent,
    Event,
    Level,
    Lifecycle,
    QueueFull,
    Registration,
    StatusUpdate,
    Subscription,
)
from hadaemon.bus.errors import DestinationGone
from hadaemon.config import Config
from hadaemon.logs import get_logger
from hadaemon.nodes import flows as flows_module
from hadaemon.nodes import reloading
from hadaemon.nodes.auth import Tokens
from hadaemon.nodes.client import CLIENT_DIR
from hadaemon.nodes.delivery import NodeInputs, Throttle
from hadaemon.nodes.dispatcher import CREDITS, STATUS_SOURCE, Dispatcher
from hadaemon.nodes.faults import Fault
from hadaemon.nodes.flows import WIRE_BINRPC, FlowError, Flows, NodeSpec
from hadaemon.nodes.flowsconfig import build_flows
from hadaemon.nodes.link import OutgoingMessage
from hadaemon.nodes.listening import listen_nodes
from hadaemon.nodes.reaper import Reaper
from hadaemon.nodes.routing import Router, as_message
from hadaemon.nodes.rpc import RegistryMethods
from hadaemon.nodes.runtime import NodeRuntime, compile_filter
from hadaemon.nodes.scopes import DataScopes, NodeCredentials
from hadaemon.nodes.server import NodeServerFactory
from hadaemon.nodes.settings import SCHEMA, STOP_MARGIN, NodesSettings
from hadaemon.nodes.socketdir import SOCKET_NAME, clear_stale_socket, socket_directory
from hadaemon.nodes.supervisor import Supervisor
from hadaemon.plugin import Plugin, PluginContext
from hadaemon.reload.errors import report_code_error
from hadaemon.reload.interfaces import RestartNeeded


class NodesPlugin(Plugin):
    """Homegear Node-BLUE Python nodes."""

    name = "nodes"
    description = "Homegear Node-BLUE Python nodes (from homegear import Homegear)"
    schema = SCHEMA
    stop_timeout: ClassVar[float | None] = NodesSettings().stop_timeout

    def __init__(self, context: PluginContext) -> None:
        super().__init__(context)
        self.settings = NodesSettings.from_section(context.config)
        # The stop may take the grace period plus the time to kill and reap.
        # (an instance value: the class attribute is the default the daemon reads)
        self.__dict__["stop_timeout"] = self.settings.stop_timeout
        self.flows = Flows([])
        self.runtimes: dict[str, NodeRuntime] = {}
        self.socket_path = ""
        self._socket_dir: pathlib.Path | None = None
        self._temporary_dir = False
        self._port: IListeningPort | None = None
        self._endpoints: dict[str, Registration] = {}
        self._subscriptions: list[Subscription] = []
        self._unhook_drain: Callable[[], None] = lambda: None
        self._deadline: IDelayedCall | None = None
        self._daemon_started = False
        self._deadline_passed = False
        self.startup_done = False
        self._started_once: set[str] = set()
        self.reaper: Reaper | None = None
        self.supervisor: Supervisor | None = None
        self.dispatcher: Dispatcher | None = None

    @classmethod
    def check_config(cls, section: Mapping[str, Any], config: Config) -> list[str]:
        """``hadaemon check``: the flows, and the stop budget."""
        problems: list[str] = []
        try:
            build_flows(section, config.base_dir)
        except FlowError as exc:
            problems.extend(exc.problems)
        grace = NodesSettings.from_section(section).grace
        budget = config.core.stop_timeout
        if grace + STOP_MARGIN > budget:
            problems.append(
                f"grace ({grace:g} s) plus {STOP_MARGIN:g} s to kill and reap does not fit "
                f"in [daemon].stop_timeout ({budget:g} s): raise it or lower grace"
            )
        return problems

    # -- start --------------------------------------------------------------------------------

    def start(self) -> None:
        settings = self.settings
        base_dir = self.context.daemon_config.base_dir
        try:
            self.flows, warnings = build_flows(settings, base_dir)
        except FlowError as exc:
            raise FlowError(exc.problems) from None
        for warning in warnings:
            self.log.warn("{warning}", warning=warning)
        reactor = self.reactor
        for node_id, spec in self.flows.nodes.items():
            self.runtimes[node_id] = self._make_runtime(spec)
        tokens = Tokens()
        store, credentials = self.context.store, self.context.credentials
        router = Router(
            {i: r.inputs for i, r in self.runtimes.items()}, self.bus, reactor, self._report,
            stall_timeout=settings.stall_timeout,
        )
        self.dispatcher = Dispatcher(
            self.flows,
            self.runtimes,
            tokens,
            RegistryMethods(self.registry, self._node_log),
            DataScopes(store, self.context.key),
            NodeCredentials(credentials, self.context.key),
            router,
            self.bus,
            self.log,
            Throttle(reactor),
            self._node_ready,
        )
        # What a bus drain gives the nodes goes out at its end, in the same turn.
        self._unhook_drain = self.bus.after_drain(self.dispatcher.flush_all)
        self._listen()
        for node_id in self.runtimes:
            self._register(node_id)
        self._subscriptions.append(self.registry.subscribe(
            self.dispatcher.broadcast, subscriber="nodes: events to nodes"
        ))
        self._subscriptions.append(self.bus.subscribe(
            "error/#", self._error_event, name="nodes: catch nodes", event_type=ErrorEvent
        ))
        self.reaper = Reaper(reactor, self.log, zygote=settings.spawn == "fork", client_dir=(
            CLIENT_DIR if any(rt.spec.wire != WIRE_BINRPC for rt in self.runtimes.values())
            else ""))
        self.reaper.start()
        self.supervisor = Supervisor(
            reactor,
            self.runtimes,
            tokens,
            self.reaper,
            settings,
            self.socket_path,
            settings.interpreter,
            base_dir,
            self._process_event,
            self._disconnect,
        )
        self._subscriptions.append(self.context.on_started(self._on_daemon_started))
        self._deadline = reactor.callLater(settings.start_deadline, self._deadline_over)
        self.supervisor.start_all()
        self.log.info("{count} node(s) starting; socket {path}", count=len(self.runtimes),
                      path=self.socket_path)

    def _make_runtime(self, spec: NodeSpec) -> NodeRuntime:
        """A node's runtime: its input queue and its logger."""
        if spec.wire == flows_module.WIRE_MSGPACK:
            _warn_shadowing(spec, self.log)
        return NodeRuntime(spec, self._make_inputs(spec),
                           get_logger(f"{self.log.namespace}.{spec.id}"))

    def _make_inputs(self, spec: NodeSpec) -> NodeInputs:
        """A node's input queue, with room for what its senders may have on the way."""
        settings = self.settings
        senders = {w["id"] for port in self.flows.node_info(spec.id)["allWiresIn"]
                   for w in port}
        return NodeInputs(spec.id, settings.queue_size, self.reactor,
                          stall_timeout=settings.stall_timeout, on_stall=self._stalled,
                          in_transit=CREDITS * max(1, len(senders)))

    def _register(self, node_id: str) -> None:
        capacity = self.settings.queue_size
        self._endpoints[node_id] = self.bus.register(
            f"node:{node_id}", self._bus_input, queue_size=capacity,
            concurrency=capacity, name=f"node {node_id} (inputs)",
        )

    def _listen(self) -> None:
        directory, temporary = socket_directory(self.settings.socket_dir,
                                                 self.context.state_dir)
        self._socket_dir, self._temporary_dir = directory, temporary
        path = directory / SOCKET_NAME
        clear_stale_socket(path)
        self.socket_path = str(path)
        factory = NodeServerFactory(
            _dispatcher(self.dispatcher),
            self.settings,  # (the settings are the connection limits)
            self.reactor,
            self.log,
        )
        self._port = listen_nodes(self.reactor, str(path), factory, 0o600)
        os.chmod(path, 0o600)

    # -- runtime events -------------------------------------------------------------------

    def _node_log(self, node_id: str) -> Any:
        runtime = self.runtimes.get(node_id)
        return runtime.log if runtime is not None else self.log

    def _report(self, node_id: str, message: str, level: int) -> None:
        _dispatcher(self.dispatcher).report(node_id, message, level)

    def _stalled(self, inputs: NodeInputs, released: int) -> None:
        self._report(
            inputs.node_id,
            f"node {inputs.node_id} answered no input for "
            f"{inputs.stall_timeout:g} s: {released} held nodeOutput call(s) to it go on, "
            f"senders are no longer held for it, and messages beyond {inputs.limit} waiting "
            f"are dropped until it answers again",
            int(Level.ERROR),
        )

    def _node_ready(self, runtime: NodeRuntime) -> None:
        if self.supervisor is not None:
            self.supervisor.node_ready(runtime.id)
        self._started_once.add(runtime.id)
        if self.startup_done:
            _dispatcher(self.dispatcher).send_startup_complete(runtime)
        else:
            self._maybe_startup_complete()

    def _on_daemon_started(self) -> None:
        self._daemon_started = True
        self._maybe_startup_complete()

    def _deadline_over(self) -> None:
        self._deadline = None
        self._deadline_passed = True
        self._maybe_startup_complete()

    def _maybe_startup_complete(self) -> None:
        if self.startup_done or not self._daemon_started:
            return
        if not self._deadline_passed and len(self._started_once) < len(self.runtimes):
            return
        self.startup_done = True
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._deadline = None
        missing = sorted(set(self.runtimes) - self._started_once)
        if missing:
            self.log.warn("startUpComplete sent before these nodes started: {nodes}",
                          nodes=", ".join(missing))
        dispatcher = _dispatcher(self.dispatcher)
        for runtime in self.runtimes.values():
            if runtime.ready:
                dispatcher.send_startup_complete(runtime)

    def _process_event(self, runtime: NodeRuntime, event: str, details: dict[str, Any]) -> None:
        component = f"node:{runtime.id}"
        if event == "spawned":
            runtime.startup_sent = False
        elif event == "started":
            self.bus.publish(Lifecycle(component, Lifecycle.STARTED, details))
        elif event == "exited":
            self.bus.publish(Lifecycle(component, Lifecycle.FAILED, details))
        elif event == "crash_loop":
            runtime.status = {
                "text": f"crash loop: {details['exits']} exits; retrying every "
                        f"{details['restart_in']:g} s",
                "shape": "ring",
                "fill": "red",
            }
            self.bus.publish(Lifecycle(component, "crash_loop", details))
            self.bus.publish(StatusUpdate(STATUS_SOURCE, runtime.id, runtime.status))
        elif event == "recovered":
            runtime.status = {}
            self.bus.publish(StatusUpdate(STATUS_SOURCE, runtime.id, {}))
        elif event == "stopped":
            self.bus.publish(Lifecycle(component, Lifecycle.STOPPED, details))

    def _disconnect(self, runtime: NodeRuntime) -> None:
        link = runtime.link
        if link is not None:
            _dispatcher(self.dispatcher).unbind(link)
            link.close("the node process exited")

    def _error_event(self, event: Event) -> None:
        assert isinstance(event, ErrorEvent)
        _dispatcher(self.dispatcher).deliver_error(event)

    def _bus_input(self, address: Address, message: Any) -> Deferred[Any]:
        """Anything on the bus sends to ``node:<id>/<input>``; fires with the node's answer
        (the return value of its ``nodeInput``)."""
        runtime = self.runtimes[address.id]
        inputs = runtime.spec.inputs
        path = address.path or "0"
        if not path.isdigit() or int(path) >= inputs:
            raise ValueError(f"{address}: the path is the input index, 0 to {inputs - 1}")
        outgoing = OutgoingMessage(as_message(message))
        outgoing.packed  # noqa: B018 (a value outside the value model fails the sender now)
        answer: Deferred[Any] = Deferred()

        def done(error: Any, result: Any) -> None:
            if error is None:
                answer.callback(result)
            elif isinstance(error, BaseException):
                answer.errback(error)
            elif isinstance(error, dict):
                answer.errback(Fault(int(error.get("faultCode", -32500)),
                                     str(error.get("faultString", error))))
            else:
                answer.errback(Exception(str(error)))

        # Bus senders cannot be held back: they get QueueFull at queue_size.
        if runtime.inputs.full or not runtime.inputs.offer(int(path), outgoing, done):
            raise QueueFull(str(address), runtime.inputs.capacity)
        return answer

    # -- views ------------------------------------------------------------------------------

    def nodes(self) -> dict[str, dict[str, Any]]:
        """Every node's state (process, connection, status, counters)."""
        out = {}
        for node_id, runtime in self.runtimes.items():
            snapshot = runtime.snapshot()
            if self.supervisor is not None:
                process = self.supervisor.processes[node_id]
                snapshot.update(
                    restarts=process.restarts,
                    crash_loop=process.crash_loop,
                    last_exit=process.last_exit,
                    ready_after=process.ready_after,
                )
            out[node_id] = snapshot
        return out

    def graph(self) -> dict[str, Any]:
        """The flows as a graph: every node and every wire (``{from, output, to}``)."""
        nodes: list[dict[str, Any]] = []
        wires: list[dict[str, Any]] = []
        for node_id, spec in self.flows.nodes.items():
            nodes.append({"id": node_id, "flow": spec.flow, "type": spec.type,
                          "name": spec.name, "inputs": spec.inputs, "outputs": spec.outputs})
            for index, targets in enumerate(spec.wires):
                wires.extend({"from": node_id, "output": index, "to": target.describe()}
                             for target in targets)
        flows = sorted({spec.flow for spec in self.flows.nodes.values()})
        return {"flows": flows, "nodes": nodes, "wires": wires}

    def restart_node(self, node_id: str) -> Deferred[None]:
        """Restart one node's process (KeyError: no such node)."""
        if self.supervisor is None or node_id not in self.runtimes:
            raise KeyError(node_id)
        return self.supervisor.restart(node_id)

    def add_tap(self, node_id: str, output: int, watcher: Any) -> Any:
        """Watch the messages of one node output (KeyError/IndexError naming what is
        wrong); returns the function that stops watching."""
        spec = self.flows.nodes.get(node_id)
        if spec is None or self.dispatcher is None:
            raise KeyError(node_id)
        if not 0 <= output < spec.outputs:
            raise IndexError(f"node {node_id} has {spec.outputs} output(s), no output {output}")
        return self.dispatcher.router.add_tap(node_id, output, watcher)

    # -- hot reload (hadaemon.reload calls these; docs/reload.md) ----------------------------

    def watched_files(self) -> list[pathlib.Path]:
        """Every node's file, and the flows.json."""
        files = {spec.file.resolve() for spec in self.flows.nodes.values()}
        if self.settings.flows_file is not None:
            files.add(self.settings.flows_file.resolve())
        return sorted(files)

    async def files_changed(self, paths: frozenset[pathlib.Path]) -> None:
        """Restart the nodes whose file changed (only them: data stays in the store); a
        file that does not compile is reported and its nodes keep running. A changed
        flows.json is applied as a config change."""
        done: set[str] = set()
        flows_file = self.settings.flows_file
        if flows_file is not None and flows_file.resolve() in paths:
            try:
                change = await self._apply(self.settings, self.context.daemon_config.base_dir)
            except (FlowError, RestartNeeded) as exc:
                self.log.error("{file} changed but is not applied, the nodes keep running "
                               "as they are: {error}", file=str(flows_file), error=str(exc))
            else:
                done.update(change.changed + change.added)
        ids = [node_id for node_id, runtime in self.runtimes.items()
               if node_id not in done and runtime.spec.file.resolve() in paths]
        await self.reload_nodes(ids)

    async def reload_nodes(self, node_ids: list[str]) -> None:
        """Restart these nodes with their file as it is now, unless it does not compile
        (reported with its file and line; the running process is left alone)."""
        base_dir = self.context.daemon_config.base_dir
        restarting = []
        for node_id in node_ids:
            spec = self.runtimes[node_id].spec
            error = reloading.check_code(spec, self.settings.interpreter, base_dir)
            if error is not None:
                report_code_error(self.bus, self.log, f"node:{node_id}", error,
                                  f"node {node_id} not reloaded, the previous version "
                                  "keeps running")
                continue
            self.log.info("node {node}: {file} changed; restarting it", node=node_id,
                          file=str(spec.file))
            restarting.append(self._restart_drained(node_id))
        if restarting:
            await self._all(restarting)

    def _restart_drained(self, node_id: str) -> Deferred[None]:
        """Restart a node once it answered the inputs in flight (within ``grace``);
        those that come meanwhile wait in its queue for the new process."""
        inputs = self.runtimes[node_id].inputs
        inputs.close()
        drained: Deferred[None] = Deferred()
        inputs.when_drained(lambda: None if drained.called else drained.callback(None))
        drained.addTimeout(self.settings.grace, self.reactor)
        drained.addErrback(lambda _: None)  # (those still running are lost, counted)
        supervisor = _supervisor(self.supervisor)
        return drained.addCallback(lambda _: supervisor.restart(node_id))

    async def _all(self, waiting: list[Deferred[None]]) -> None:
        """Wait for every restart and stop; one that failed (a bug) is logged."""
        for ok, result in await DeferredList(waiting, consumeErrors=True):
            if not ok:
                self.log.failure("a node's restart or stop failed", result)

    async def reconfigure(self, section: Mapping[str, Any], config: Config) -> None:
        """Apply a new ``[nodes]`` section node by node: added nodes start, removed nodes
        stop, changed nodes restart, the others keep their process. Other changed keys
        (socket, spawner, limits, policies) need a restart of the plugin."""
        new = NodesSettings.from_section(section)
        keys = reloading.restart_keys(self.settings, new)
        if keys:
            raise RestartNeeded(f"[nodes] {', '.join(keys)} changed")
        await self._apply(new, config.base_dir)

    async def _apply(self, new: NodesSettings, base_dir: pathlib.Path) -> reloading.FlowsChange:
        flows, warnings = build_flows(new, base_dir)
        if _reaper(self.reaper).forks_without_client and any(
                spec.wire != WIRE_BINRPC for spec in flows.nodes.values()):
            raise RestartNeeded("the first node on hadaemon's own wire needs a new spawner")
        for warning in warnings:
            self.log.warn("{warning}", warning=warning)
        change = reloading.compare(self.flows, flows, self.settings.interpreter,
                                   new.interpreter)
        supervisor, dispatcher = _supervisor(self.supervisor), _dispatcher(self.dispatcher)
        self.settings = new
        self.flows = dispatcher.flows = flows
        supervisor.interpreter = new.interpreter
        waiting: list[Deferred[None]] = []
        for node_id in change.removed:
            self._endpoints.pop(node_id).unregister()
            runtime = self.runtimes.pop(node_id)
            self._disconnect(runtime)
            waiting.append(supervisor.remove(node_id))
            runtime.inputs.clear(DestinationGone(f"node:{node_id}"))
            self._started_once.discard(node_id)
        for node_id in change.unchanged:
            self.runtimes[node_id].spec = flows.nodes[node_id]
        for node_id in change.changed + change.rewired:
            runtime = self.runtimes[node_id]
            runtime.spec = spec = flows.nodes[node_id]
            runtime.inputs.limit = self._make_inputs(spec).limit  # (its senders changed)
            if node_id in change.changed:
                runtime.filters = compile_filter(spec.events)
                waiting.append(self._restart_drained(node_id))
            elif runtime.link is not None:
                runtime.link.node_info_changed()
        for node_id in change.added:
            self.runtimes[node_id] = self._make_runtime(flows.nodes[node_id])
            self._register(node_id)
        dispatcher.router.set_inputs({i: r.inputs for i, r in self.runtimes.items()})
        for node_id in change.added:
            supervisor.add(self.runtimes[node_id])
        if change:
            self.log.info("nodes reconfigured: {change}", change=change.describe())
        if waiting:
            await self._all(waiting)
        return change

    # -- stop -------------------------------------------------------------------------------

    async def stop(self) -> None:
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._deadline = None
        for subscription in self._subscriptions:
            subscription.cancel()
        self._subscriptions = []
        self._unhook_drain()
        if self.dispatcher is not None:
            _dispatcher(self.dispatcher).router.stop()
        if self.supervisor is not None:
            await self.supervisor.stop_all()
        for runtime in self.runtimes.values():
            if runtime.link is not None:
                runtime.link.close("the daemon is stopping")
        if self._port is not None:
            stopping = self._port.stopListening()
            self._port = None
            if stopping is not None:
                await stopping
        for endpoint in self._endpoints.values():
            endpoint.unregister()
        self._endpoints = {}
        for node_id, runtime in self.runtimes.items():
            runtime.inputs.clear(DestinationGone(f"node:{node_id}"))
        if self.reaper is not None:
            await self.reaper.stop()
        if self._socket_dir is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._socket_dir / SOCKET_NAME)
            if self._temporary_dir:
                shutil.rmtree(self._socket_dir, ignore_errors=True)
        self.log.info("nodes stopped")


def _dispatcher(dispatcher: Dispatcher | None) -> Dispatcher:
    assert dispatcher is not None, "the nodes plugin has not started"
    return dispatcher


def _supervisor(supervisor: Supervisor | None) -> Supervisor:
    assert supervisor is not None, "the nodes plugin has not started"
    return supervisor


def _reaper(reaper: Reaper | None) -> Reaper:
    assert reaper is not None, "the nodes plugin has not started"
    return reaper


def _warn_shadowing(spec: NodeSpec, log: Any) -> None:
    # Python puts the script's own directory before PYTHONPATH: a homegear module there
    # would win over hadaemon's.
    folder = spec.file.parent
    for candidate in ("homegear.py", "homegear"):
        if (folder / candidate).exists():
            log.warn(
                "node {node}: {path} shadows hadaemon's homegear module for this node "
                "(a script's own directory comes first on its import path)",
                node=spec.id, path=str(folder / candidate),
            )


__all__ = ["SOCKET_NAME", "NodesPlugin", "build_flows"]
