"""``CustomService``: the base class of microServiceBus-style services, with the original
agent's names, signatures and sync/async kinds. Service files import it as
``from base_service import CustomService`` (see :mod:`hadaemon.services.loading`).

The ``queue`` a service's constructor receives is hadaemon's :class:`ServiceQueue`, its way
into the orchestrator; every method below goes through it. A service constructed outside
hadaemon with a plain ``asyncio.Queue`` (a unit test, say) still works: messages are then
put on that queue as the original did, for the test to read.
"""

from __future__ import annotations

import asyncio
import importlib
import socket
from collections.abc import Mapping
from typing import Any

from hadaemon.services.message import QueueMessage
from hadaemon.services.routing import ServiceQueue

# The CustomService API: never dispatchable as actions, whoever sends them.
RESERVED = frozenset(
    {
        "Start", "Stop", "StateUpdate", "SubmitAction", "Debug", "Warning", "ThrowError",
        "Track", "SubmitMessage", "StartService", "StopCustomServices",
        "StartCustomServices", "get_settings", "GetPropertyValue", "GetState",
        "AddPipPackage", "printf", "msb_signed_in",
    }
)
# Hooks only the orchestrator calls.
HOOKS = frozenset({"StateUpdate", "msb_signed_in"})


class CustomService:
    """Subclass it in ``<Name>.py`` as ``class <Name>(CustomService)``; override
    ``Start``/``Stop`` and add ``async def`` actions taking a :class:`QueueMessage`.

    Thread affinity: everything runs on the daemon's one loop (the reactor thread).
    """

    def __init__(self, id: str, queue: Any, config: Mapping[str, Any]) -> None:
        # Runs before the loop is needed: nothing here may need a running loop.
        self.id = id
        self.queue = queue
        self.config = config
        self.task: asyncio.Task[Any] | None = None  # the running Start, as in the original

    # -- hooks -------------------------------------------------------------------------

    async def Start(self) -> None:
        """Called when the service starts; may return at once or run forever."""

    async def Stop(self) -> None:
        """Called when the service stops (its Start task was cancelled first)."""

    async def StateUpdate(self, msg: QueueMessage) -> None:
        """The daemon's state changed; ``msg.message[0]`` has ``state``, ``desired``,
        ``reported`` (see docs/services.md)."""

    async def msb_signed_in(self, msg: QueueMessage) -> None:
        """Broadcast once the daemon started; ``msg.message[0]`` is ``get_settings()``."""

    # -- messages ------------------------------------------------------------------------

    async def SubmitAction(self, destination: str, action: str, message: Any) -> None:
        """Send ``message`` to ``destination``'s async method ``action`` (fire and forget).

        ``destination`` is a service id (``"someservice_py"``, any case), ``"*"`` for every
        service having ``action``, or a bus address (anything containing ``":"``:
        ``"node:<id>"`` with action ``"<input>"``, ``"device:<peer id>"`` with a dict of
        values); problems come back as warnings through this service's logger.
        """
        queue = self.queue
        if type(queue) is ServiceQueue:  # the fast path: no coroutine of its own
            pending = queue.route(QueueMessage(self.id, destination, action, message))
            if pending is not None:
                await pending
        else:
            await _submit(self, QueueMessage(self.id, destination, action, message))

    async def Debug(self, message: Any) -> None:
        await _submit(self, QueueMessage(self.id, "logger", "_debug", message))

    async def Warning(self, message: Any) -> None:
        await _submit(self, QueueMessage(self.id, "logger", "_warning", message))

    async def ThrowError(
        self, message: Any, fault_code: Any = None, fault_description: Any = None
    ) -> None:
        """An error: logged in red and raised on the bus as an ``ErrorEvent``."""
        await _submit(
            self,
            QueueMessage(self.id, "logger", "_error", message, fault_code, fault_description),
        )

    async def Track(self, message: Any, description: Any = None) -> None:
        await _submit(self, QueueMessage(self.id, "logger", "_track", message, description))

    async def SubmitMessage(self, message: Any) -> None:
        """Telemetry upstream: on the bus always, on MQTT when an ``mqtt`` plugin runs."""
        await _submit(self, QueueMessage(self.id, "com", "_sendEvent", message))

    async def StartService(self, service: Any) -> None:
        """Start a stopped service (by id or name), or a new CustomService instance."""
        await _submit(self, QueueMessage(self.id, "orchestrator", "_start_service", service))

    async def StopCustomServices(self) -> None:
        await _submit(self, QueueMessage(self.id, "orchestrator", "_stop_custom_services", ""))

    async def StartCustomServices(self) -> None:
        # The original sent this to "msb", which has no such action: a bug, not kept.
        await _submit(
            self, QueueMessage(self.id, "orchestrator", "_start_custom_services", "")
        )

    # -- synchronous helpers -----------------------------------------------------------

    def get_settings(self) -> dict[str, Any]:
        """The node's settings; ``nodeName`` is the daemon's name."""
        if isinstance(self.queue, ServiceQueue):
            return self.queue.settings()
        return {"nodeName": socket.gethostname()}

    def GetPropertyValue(self, category: str, prop: str) -> Any:
        """A ``static``, ``security`` or ``general`` property; the string ``"undefined"``
        when missing, as in the original."""
        try:
            for entry in self.config[f"{category}Config"]:
                if entry["id"] == prop:
                    return entry["value"]
        except Exception:
            return "undefined"
        return "undefined"

    def GetState(self) -> Any:
        """The general property ``enabled``: a service starts only when it is true."""
        return self.GetPropertyValue("general", "enabled")

    def AddPipPackage(self, package: str, module: str, name: str) -> Any:
        """``getattr(import_module(module), name)``; installs ``package`` first only when
        ``[services].pip_install`` allows it (never through a shell, off the loop)."""
        if isinstance(self.queue, ServiceQueue):
            return self.queue.add_pip_package(package, module, name)
        return getattr(importlib.import_module(module), name)

    def printf(self, msg: Any) -> None:
        print(msg, flush=True)


async def _submit(service: CustomService, qm: QueueMessage) -> None:
    queue = service.queue
    if isinstance(queue, ServiceQueue):
        pending = queue.route(qm)
        if pending is not None:
            await pending
    else:
        await queue.put(qm)


__all__ = ["HOOKS", "RESERVED", "CustomService", "QueueMessage"]
