from base_service import CustomService


class Greeter(CustomService):
    async def Start(self):
        await self.Debug("Started")

    async def Stop(self):
        await self.Debug("Stopped")

    async def greet(self, msg):
        await self.SubmitAction("node:n1", "0", {"payload": f"hello {msg.message[0]}"})
        return f"hello {msg.message[0]}"
