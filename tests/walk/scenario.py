"""The walk of issue 12: one zigbee sensor report through all three worlds to a lamp.

A zigbee2mqtt-style report (``zigbee2mqtt/Living room temp``, ``{"humidity": 42}``) on a
real broker reaches the zigbee adapter, the registry reports the change on the bus, a
real node process's ``eventHandler`` gets it and answers with ``nodeOutput``, whose wire
leads to a service action, which sets the zigbee lamp (``device:<peer>``): the daemon
publishes ``zigbee2mqtt/Hallway Hue/set`` ``{"brightness": 42}``. docs/architecture.md
("The walk") follows it module by module.

The user files here are written as users write them: the node with ``from homegear
import Homegear``, the service as a ``CustomService`` subclass. ``write_walk`` writes
them and a config as ``hadaemon run`` takes it, also for the parts of the walk that
``benchmarks/walk.py`` compares it with.
"""

from __future__ import annotations

import pathlib
from collections.abc import Mapping
from typing import Any

from hadaemon.testing import write_config

SENSOR = "zigbee2mqtt/Living room temp"
LAMP = "Hallway Hue"
LAMP_SET = f"zigbee2mqtt/{LAMP}/set"
SERVICE_ACTION = "service:walklamp_py/dim"

# The node: reacts to the sensor's humidity (its `events` filter lets only those through),
# finds the lamp's peer id by name once (Homegear's listDevices), and sends both on. What
# it prints is in the daemon's log: tests and the benchmark wait for "relay ready" (the
# daemon sends startUpComplete only to nodes it sends events to: they answered its ping).
NODE = '''\
from homegear import Homegear
import sys
import time

LAMP = "Hallway Hue"
lamp = None


def eventHandler(eventSource, peerId, channel, variableName, value):
    global lamp
    if variableName == "startUpComplete":  # the daemon sends us events from now on
        print("relay ready", flush=True)
    if variableName != "humidity":
        return
    if lamp is None:
        devices = hg.listDevices(False, ["ID", "NAME"])
        lamp = next(d["ID"] for d in devices if d["NAME"] == LAMP)
        print(f"lamp {LAMP}: peer {lamp}", flush=True)
    hg.nodeOutput(0, {"payload": value, "lamp": lamp})


hg = Homegear(sys.argv[1], eventHandler, sys.argv[2])
while hg.connected():
    time.sleep(1)
'''

# The service: the node's output wired to its action `dim`; it sets the lamp.
SERVICE = '''\
from base_service import CustomService


class WalkLamp(CustomService):
    async def Start(self):
        await self.Debug("walk lamp ready")

    async def dim(self, msg):
        request = msg.message[0]
        await self.SubmitAction(f"device:{request['lamp']}", "",
                                {"brightness": int(request["payload"])})
'''

# The node alone after zigbee: the node's output goes straight to the lamp (no service).
NODE_DIRECT = NODE.replace(
    'hg.nodeOutput(0, {"payload": value, "lamp": lamp})',
    'hg.nodeOutput(0, {"payload": {"brightness": int(value)}})',
)

# The service alone after zigbee: it subscribes to the sensor's humidity (no node).
SERVICE_DIRECT = '''\
from base_service import CustomService


class WalkLamp(CustomService):
    async def Start(self):
        self.lamp = self.GetPropertyValue("static", "lamp")

    async def on_humidity(self, msg):
        await self.SubmitAction(f"device:{self.lamp}", "",
                                {"brightness": int(msg.message[0]["value"])})
'''

# The walk with timestamps (CLOCK_MONOTONIC: one clock for every process on Linux): the
# node stamps its message, the service its action's start, and sends both upstream (MQTT,
# TRACE_TOPIC) after setting the lamp; benchmarks/walk.py --trace splits the latency.
TRACE_TOPIC = "walk/trace"
NODE_TRACE = NODE.replace(
    'hg.nodeOutput(0, {"payload": value, "lamp": lamp})',
    'hg.nodeOutput(0, {"payload": value, "lamp": lamp, "t_node": time.perf_counter()})',
)
SERVICE_TRACE = '''\
import time

from base_service import CustomService


class WalkLamp(CustomService):
    async def dim(self, msg):
        t_service = time.perf_counter()
        request = msg.message[0]
        await self.SubmitAction(f"device:{request['lamp']}", "",
                                {"brightness": int(request["payload"])})
        await self.SubmitMessage({"value": request["payload"], "t_node": request["t_node"],
                                  "t_service": t_service})
'''

