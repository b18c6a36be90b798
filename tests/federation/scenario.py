"""The user files of the cross-host scenario (issue 15, section 6), as users write them.

Three hosts of the site ``home``:

- ``pi-a`` has the Zigbee stick: the zigbee2mqtt adapter (on the simulator's sample
  network) and the node ``a_sink``, which prints what reaches it;
- ``pi-b`` has only logic: the node ``b_relay`` gets the humidity of A's sensor
  (``eventHandler``, source ``zigbee2mqtt@pi-a``), switches C's lamp with ``setValue``
  (on when above 50 %) and tells C's service ``lampnote_py`` on its wire, by an id no
  other host has (``service:lampnote_py/seen``: no ``@host``);
- ``pi-c`` has the lamp (the ``demo`` plugin's) and the service ``LampNote``, which
  sends every change of the lamp to A's node (``node:a_sink@pi-a/0``).

What each prints is in its daemon's log: the tests wait for those lines.
"""

from __future__ import annotations

from typing import Any

SITE = "home"
SENSOR = "zigbee2mqtt/Living room temp"
LAMP = "Demo lamp"

# B: reacts to A's sensor, writes C's lamp and tells C's service.
B_RELAY = '''\
from homegear import Homegear
import sys
import time

lamp = None


def eventHandler(eventSource, peerId, channel, variableName, value):
    global lamp
    if variableName == "startUpComplete":
        print("b_relay ready", flush=True)
    if variableName != "humidity":
        return
    if lamp is None:  # C's lamp, as B's registry mirrors it (once C published it)
        devices = hg.listDevices(False, ["ID", "NAME"])
        lamp = next((d["ID"] for d in devices if d["NAME"] == "Demo lamp"), None)
        if lamp is None:
            print("b_relay: no lamp yet", flush=True)
            return
        print(f"b_relay: lamp is peer {lamp}", flush=True)
    on = value > 50
    hg.setValue(lamp, 0, "state", on)
    print(f"b_relay: humidity {value} from {eventSource} -> lamp {on}", flush=True)
    hg.nodeOutput(0, {"payload": {"humidity": value, "lamp": on}})


hg = Homegear(sys.argv[1], eventHandler, sys.argv[2])
while hg.connected():
    time.sleep(1)
'''

# A: prints what arrives from C's service (and where from).
A_SINK = '''\
from homegear import Homegear
import sys
import time


def nodeInput(nodeInfo, inputIndex, msg):
    print(f"a_sink got {msg['payload']!r} from {msg.get('source')}", flush=True)


hg = Homegear(sys.argv[1], None, sys.argv[2], nodeInput)
while hg.connected():
    time.sleep(1)
'''

# C: the lamp's changes to A's node; what B's node says, noted.
LAMP_NOTE = '''\
from base_service import CustomService


class LampNote(CustomService):
    async def Start(self):
        await self.Debug("lampnote ready")

    async def on_state(self, msg):
        event = msg.message[0]
        await self.SubmitAction("node:a_sink@pi-a", "0",
                                {"payload": {"lamp": event["value"]}, "source": "lampnote"})

    async def seen(self, msg):
        await self.Debug(f"lampnote seen {msg.message[0]!r} from {msg.source}")
'''

# C: counts what arrives (the broker-restart test): one line per message, appended.
TALLY = '''\
from base_service import CustomService


class Tally(CustomService):
    async def Start(self):
        self.path = self.GetPropertyValue("static", "path")
        await self.Debug("tally ready")

    async def add(self, msg):
        with open(self.path, "a") as out:
            out.write(f"{msg.message[0]['seq']}\\n")
        return msg.message[0]["seq"]
'''

def scenario_sections() -> dict[str, dict[str, Any]]:
    """Each host's config sections and files (besides mqtt and federation, which the
    harness adds): ``{host: {"sections": ..., "files": ...}}``."""
    zigbee = {"report_interval": 0.0, "latency": 0.0}
    return {
        "pi-a": {
            "sections": {
                "daemon": {"plugins": ["zigbee2mqtt_simulator", "zigbee2mqtt", "nodes"]},
                "zigbee2mqtt_simulator": zigbee,
                "zigbee2mqtt": {"initial_query": False},
                "nodes": {"grace": 2.0, "node": [
                    {"id": "a_sink", "file": "a_sink.py", "outputs": 0,
                     "events": ["nothing/at/all"]}]},
            },
            "files": {"a_sink.py": A_SINK},
        },
        "pi-b": {
            "sections": {
                "daemon": {"plugins": ["nodes"]},
                "nodes": {"grace": 2.0, "node": [
                    {"id": "b_relay", "file": "b_relay.py",
                     "events": ["variable/zigbee2mqtt@pi-a/+/0/humidity"],
                     "wires": [["service:lampnote_py/seen"]]}]},
            },
            "files": {"b_relay.py": B_RELAY},
        },
        "pi-c": {
            "sections": {
                "daemon": {"plugins": ["demo", "services"]},
                "demo": {"interval": 3600.0, "follow": False, "latency": 0.0},
                "services": {"directories": ["services"], "service": {
                    "LampNote": {"subscribe": {"variable/demo/+/0/state": "on_state"}}}},
            },
            "files": {"services/LampNote.py": LAMP_NOTE},
        },
    }


READY = {"pi-a": "zigbee2mqtt: device Garden 2ch", "pi-b": "b_relay ready",
         "pi-c": "lampnote ready"}

# The fault tests' services: B and C answer pings; C tallies (TALLY, above).
PONG = '''\
from base_service import CustomService


class Pong(CustomService):
    async def Start(self):
        await self.Debug("pong ready")

    async def ping(self, msg):
        await self.Debug(f"pong {msg.message[0]['seq']} from {msg.source}")
        return msg.message[0]["seq"]
'''
