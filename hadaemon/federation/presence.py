"""Which hosts of the site are online: their retained status, the [mqtt] last will.

The status is the ``[mqtt]`` connection's own (``{"state": "online"}``, retained; its last
will says ``offline``, published by the broker when the host vanishes), at
``<site>/<host>/status``. While this daemon's own broker link is down, it knows nothing:
every other host counts as offline until the statuses arrive again.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from hadaemon.federation.errors import Refused

PresenceCallback = Callable[[str, bool], object]


class Presence:
    """The hosts seen, and which are online now. Reactor thread only."""

    def __init__(self, me: str) -> None:
        self.me = me
        self._online: set[str] = set()
        self._known: set[str] = set()
        self._callbacks: list[PresenceCallback] = []

    def online(self, host: str) -> bool:
        return host == self.me or host in self._online

    def hosts(self) -> frozenset[str]:
        """Hosts online now, this one excluded."""
        return frozenset(self._online)

    def known(self) -> frozenset[str]:
        """Hosts seen since the start, online or not, this one excluded."""
        return frozenset(self._known)

    def on_change(self, callback: PresenceCallback) -> Callable[[], None]:
        self._callbacks.append(callback)

        def remove() -> None:
            if callback in self._callbacks:
                self._callbacks.remove(callback)

        return remove

    def status(self, topic: str, host: str, payload: bytes) -> tuple[str, bool] | None:
        """A status message of ``host``; returns ``(host, online)`` when that changed.
        An empty payload (the retained status cleared) means offline."""
        if host == self.me:
            return None
        if payload:
            try:
                state = json.loads(payload).get("state")
            except (ValueError, AttributeError):
                raise Refused(topic, f"a status is JSON {{\"state\": ...}}, got {payload[:60]!r}"
                              ) from None
            if state not in ("online", "offline"):
                raise Refused(topic, f"unknown state {state!r}")
            up = state == "online"
        else:
            up = False
        self._known.add(host)
        if up == (host in self._online):
            return None
        if up:
            self._online.add(host)
        else:
            self._online.discard(host)
        return host, up

    def link_down(self) -> list[str]:
        """Our broker link dropped: every host counts as offline; returns those that were
        online."""
        gone = sorted(self._online)
        self._online.clear()
        return gone

    def callbacks(self) -> list[PresenceCallback]:
        """The callbacks to tell of a change (a copy: one may remove itself)."""
        return list(self._callbacks)

__all__ = ["Presence", "PresenceCallback"]
