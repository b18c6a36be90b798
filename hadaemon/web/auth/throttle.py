"""Failed logins slow down, per client, in bounded memory.

After the k-th failure in a row a client waits ``base_delay * 2**(k-1)`` seconds (at
most ``max_delay``) for its answer; from the ``lock_after``-th on it is locked out for
``lockout * 2**(k - lock_after)`` seconds (at most ``max_lockout``), and every attempt
meanwhile is refused at once with a 429 and its ``retry_after``, before any password is
hashed. A client has one attempt in flight at a time: a parallel one gets a 429 too, so
the delays cannot be dodged by asking many times at once. A success forgets the client.

Clients are counted by :func:`client_key` (an IPv6 client by its /64). At most
``max_clients`` clients are remembered (least recently seen dropped first), and a
client unseen for ``forget_after`` seconds that is not locked out is forgotten: a flood
from many addresses costs a bounded table, not unbounded memory. Reactor thread only.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from dataclasses import dataclass

from twisted.internet.interfaces import IReactorTime

from hadaemon.web.auth.errors import AuthError


@dataclass
class _Client:
    failures: int = 0
    locked_until: float = 0.0
    busy_until: float | None = None  # an attempt is in flight (hashing, or held)
    seen: float = 0.0


class LoginThrottle:
    """Per-client failure counts, delays and lockouts (see the module docstring)."""

    def __init__(self, reactor: IReactorTime, *, base_delay: float = 1.0,
                 max_delay: float = 8.0, lock_after: int = 5, lockout: float = 60.0,
                 max_lockout: float = 3600.0, forget_after: float = 3600.0,
                 max_clients: int = 10_000) -> None:
        self._reactor = reactor
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.lock_after = lock_after
        self.lockout = lockout
        self.max_lockout = max_lockout
        self.forget_after = forget_after
        self.max_clients = max_clients
        self._clients: OrderedDict[str, _Client] = OrderedDict()

    def __len__(self) -> int:
        return len(self._clients)

    def failures(self, client: str) -> int:
        """Failed logins in a row remembered for ``client``."""
        entry = self._clients.get(client)
        return entry.failures if entry is not None else 0

    def begin(self, client: str) -> None:
        """An attempt starts: AuthError 429 if ``client`` is locked out or already busy."""
        now = self._reactor.seconds()
        self._prune(now)
        entry = self._clients.get(client)
        if entry is not None:
            if now < entry.locked_until:
                raise AuthError(
                    429, "too_many_attempts",
                    f"too many failed logins from {client}: try again in "
                    f"{_seconds(entry.locked_until - now)}",
                    retry_after=entry.locked_until - now)
            if entry.busy_until is not None:
                wait = max(entry.busy_until - now, 1.0)
                raise AuthError(
                    429, "too_many_attempts",
                    f"a login from {client} is already being checked: try again in "
                    f"{_seconds(wait)}", retry_after=wait)
        entry = self._touch(client, now)
        entry.busy_until = now + 1.0  # about a hash's time; the delay extends it

    def failed(self, client: str) -> float:
        """Count a failure; the seconds to hold the answer (the client stays busy)."""
        now = self._reactor.seconds()
        entry = self._touch(client, now)
        entry.failures += 1
        delay = min(self.base_delay * 2.0 ** (entry.failures - 1), self.max_delay)
        if entry.failures >= self.lock_after:
            lock = min(self.lockout * 2.0 ** (entry.failures - self.lock_after),
                       self.max_lockout)
            entry.locked_until = now + delay + lock
        entry.busy_until = now + delay
        return delay

    def succeeded(self, client: str) -> None:
        """A right password: the client's failures are forgotten."""
        self._clients.pop(client, None)

    def end(self, client: str) -> None:
        """The attempt is answered: the client may try again (unless locked out)."""
        entry = self._clients.get(client)
        if entry is not None:
            entry.busy_until = None

    def _touch(self, client: str, now: float) -> _Client:
        entry = self._clients.get(client)
        if entry is None:
            entry = self._clients[client] = _Client()
            while len(self._clients) > self.max_clients:
                self._clients.popitem(last=False)
        else:
            self._clients.move_to_end(client)
        entry.seen = now
        return entry

    def _prune(self, now: float) -> None:
        # Least recently seen first: stop at the first one still worth remembering.
        while self._clients:
            client, entry = next(iter(self._clients.items()))
            if (now - entry.seen < self.forget_after or now < entry.locked_until
                    or entry.busy_until is not None):
                return
            del self._clients[client]


def client_key(address: str) -> str:
    """The unit throttled for a client address: an IPv6 address's /64 network (one home
    or host usually owns a whole /64, and could otherwise try from 2**64 addresses), the
    IPv4 address itself (also inside ``::ffff:a.b.c.d``), or the string as given."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def _seconds(value: float) -> str:
    whole = max(1, round(value))
    return f"{whole} second{'s' if whole != 1 else ''}"
