"""Example microServiceBus-style service (runs unchanged under the real agent's API).

It watches the demo thermometer through a bus subscription (see [services.service.
ComfortMonitor] in etc/hadaemon.toml), warns when it gets cold, and counts the readings
it has seen in a system variable through the bus address of system variables. The
hall_presence node (etc/nodes/) sends it what the zigbee motion sensor sees
(``on_presence``): three worlds in one chain.
"""

from base_service import CustomService


class ComfortMonitor(CustomService):
    def __init__(self, id, queue, config):
        super().__init__(id, queue, config)
        self.readings = 0

    async def Start(self):
        try:
            self.minimum = float(self.GetPropertyValue("static", "minimum"))
            await self.Debug(f"Started, warning below {self.minimum} °C")
        except Exception as ex:
            await self.Debug(f"Failed to start: {ex}")

    async def Stop(self):
        await self.Debug(f"Stopped after {self.readings} readings")

    async def on_presence(self, msg):
        presence = msg.message[0]["payload"]
        state = "occupied" if presence["occupied"] else "empty"
        await self.Debug(f"{presence['room']} is {state} (from the hall_presence node)")

    async def on_temperature(self, msg):
        event = msg.message[0]
        self.readings += 1
        if event["value"] < self.minimum:
            await self.Warning(f"{event['value']} °C is below {self.minimum} °C")
        await self.SubmitAction("device:0", "", {"comfort_readings": self.readings})
