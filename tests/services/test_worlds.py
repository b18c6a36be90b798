"""Services and the other worlds: nodes, devices, the bus's events, MQTT upstream.

The nodes adapter is built separately; a node here is what it will be to the bus, an
endpoint ``node:<id>`` (registered by the test). Devices are real registry devices with a
DeviceOwner, as every adapter registers them.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

from hadaemon.bus import Address, ErrorEvent, Level
from hadaemon.registry import Access, ChannelSpec, Device, ValueType, VariableSpec
from hadaemon.services import ServiceMessage
from hadaemon.testing import BlockingClient, Broker, run_in_reactor, wait_until

from .helpers import make_config, running

BRIDGE = '''
from base_service import CustomService

class Bridge(CustomService):
    async def Start(self):
        self.lamp = self.GetPropertyValue("static", "lamp")

    async def from_node(self, msg):
        # a node's output wired to service:bridge_py/from_node
        payload = msg.message[0]["payload"]
        await self.SubmitAction("node:display", "0", {"payload": f"lamp {payload}",
                                                     "from": msg.source})
        await self.SubmitAction(f"device:{self.lamp}", "", {"state": payload == "on"})

    async def on_lamp(self, msg):
        # a device change, delivered because the config subscribes to it
        change = msg.message[0]
        await self.SubmitAction("node:display", "1", {"payload": [change["name"],
                                change["value"], change["previous"], change["type"]]})

    async def set_bad(self, msg):
        await self.SubmitAction(f"device:{self.lamp}", "0", {"state": "not a bool"})
'''


class Lamp:
    """A DeviceOwner: a lamp that confirms what it is told."""

    def __init__(self) -> None:
        self.writes: list[dict[str, Any]] = []
        self.registry: Any = None

    def write_values(self, device: Device, channel: int, values: Mapping[str, Any]) -> None:
        self.writes.append(dict(values))
        self.registry.report_many(device.peer_id, channel, values)

    def query_values(self, device: Device, channel: int, names: Sequence[str]) -> None:
        return None


def test_service_sends_to_a_node_and_a_device_and_receives_from_both(
    tmp_path: pathlib.Path,
) -> None:
    # The lamp's peer id is allocated on first use and persisted: 1 in a fresh store.
    config = make_config(
        tmp_path, {"Bridge": BRIDGE},
        {"Bridge": {"static": {"lamp": 1},
                    "subscribe": {"variable/lamps/1/0/state": "on_lamp"}}},
    )

    async def scenario(reactor: Any) -> tuple[list[Any], list[Any], list[str]]:
        from hadaemon.daemon import Daemon

        from .helpers import Run, plugin_catalog

        daemon = Daemon(config, reactor, catalog=plugin_catalog())
        run = Run(daemon)
        display: list[tuple[str, Any]] = []
        daemon.bus.register("node:display", lambda a, m: display.append((a.path, m)))
        lamp = Lamp()
        daemon.startService()
        await daemon.started
        try:
            lamp.registry = daemon.registry
            device = daemon.registry.add_device(
                "lamps", "lamp-1", "Lamp", [ChannelSpec(0, [VariableSpec(
                    "state", ValueType.BOOL, Access.ALL)])], owner=lamp)
            assert device.peer_id == 1
            # a node output wired to the service's action: a Node-BLUE message dict
            await daemon.bus.send("service:bridge_py/from_node", {"payload": "on"})
            await wait_until(reactor, lambda: len(display) >= 2)
            await daemon.bus.send("service:bridge_py/from_node", {"payload": "off"})
            await wait_until(reactor, lambda: len(display) >= 4)
            await daemon.bus.send("service:bridge_py/set_bad", None)
            await wait_until(reactor, lambda: run.events.errors("service:bridge_py"))
            return display, lamp.writes, run.events.texts("service:bridge_py")
        finally:
            await daemon.stopService()

    display, writes, warnings = run_in_reactor(scenario, timeout=10)
    assert writes == [{"state": True}, {"state": False}]
    assert sorted(display, key=lambda d: d[0]) == [
        ("0", {"payload": "lamp on", "from": "bus"}),
        ("0", {"payload": "lamp off", "from": "bus"}),
        ("1", {"payload": ["state", True, None, "VariableChanged"]}),
        ("1", {"payload": ["state", False, True, "VariableChanged"]}),
    ]
    assert len(warnings) == 1
    assert warnings[0].startswith("device:1/0 failed: state: expected a boolean")


TELEMETRY = '''
from base_service import CustomService

class Telemetry(CustomService):
    async def go(self, msg):
        await self.SubmitMessage({"temperature": 21.5})
        await self.SubmitMessage("plain text")
        await self.Track({"step": 1}, "tracked")
        await self.Warning("careful")
        await self.ThrowError("it broke", "E42", "the widget broke")
        await self.Debug("debug line")
'''


def test_telemetry_warnings_and_errors_reach_the_bus(tmp_path: pathlib.Path) -> None:
    config = make_config(tmp_path, {"Telemetry": TELEMETRY})

    async def scenario(reactor: Any) -> tuple[list[Any], list[ErrorEvent]]:
        async with running(config, reactor) as run:
            messages: list[ServiceMessage] = []
            run.bus.subscribe("service/telemetry_py/+", messages.append)
            await run.bus.send("service:telemetry_py/go", None)
            await wait_until(reactor, lambda: len(messages) >= 3
                             and len(run.events.errors("service:telemetry_py")) >= 2)
            return messages, run.events.errors("service:telemetry_py")

    messages, errors = run_in_reactor(scenario, timeout=10)
    assert [(m.topic, m.payload, m.description) for m in messages] == [
        ("service/telemetry_py/message", {"temperature": 21.5}, None),
        ("service/telemetry_py/message", "plain text", None),
        ("service/telemetry_py/track", {"step": 1}, "tracked"),
    ]
    assert [(e.level, e.message) for e in errors] == [
        (Level.WARNING, "careful"),
        (Level.ERROR, "it broke (fault E42: the widget broke)"),
    ]
    assert errors[1].details["fault_code"] == "E42"
    assert errors[1].details["fault_description"] == "the widget broke"


def test_submit_message_goes_upstream_through_the_mqtt_plugin(
    tmp_path: pathlib.Path, broker: Broker
) -> None:
    watcher = BlockingClient(broker).connect()
    try:
        _upstream(tmp_path, broker, watcher)
    finally:
        watcher.close()


def _upstream(tmp_path: pathlib.Path, broker: Broker, watcher: BlockingClient) -> None:
    watcher.subscribe("plant/#")
    config = make_config(
        tmp_path, {"Telemetry": TELEMETRY}, plugins=("mqtt", "services"),
        extra_sections={"mqtt": {"host": broker.host, "port": broker.port,
                                 "client_id": "services-test", "reconnect_delay": 0.05}},
        com_topic="plant/{node}/{service}", node_name="node-7",
    )

    async def scenario(reactor: Any) -> list[str]:
        async with running(config, reactor) as run:
            mqtt: Any = run.daemon.plugin("mqtt")
            await wait_until(reactor, lambda: mqtt.connected)
            assert run.orchestrator.upstream_state() == "connected"
            await run.bus.send("service:telemetry_py/go", None)
            await wait_until(reactor, lambda: mqtt.connection.queued == 0
                             and run.events.errors("service:telemetry_py"))
            return [e.message for e in run.events.errors("service:com")]

    com_errors = run_in_reactor(scenario, timeout=15)
    assert com_errors == []
    got = [watcher.expect("plant/#", timeout=5) for _ in range(2)]
    assert [m.topic for m in got] == ["plant/node-7/telemetry_py"] * 2
    assert json.loads(got[0].payload) == {"temperature": 21.5}
    assert got[1].payload == b"plain text"


def test_upstream_failures_are_reported_once_and_the_bus_still_gets_them(
    tmp_path: pathlib.Path,
) -> None:
    # An mqtt plugin whose broker is not there: QoS 0 publishes fail at once.
    from hadaemon.testing import free_tcp_port

    config = make_config(
        tmp_path, {"Telemetry": TELEMETRY}, plugins=("mqtt", "services"),
        extra_sections={"mqtt": {"host": "127.0.0.1", "port": free_tcp_port(),
                                 "connect_timeout": 0.5}},
        com_qos=0,
    )

    async def scenario(reactor: Any) -> tuple[list[str], int]:
        async with running(config, reactor) as run:
            messages: list[ServiceMessage] = []
            run.bus.subscribe("service/+/message", messages.append)
            for _ in range(3):
                await run.bus.send("service:telemetry_py/go", None)
            await wait_until(reactor, lambda: len(messages) >= 6
                             and run.events.errors("service:com"))
            return [e.message for e in run.events.errors("service:com")], len(messages)

    com_errors, published = run_in_reactor(scenario, timeout=15)
    assert published == 6
    assert len(com_errors) == 1, com_errors
    # (the topic names the daemon: [daemon].name, by default the host name)
    assert com_errors[0].startswith(f"publishing upstream on hadaemon/{config.core.name}/"
                                    "services/telemetry_py/events failed:")


WATCHER = '''
from base_service import CustomService

class Watcher(CustomService):
    async def StateUpdate(self, msg):
        state = msg.message[0]
        await self.SubmitAction("node:probe", "state",
                                [state["state"], state["reported"]["upstream"]])
        await self.SubmitMessage({"state": state["state"]})
'''


def test_broker_killed_and_back_reaches_services_as_state_updates(
    tmp_path: pathlib.Path, broker: Broker
) -> None:
    config = make_config(
        tmp_path, {"Watcher": WATCHER}, plugins=("mqtt", "services"),
        extra_sections={"mqtt": {"host": broker.host, "port": broker.port,
                                 "client_id": "services-fault", "reconnect_delay": 0.05,
                                 "reconnect_delay_max": 0.2}},
    )

    async def scenario(reactor: Any) -> tuple[list[Any], list[Any]]:
        async with running(config, reactor) as run:
            messages: list[ServiceMessage] = []
            run.bus.subscribe("service/watcher_py/message", messages.append)

            def seen(state: str) -> bool:
                return any(s[0] == state for s in run.probe.values("state"))

            await wait_until(reactor, lambda: seen("connected") and seen("started"))
            broker.kill()                        # like a crash
            await wait_until(reactor, lambda: seen("disconnected"))
            await reactor_thread(reactor, broker.restart)
            await wait_until(reactor, lambda: seen("reconnected"))
            await wait_until(reactor, lambda: len(messages) >= 4)
            return run.probe.values("state"), [m.payload["state"] for m in messages]

    states, messages = run_in_reactor(scenario, timeout=30)
    # "started" and "connected" race (the broker connection is made in the background)
    assert sorted(map(tuple, states[:2])) in (
        [("connected", "connected"), ("started", "connected")],
        [("connected", "connected"), ("started", "disconnected")],
    )
    assert states[2:] == [["disconnected", "disconnected"], ["reconnected", "reconnected"]]
    # the bus got every SubmitMessage, the broker outage included
    assert sorted(messages[:2]) == ["connected", "started"]
    assert messages[2:4] == ["disconnected", "reconnected"]


async def reactor_thread(reactor: Any, fn: Any) -> Any:
    """Run a blocking call (restarting the broker) in a thread, not on the reactor."""
    from twisted.internet.threads import deferToThreadPool

    return await deferToThreadPool(reactor, reactor.getThreadPool(), fn)


def test_messages_from_other_worlds_keep_their_shape(tmp_path: pathlib.Path) -> None:
    echo = '''
    from base_service import CustomService
    class Echo(CustomService):
        async def echo(self, msg):
            return [msg.source, msg.destination, msg.action, list(msg.message)]
    '''
    config = make_config(tmp_path, {"Echo": echo})

    async def scenario(reactor: Any) -> list[Any]:
        async with running(config, reactor) as run:
            return [
                await run.bus.send("service:echo_py/echo", {"payload": 1, "topic": "t"}),
                await run.bus.send(Address("service", "echo_py", "echo"), None),
                await run.bus.send("service:echo_py/echo", b"\x00garbage\xff"),
            ]

    results = run_in_reactor(scenario, timeout=10)
    assert results == [
        ["bus", "echo_py", "echo", [{"payload": 1, "topic": "t"}]],
        ["bus", "echo_py", "echo", [None]],
        ["bus", "echo_py", "echo", [b"\x00garbage\xff"]],
    ]
