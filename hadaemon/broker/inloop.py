"""amqtt, a pure-Python broker, run in the daemon's own asyncio loop (the reactor's):
the embedded broker where mosquitto is not installed. No process to supervise; it ends
with the daemon however the daemon ends."""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred

from hadaemon.broker.configs import Listener, amqtt_config

__all__ = ["AmqttBroker"]


class AmqttBroker:
    """One run of an amqtt broker in the running asyncio loop. Reactor thread only.

    ``on_line(level, text)`` gets amqtt's log records (level: "error", "warn" or "debug")
    while it runs.
    """

    def __init__(self, listener: Listener, *, on_line: Callable[[str, str], None]) -> None:
        self._config = amqtt_config(listener)
        self._relay = _Relay(on_line)
        self._broker: Any = None

    def start(self) -> Deferred[None]:
        """Open its listener; fires once it accepts connections."""
        logger = logging.getLogger("amqtt")
        logger.addHandler(self._relay)
        if logger.level == logging.NOTSET or logger.level > logging.INFO:
            logger.setLevel(logging.INFO)
        logger.propagate = False  # not also to stderr through logging's last resort
        return Deferred.fromFuture(asyncio.ensure_future(self._start()))

    async def _start(self) -> None:
        module: Any = importlib.import_module("amqtt.broker")
        # (made here: amqtt's Broker takes the running loop when it is made)
        self._broker = module.Broker(self._config)
        try:
            await self._broker.start()
        except BaseException:
            self._detach()
            raise

    def stop(self) -> Deferred[None]:
        """Close its listener and its clients' sessions."""
        return Deferred.fromFuture(asyncio.ensure_future(self._stop()))

    async def _stop(self) -> None:
        broker, self._broker = self._broker, None
        try:
            if broker is not None and broker.transitions.state == "started":
                await broker.shutdown()
        finally:
            self._detach()

    def _detach(self) -> None:
        logging.getLogger("amqtt").removeHandler(self._relay)


class _Relay(logging.Handler):
    """amqtt's log records, handed on as lines (its INFO chatter at debug level)."""

    def __init__(self, on_line: Callable[[str, str], None]) -> None:
        super().__init__(logging.INFO)
        self._on_line = on_line

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR:
            level = "error"
        elif record.levelno >= logging.WARNING:
            level = "warn"
        else:
            level = "debug"
        try:
            text = record.getMessage()
        except Exception:  # a bad format string in a record: keep the raw one
            text = str(record.msg)
        self._on_line(level, text)
