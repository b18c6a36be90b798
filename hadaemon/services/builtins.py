"""The built-in services: ``logger``, ``orchestrator`` and ``com``.

Each accepts exactly the actions in its table; anything else is refused like a missing
method. They are ordinary mailboxes on the bus (``service:logger`` ...), so a node can
reach them too.

=================  ==========================================================================
``logger``         ``_debug`` (info line), ``_warning`` (warning line + ``ErrorEvent``
                   WARNING), ``_error`` (error line + ``ErrorEvent`` ERROR with fault code and
                   description), ``_track`` (``ServiceMessage`` on ``service/<id>/track``)
``orchestrator``   ``_start_service`` (an id, a name, or a new CustomService instance),
                   ``_stop_service`` (an id or name), ``_start_custom_services``,
                   ``_stop_custom_services``
``com``            ``_sendEvent``: ``ServiceMessage`` on ``service/<id>/message`` always, and
                   upstream on MQTT when an ``mqtt`` plugin runs
=================  ==========================================================================

Reactor thread only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from hadaemon.bus import Bus, BusMessage, Level
from hadaemon.services.errors import ActionRefused
from hadaemon.services.events import ServiceMessage
from hadaemon.services.mailbox import Mailbox
from hadaemon.services.message import QueueMessage
from hadaemon.services.reporting import Reporter
from hadaemon.services.upstream import Upstream

if TYPE_CHECKING:
    from hadaemon.services.orchestrator import Orchestrator

BuiltinAction = Callable[[QueueMessage], object]


class BuiltinService(Mailbox):
    """A built-in service: a fixed table of actions (trusted code, no tasks of its own)."""

    def __init__(
        self,
        service_id: str,
        actions: Mapping[str, BuiltinAction],
        bus: Bus,
        loop: asyncio.AbstractEventLoop,
        *,
        mailbox_size: int,
        concurrency: int,
    ) -> None:
        super().__init__(service_id, bus, loop, mailbox_size=mailbox_size,
                         concurrency=concurrency)
        self.actions = dict(actions)

    def refusal(self, action: str) -> str | None:
        if action in self.actions:
            return None
        accepted = ", ".join(sorted(self.actions))
        return f"the built-in service {self.id} has no action {action!r} (it accepts {accepted})"

    def receive(self, message: BusMessage) -> object:
        self.made_room()
        path = message.address.path
        action = self.actions.get(path)
        if action is None:
            raise ActionRefused(self.refusal(path) or path)
        qm = message if type(message) is QueueMessage else QueueMessage.arrived(
            message, self.id, path)
        return action(qm)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else repr(value)


def _arg(qm: QueueMessage, index: int) -> Any:
    return qm.message[index] if len(qm.message) > index else None


def logger_actions(reporter: Reporter, bus: Bus) -> dict[str, BuiltinAction]:
    """The ``logger``: service lines in ``hadaemon.services.<sender id>``."""

    def debug(qm: QueueMessage) -> None:
        reporter.service_log(qm.source).info("{text}", text=_text(qm.payload),
                                             service=qm.source)

    def warning(qm: QueueMessage) -> None:
        reporter.event(qm.source, _text(qm.payload), Level.WARNING)

    def error(qm: QueueMessage) -> None:
        code, description = _arg(qm, 1), _arg(qm, 2)
        text = _text(qm.payload)
        if code is not None or description is not None:
            text = f"{text} (fault {code}: {description})"
        reporter.event(qm.source, text, Level.ERROR, fault_code=code,
                       fault_description=description, thrown=True)

    def track(qm: QueueMessage) -> None:
        description = _arg(qm, 1)
        reporter.service_log(qm.source).debug("track: {payload!r}", payload=qm.payload)
        bus.publish(ServiceMessage(qm.source, ServiceMessage.TRACK, qm.payload,
                                   None if description is None else str(description)))

    return {"_debug": debug, "_warning": warning, "_error": error, "_track": track}


def com_actions(upstream: Upstream, bus: Bus) -> dict[str, BuiltinAction]:
    """The ``com`` service: telemetry to the bus, and upstream when possible."""

    def send_event(qm: QueueMessage) -> object:
        bus.publish(ServiceMessage(qm.source, ServiceMessage.MESSAGE, qm.payload))
        return upstream.send(qm.source, qm.payload)

    return {"_sendEvent": send_event}


def orchestrator_actions(orchestrator: Orchestrator) -> dict[str, BuiltinAction]:
    """The ``orchestrator``: starting and stopping services on request (one at a time)."""

    async def start_service(qm: QueueMessage) -> None:
        await orchestrator.start_service(qm.payload, requested_by=qm.source)

    async def stop_service(qm: QueueMessage) -> None:
        await orchestrator.stop_service(qm.payload, requested_by=qm.source)

    async def start_custom_services(qm: QueueMessage) -> None:
        orchestrator.start_custom_services()

    async def stop_custom_services(qm: QueueMessage) -> None:
        await orchestrator.stop_custom_services()

    return {
        "_start_service": start_service,
        "_stop_service": stop_service,
        "_start_custom_services": start_custom_services,
        "_stop_custom_services": stop_custom_services,
    }


__all__ = ["BuiltinService", "com_actions", "logger_actions", "orchestrator_actions"]
