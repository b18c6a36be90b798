"""Bus events delivered to synchronous code: a callback in a worker thread, or an iterator.

Each subscription has a bounded queue filled on the reactor thread (which never waits). A
slow consumer cannot exhaust memory: when the queue is full, the overflow policy drops
the oldest queued event (``"drop_oldest"``, the default: the newest state wins) or the
new one (``"drop_newest"``). Drops are counted in ``dropped`` and logged, at most once a
second per subscription.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Literal

from hadaemon.bus import Event
from hadaemon.logs import get_logger
from hadaemon.usercode import failure_of

Overflow = Literal["drop_oldest", "drop_newest"]
_CLOSED = object()
_log = get_logger("hadaemon.embed")


class _Queue:
    """A bounded, thread-safe event queue with a drop policy (the producer never blocks)."""

    def __init__(self, size: int, overflow: Overflow, label: str) -> None:
        if size < 1:
            raise ValueError("queue_size must be at least 1")
        if overflow not in ("drop_oldest", "drop_newest"):
            raise ValueError(f"overflow must be 'drop_oldest' or 'drop_newest', not {overflow!r}")
        self._items: collections.deque[object] = collections.deque()
        self._size = size
        self._overflow = overflow
        self._cond = threading.Condition()
        self._closed = False
        self._label = label
        self._last_warning = 0.0
        self.dropped = 0

    def put(self, item: object) -> None:
        """Called on the reactor thread: enqueue, applying the overflow policy."""
        with self._cond:
            if self._closed:
                return
            if len(self._items) >= self._size:
                self.dropped += 1
                if self._overflow == "drop_newest":
                    self._warn()
                    return
                self._items.popleft()
                self._warn()
            self._items.append(item)
            self._cond.notify()

    def _warn(self) -> None:
        now = time.monotonic()
        if now - self._last_warning >= 1.0:
            self._last_warning = now
            _log.warn(
                "subscription {label}: consumer too slow, {dropped} event(s) dropped so far "
                "({policy})",
                label=self._label,
                dropped=self.dropped,
                policy=self._overflow,
            )

    def get(self, timeout: float | None = None) -> object:
        """The next event, or _CLOSED once closed and drained; TimeoutError on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._items:
                if self._closed:
                    return _CLOSED
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError(f"no event within {timeout}s")
                self._cond.wait(remaining)
            return self._items.popleft()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class EventSubscription:
    """Events matching a pattern, handed to ``callback`` in a worker thread, in order."""

    def __init__(
        self,
        pattern: str,
        callback: Callable[[Event], object] | None,
        *,
        queue_size: int,
        overflow: Overflow,
        unsubscribe: Callable[[], None],
    ) -> None:
        self.pattern = pattern
        self._queue = _Queue(queue_size, overflow, pattern)
        self._callback = callback
        self._unsubscribe = unsubscribe
        self._thread: threading.Thread | None = None
        if callback is not None:
            self._thread = threading.Thread(
                target=self._work, name=f"hadaemon-subscriber {pattern}", daemon=True
            )
            self._thread.start()

    @property
    def dropped(self) -> int:
        """Events lost to the overflow policy."""
        return self._queue.dropped

    def deliver(self, event: Event) -> None:
        """Reactor thread: queue an event for the consumer."""
        self._queue.put(event)

    def _work(self) -> None:
        assert self._callback is not None
        while True:
            item = self._queue.get()
            if item is _CLOSED:
                return
            try:
                self._callback(item)  # type: ignore[arg-type]
            except BaseException as exc:  # sys.exit(), KeyboardInterrupt too: never on
                # the main thread, so never a real Ctrl+C; the worker goes on.
                _log.failure("subscriber callback for {pattern} failed",
                             failure=failure_of(exc), pattern=self.pattern)

    def cancel(self, timeout: float = 5.0) -> None:
        """Stop receiving; events already queued are still handed to the callback."""
        self._unsubscribe()
        self._queue.close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def __enter__(self) -> EventSubscription:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cancel()


class EventIterator(EventSubscription):
    """A blocking iterator over events: ``for event in handle.events("variable/#"):``."""

    def __init__(self, pattern: str, *, queue_size: int, overflow: Overflow,
                 unsubscribe: Callable[[], None], timeout: float | None = None) -> None:
        super().__init__(pattern, None, queue_size=queue_size, overflow=overflow,
                         unsubscribe=unsubscribe)
        self.timeout = timeout

    def __iter__(self) -> Iterator[Event]:
        return self

    def __next__(self) -> Event:
        item = self._queue.get(self.timeout)
        if item is _CLOSED:
            raise StopIteration
        return item  # type: ignore[return-value]

    def get(self, timeout: float | None = None) -> Event:
        """The next event; TimeoutError after ``timeout`` s, StopIteration once closed."""
        item = self._queue.get(timeout)
        if item is _CLOSED:
            raise StopIteration
        return item  # type: ignore[return-value]

    def __enter__(self) -> EventIterator:
        return self

    def close(self) -> None:
        self.cancel()


def closed_all(subscriptions: list[EventSubscription]) -> None:
    """Close every subscription's queue (the daemon stopped): consumers see the end."""
    for sub in subscriptions:
        sub._queue.close()


__all__ = ["EventIterator", "EventSubscription", "Overflow", "closed_all"]
