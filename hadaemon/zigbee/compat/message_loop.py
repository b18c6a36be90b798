"""pyziggy's message loop, hosted by the reactor (``pyziggy.message_loop`` for automations).

In pyziggy the "message thread" runs a loop of its own; here it is the reactor thread.
``post_message`` and ``AsyncUpdater._trigger_async_update`` may be called from any
thread (they hand over with ``callFromThread``); timers and callbacks run on the reactor.

These classes are bound to one running automation when hadaemon loads it (each
automation gets its own ``message_loop``); used outside one they raise a clear error.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar, final

from hadaemon.zigbee.broadcasters import Broadcaster


class LoopHost:
    """What the classes below need from the automation running them."""

    def post(self, callback: Callable[[], object]) -> None:
        """Run ``callback`` on the reactor thread soon (any thread may call this)."""
        raise NotImplementedError

    def call_later(self, delay: float, callback: Callable[[], object]) -> Any:
        raise NotImplementedError

    def request_stop(self, return_code: int) -> None:
        raise NotImplementedError

    def add_timer(self, timer: MessageLoopTimer) -> None:
        raise NotImplementedError


def _host(cls: type) -> LoopHost:
    host = getattr(cls, "_host", None)
    if host is None:
        raise RuntimeError(
            "pyziggy's message loop only exists inside an automation that hadaemon runs "
            "(list the file in [zigbee2mqtt].automations or use 'hadaemon zigbee run')"
        )
    assert isinstance(host, LoopHost)
    return host


class MessageLoop:
    """The automation's message loop: ``post_message``, ``stop``."""

    _host: ClassVar[LoopHost | None] = None

    def __init__(self) -> None:
        self.on_stop = Broadcaster()

    def run(self) -> int:
        """hadaemon runs the loop itself (it is the reactor); this does nothing."""
        return 0

    def stop(self, return_code: int = 0) -> None:
        """Stop this automation. Under ``hadaemon zigbee run`` pending sets are flushed and
        the process ends with ``return_code``; inside the daemon only this automation
        stops (its timers and listeners), the daemon goes on."""
        self.on_stop._call_listeners()
        _host(type(self)).request_stop(return_code)

    def stop_after_a_second(self, return_code: int = 0) -> None:
        _host(type(self)).call_later(1.0, lambda: self.stop(return_code))

    def post_message(self, message: Callable[[], None]) -> None:
        """Queue ``message()`` for the message thread (the reactor); from any thread."""
        _host(type(self)).post(message)


class AsyncUpdater:
    """Subclass and override ``_handle_async_update``; ``_trigger_async_update`` may be
    called from any thread and leads to one call on the message thread."""

    _host: ClassVar[LoopHost | None] = None

    def __init__(self) -> None:
        pass

    @abstractmethod
    def _handle_async_update(self) -> None:
        raise NotImplementedError("Subclasses must implement this method")

    @final
    def _trigger_async_update(self) -> None:
        _host(type(self)).post(self._handle_async_update)


class AsyncCallback(AsyncUpdater):
    """Wraps a callback into an :class:`AsyncUpdater`."""

    def __init__(self, callback: Callable[[], None]) -> None:
        super().__init__()
        self._callback = callback

    def trigger_async_update(self) -> None:
        self._trigger_async_update()

    @final
    def _handle_async_update(self) -> None:
        self._callback()


class MessageLoopTimer:
    """Calls ``callback(timer)`` every ``duration_sec`` on the message thread (the first
    call after one period) until ``stop()``. Reactor-based: on ``task.Clock`` in tests."""

    _host: ClassVar[LoopHost | None] = None

    def __init__(self, callback: Callable[[MessageLoopTimer], None]) -> None:
        self._callback = callback
        self._duration = 0.0
        self._call: Any = None
        self._running = False

    def start(self, duration_sec: float) -> None:
        """(Re)start with this period; must be called on the message thread."""
        if duration_sec < 0:
            raise ValueError("a timer period cannot be negative")
        host = _host(type(self))
        self._cancel()
        self._duration = duration_sec
        self._running = True
        host.add_timer(self)
        self._call = host.call_later(duration_sec, self._fire)

    def stop(self) -> None:
        """No more callbacks (also safe from inside the callback)."""
        self._running = False
        self._cancel()

    def is_running(self) -> bool:
        return self._running

    def _cancel(self) -> None:
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None

    def _fire(self) -> None:
        self._call = None
        if not self._running:
            return
        try:
            self._callback(self)
        finally:
            if self._running and self._call is None:
                self._call = _host(type(self)).call_later(self._duration, self._fire)


message_loop = MessageLoop()
"""The automation's loop (each automation gets its own, bound one)."""

__all__ = ["AsyncCallback", "AsyncUpdater", "LoopHost", "MessageLoop", "MessageLoopTimer",
           "message_loop"]
