"""Bus addresses: ``<kind>:<id>[/<path>]``, one scheme for every world.

``node:<id>/<input>``, ``service:<id>/<action>``, ``device:<peer id>[/<channel>]``. The
kind and id name the destination (its queue); the path says what inside it, and may
itself contain ``/``. Ids never contain ``/``, so any output can be wired to any address.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from hadaemon.bus.errors import BusError

NODE = "node"
SERVICE = "service"
DEVICE = "device"

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
