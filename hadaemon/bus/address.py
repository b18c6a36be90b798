"""Bus addresses: ``<kind>:<id>[/<path>]``, one scheme for every world.

``node:<id>/<input>``, ``service:<id>/<action>``, ``device:<peer id>[/<channel>]``. The
kind and id name the destination (its queue); the path says what inside it, and may
itself contain ``/``. Ids never contain ``/``, so any output can be wired to any address.

Across the hosts of a federated site (docs/federation.md) an id may name its host:
``node:<id>@<host>/<input>``, ``service:<id>@<host>/<action>``. The bus keeps ``id@host``
as the id (one endpoint per remote destination, as far as queues go); :attr:`Address.host`
and :meth:`Address.local` split it for the code that forwards it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from hadaemon.bus.errors import BusError

NODE = "node"
SERVICE = "service"
DEVICE = "device"
HOST_SEPARATOR = "@"

_KIND = re.compile(r"^[a-z][a-z0-9_]*$")


class InvalidAddress(BusError, ValueError):
    """A string that is not ``kind:id[/path]``."""


@dataclass(frozen=True, slots=True)
class Address:
    """A parsed address; ``endpoint`` (``kind:id``) is what handlers register."""

    kind: str
    id: str
    path: str = ""
    # ``kind:id``, computed once: every message's delivery looks its endpoint up.
    endpoint: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not _KIND.match(self.kind):
            raise InvalidAddress(f"invalid address kind {self.kind!r}: expected [a-z][a-z0-9_]*")
        if not self.id or "/" in self.id:
            raise InvalidAddress(
                f"invalid address id {self.id!r} in kind {self.kind!r}: "
                "ids are non-empty and never contain '/'"
            )
        object.__setattr__(self, "endpoint", f"{self.kind}:{self.id}")  # frozen

    def __str__(self) -> str:
        return f"{self.kind}:{self.id}/{self.path}" if self.path else f"{self.kind}:{self.id}"

    @property
    def host(self) -> str | None:
        """The host an ``id@host`` names (None: no host named, this one or any)."""
        _, sep, host = self.id.rpartition(HOST_SEPARATOR)
        return host if sep else None

    @property
    def local_id(self) -> str:
        """The id without its ``@host``."""
        ident, sep, _ = self.id.rpartition(HOST_SEPARATOR)
        return ident if sep else self.id

    def local(self) -> Address:
        """The same address without ``@host``: what the host it names delivers to."""
        return self if HOST_SEPARATOR not in self.id else Address(self.kind, self.local_id,
                                                                   self.path)

    def on_host(self, host: str) -> Address:
        """The same address naming ``host`` (kept if it names one already): how an
        answer finds its way back to the sender's host."""
        if HOST_SEPARATOR in self.id:
            return self
        return Address(self.kind, f"{self.id}{HOST_SEPARATOR}{host}", self.path)

    @classmethod
    def parse(cls, text: str | Address) -> Address:
        """Parse ``kind:id[/path]`` (cached: the same strings are sent over and over)."""
        if isinstance(text, Address):
            return text
        return _parse(text)


@lru_cache(maxsize=4096)
def _parse(text: str) -> Address:
    if not isinstance(text, str):
        raise InvalidAddress(f"an address is a string 'kind:id[/path]', got {text!r}")
    kind, sep, rest = text.partition(":")
    if not sep:
        raise InvalidAddress(f"invalid address {text!r}: expected 'kind:id[/path]'")
    ident, _, path = rest.partition("/")
    return Address(kind, ident, path)


def node(node_id: str, input_index: int = 0) -> Address:
    """The address of a node's input."""
    return Address(NODE, node_id, str(input_index))


def service(service_id: str, action: str) -> Address:
    """The address of a service's action."""
    return Address(SERVICE, service_id.lower(), action)


def device(peer_id: int, channel: int | None = None) -> Address:
    """The address of a device (a dict of values to set), optionally one channel."""
    return Address(DEVICE, str(peer_id), "" if channel is None else str(channel))