# What each path runs; "walk" is the whole walk, the others its parts.
PATHS = ("walk", "zigbee", "zigbee+node", "zigbee+service", "walk+trace")


def write_walk(
    directory: pathlib.Path,
    host: str,
    port: int,
    *,
    path: str = "walk",
    lamp_peer: int | None = None,
    automation: str | None = None,
    daemon: Mapping[str, Any] | None = None,
) -> pathlib.Path:
    """Write the user files and the config of ``path`` (one of PATHS) to ``directory``.

    ``zigbee+node`` and ``zigbee+service`` address the lamp by its peer id, as their users
    would (``lamp_peer``: it is fixed per state directory, see the benchmark); ``zigbee``
    runs the pyziggy ``automation`` given (the benchmark's: ``benchmarks/zigbee.py``'s
    mirror, on the typed module generated for the simulator's sample network).
    """
    if path not in PATHS:
        raise ValueError(f"unknown path {path!r}: one of {', '.join(PATHS)}")
    if path in ("zigbee+node", "zigbee+service") and lamp_peer is None:
        raise ValueError(f"path {path!r} needs the lamp's peer id")
    if path == "zigbee" and automation is None:
        raise ValueError("path 'zigbee' needs an automation")
    directory.mkdir(parents=True, exist_ok=True)
    services = directory / "services"
    services.mkdir(exist_ok=True)
    plugins = ["mqtt", "zigbee2mqtt"]
    sections: dict[str, Any] = {
        "daemon": {"state_dir": "var", "plugins": plugins, "stop_timeout": 10.0,
                   **(daemon or {})},
        "mqtt": {"host": host, "port": port, "client_id": "walk-daemon"},
        "zigbee2mqtt": {"initial_query": False},
    }
    node: dict[str, Any] = {"id": "relay", "file": "relay.py",
                            "events": ["variable/zigbee2mqtt/+/0/humidity"]}
    if path in ("walk", "walk+trace"):
        trace = path == "walk+trace"
        (directory / "relay.py").write_text(NODE_TRACE if trace else NODE)
        (services / "WalkLamp.py").write_text(SERVICE_TRACE if trace else SERVICE)
        node["wires"] = [[SERVICE_ACTION]]
    elif path == "zigbee+node":
        (directory / "relay.py").write_text(NODE_DIRECT)
        node["wires"] = [[{"address": f"device:{lamp_peer}", "payload_only": True}]]
    elif path == "zigbee+service":
        (services / "WalkLamp.py").write_text(SERVICE_DIRECT)
    else:
        from hadaemon.zigbee.codegen import write_module
        from hadaemon.zigbee.simulator import sample_devices

        (directory / "mirror.py").write_text(automation or "")
        write_module(directory, sample_devices())  # its devices exist at import time
        sections["zigbee2mqtt"]["automations"] = ["mirror.py"]
        sections["zigbee2mqtt"]["typecheck"] = False
    if path in ("walk", "zigbee+service", "walk+trace"):
        plugins.append("services")
        service: dict[str, Any] = {}
        if path == "zigbee+service":
            service = {"static": {"lamp": lamp_peer},
                       "subscribe": {"variable/zigbee2mqtt/+/0/humidity": "on_humidity"}}
        sections["services"] = {"directories": ["services"], "service": {"WalkLamp": service},
                                "com_topic": TRACE_TOPIC, "com_qos": 0}
    if path in ("walk", "zigbee+node", "walk+trace"):
        plugins.append("nodes")
        sections["nodes"] = {"grace": 2.0, "start_deadline": 1.0, "node": [node]}
    return write_config(directory / "hadaemon.toml", sections)
