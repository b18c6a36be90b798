"""Listener lists with pyziggy's names: ``add_listener(cb)`` returns a token whose
``stop_listening()`` removes it; removing any listener during a dispatch never makes
another one be skipped (pyziggy's did)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")

Caller = Callable[..., None]
"""How listeners are called: ``caller(callback, *args)``; an automation's runtime passes
one that isolates errors and names the automation in the log."""


def _direct(callback: Callable[..., Any], *args: Any) -> None:
    callback(*args)


class ListenerCancellationToken:
    """Returned by ``add_listener``; ``stop_listening()`` removes that listener."""

    def __init__(self, remove: Callable[[], None]) -> None:
        self._remove = remove

    def stop_listening(self) -> None:
        self._remove()


class _Listener:
    __slots__ = ("active", "callback", "order", "seq")

    def __init__(self, callback: Callable[..., Any], order: int, seq: int) -> None:
        self.callback = callback
        self.order = order
        self.seq = seq
        self.active = True


class _ListenerList:
    _ids = itertools.count()

    def __init__(self) -> None:
        self._listeners: list[_Listener] = []
        self.caller: Caller = _direct

    def _add(self, callback: Callable[..., Any], order: int) -> ListenerCancellationToken:
        if order < -1:
            raise ValueError("order must be -1 or more")
        listener = _Listener(callback, order, next(self._ids))
        self._listeners.append(listener)
        self._listeners.sort(key=lambda entry: (entry.order, entry.seq))

        def remove() -> None:
            listener.active = False
            if listener in self._listeners:
                self._listeners.remove(listener)

        return ListenerCancellationToken(remove)

    def _dispatch(self, *args: Any) -> None:
        for listener in list(self._listeners):  # a snapshot: removal never skips another
            if listener.active:
                self.caller(listener.callback, *args)

    def __len__(self) -> int:
        return len(self._listeners)

    def clear(self) -> None:
        for listener in self._listeners:
            listener.active = False
        self._listeners.clear()


class Broadcaster(_ListenerList):
    """Listeners called with no arguments (pyziggy's ``Broadcaster``)."""

    def add_listener(
        self, callback: Callable[[], object], order: int = 100
    ) -> ListenerCancellationToken:
        """Call ``callback()`` on every broadcast; lower ``order`` is called first."""
        return self._add(callback, order)

    def _call_listeners(self) -> None:
        self._dispatch()


class EventBroadcaster(_ListenerList, Generic[T]):
    """Listeners called with one argument (e.g. a bridge event's payload)."""

    def add_listener(
        self, callback: Callable[[T], object], order: int = 100
    ) -> ListenerCancellationToken:
        return self._add(callback, order)

    def _call_listeners(self, value: T) -> None:
        self._dispatch(value)
