"""The federation example, host "hall" (etc/federation/hall.toml): what the office's
node says arrives here as a message from ``node:office_light@office``."""

from base_service import CustomService


class HallLog(CustomService):
    async def Start(self):
        await self.Debug("hall log ready")

    async def note(self, msg):
        note = msg.message[0]["payload"]
        state = "occupied" if note["occupied"] else "empty"
        await self.Debug(f"office: the hall is {state}, the office lamp follows "
                         f"(from {msg.source})")
