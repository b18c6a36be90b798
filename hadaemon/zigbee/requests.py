"""``bridge/request/<path>`` calls matched to ``bridge/response/<path>`` by transaction id.

Each request carries a ``transaction`` zigbee2mqtt echoes in its response; responses
without one of ours (another client's) are ignored. A request fires with the response's
``data``, fails with :class:`BridgeError` when zigbee2mqtt says ``status: error``, and with
:class:`BridgeTimeout` when no response comes in time. Reactor thread only.
"""

from __future__ import annotations

import itertools
import json
import secrets
from collections.abc import Callable, Mapping
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall
from twisted.python.failure import Failure


class BridgeError(Exception):
    """zigbee2mqtt answered a request with ``status: error``."""

    def __init__(self, path: str, message: str, data: Any = None) -> None:
        super().__init__(f"bridge/request/{path} failed: {message}")
        self.path = path
        self.data = data


class BridgeTimeout(TimeoutError):
    """No response to a bridge request in time (is zigbee2mqtt running?)."""


class BridgeRequests:
    """Outstanding requests by transaction id."""

    def __init__(
        self,
        reactor: Any,
        publish: Callable[[str, bytes], Deferred[None]],
        base_topic: str,
        timeout: float = 10.0,
    ) -> None:
        self._reactor = reactor
        self._publish = publish
        self._base = base_topic
        self.timeout = timeout
        self._prefix = f"hadaemon-{secrets.token_hex(3)}"
        self._counter = itertools.count(1)
        self._pending: dict[str, tuple[str, Deferred[Any], IDelayedCall]] = {}

    def request(self, path: str, payload: Mapping[str, Any] | None = None,
                timeout: float | None = None) -> Deferred[Any]:
        path = path.strip("/")
        if not path:
            raise ValueError("a bridge request needs a path, e.g. 'health_check'")
        tid = f"{self._prefix}-{next(self._counter)}"
        body = {**(payload or {}), "transaction": tid}
        d: Deferred[Any] = Deferred()
        limit = self.timeout if timeout is None else timeout

        def expire() -> None:
            entry = self._pending.pop(tid, None)
            if entry is not None:
                entry[1].errback(BridgeTimeout(
                    f"no response to bridge/request/{path} within {limit:g} s "
                    "(is zigbee2mqtt running?)"
                ))

        timer = self._reactor.callLater(limit, expire)
        self._pending[tid] = (path, d, timer)
        data = json.dumps(body).encode()
        sent = self._publish(f"{self._base}/bridge/request/{path}", data)

        def not_sent(failure: Failure) -> None:
            entry = self._pending.pop(tid, None)
            if entry is not None:
                entry[2].cancel()
                entry[1].errback(failure)

        sent.addErrback(not_sent)
        return d

    def response(self, path: str, payload: Any) -> bool:
        """A ``bridge/response/<path>`` arrived; True if it answered one of ours."""
        if not isinstance(payload, dict):
            return False
        tid = payload.get("transaction")
        if not isinstance(tid, str) or tid not in self._pending:
            return False
        _path, d, timer = self._pending.pop(tid)
        if timer.active():
            timer.cancel()
        if payload.get("status") == "ok":
            d.callback(payload.get("data"))
        else:
            message = payload.get("error") or f"status {payload.get('status')!r}"
            d.errback(BridgeError(path, str(message), payload.get("data")))
        return True

    def fail_all(self, reason: str) -> None:
        pending, self._pending = self._pending, {}
        for path, d, timer in pending.values():
            if timer.active():
                timer.cancel()
            d.errback(BridgeError(path, reason))

    def __len__(self) -> int:
        return len(self._pending)
