"""A microServiceBus-style service whose actions raise what no service should.

Each must end that one call only: the daemon goes on serving (``ping``).
"""

import asyncio
import sys

from base_service import CustomService


class Unusual(BaseException):
    """A BaseException of the user's own."""


def interrupt_later():
    raise KeyboardInterrupt("from a loop callback")


async def interrupting_task():
    await asyncio.sleep(0)
    raise KeyboardInterrupt("from a task of its own")


class Hostile(CustomService):
    async def Start(self):
        self.tasks = []
        self.from_nodes = 0

    async def from_node(self, msg):
        # a node's output is wired here
        self.from_nodes += 1
        raise KeyboardInterrupt(f"from a node's message {self.from_nodes}")

    async def interrupt(self, msg):
        raise KeyboardInterrupt("from a service action")

    async def interrupt_later(self, msg):
        await asyncio.sleep(0.01)
        raise KeyboardInterrupt("after an await")

    async def exit(self, msg):
        sys.exit(3)

    async def unusual(self, msg):
        raise Unusual("of its own")

    async def own_task(self, msg):
        self.tasks.append(asyncio.get_running_loop().create_task(interrupting_task()))

    async def call_soon(self, msg):
        asyncio.get_running_loop().call_soon(interrupt_later)

    async def ping(self, msg):
        return "pong"
