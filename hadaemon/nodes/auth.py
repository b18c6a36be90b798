"""Who is on the other end of the node socket: peer credentials and node tokens.

Four layers, each enough to keep a stranger from acting as a node:

1. the socket file is 0600 in a 0700 directory (the file system);
2. a peer whose uid is not the daemon's is refused at connect (``SO_PEERCRED``);
3. a node is accepted only from the process the daemon started for it: the peer's pid
   (``SO_PEERCRED``) must be that node's current process, on both wires;
4. each node process gets a fresh secret token on an inherited pipe (its fd 3; never in
   its environment, which any process of the same user reads in ``/proc/<pid>/environ``,
   nor on its command line) and must present it with its node id; a restarted node gets
   a new token, so an orphan of an earlier process is refused.
"""

from __future__ import annotations

import hmac
import os
import secrets
import socket
import struct
from dataclasses import dataclass

_UCRED = struct.Struct("3i")


@dataclass(frozen=True, slots=True)
class PeerCredentials:
    """The process on the other end of a Unix socket, as the kernel saw it at connect."""

    pid: int
    uid: int
    gid: int


def peer_credentials(sock: socket.socket) -> PeerCredentials | None:
    """``SO_PEERCRED`` of a connected Unix socket (None where the OS has no such option)."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return None
    raw = sock.getsockopt(socket.SOL_SOCKET, option, _UCRED.size)
    pid, uid, gid = _UCRED.unpack(raw)
    return PeerCredentials(pid, uid, gid)


def same_user(creds: PeerCredentials | None) -> bool:
    """Whether the peer runs as the daemon's own user (unknown credentials: refused)."""
    return creds is not None and creds.uid == os.geteuid()


class Tokens:
    """The current token of each node process; a new process gets a new token."""

    def __init__(self) -> None:
        self._tokens: dict[str, str] = {}

    def issue(self, node_id: str) -> str:
        """A fresh token for ``node_id`` (the previous one stops working)."""
        token = secrets.token_urlsafe(32)
        self._tokens[node_id] = token
        return token

    def revoke(self, node_id: str) -> None:
        self._tokens.pop(node_id, None)

    def check(self, node_id: object, token: object) -> bool:
        """Constant-time check that ``token`` is ``node_id``'s current token."""
        if not isinstance(node_id, str) or not isinstance(token, str):
            return False
        expected = self._tokens.get(node_id)
        if expected is None:
            # Compare anyway, so timing does not tell which node ids exist.
            hmac.compare_digest(token, token)
            return False
        return hmac.compare_digest(expected.encode(), token.encode("utf-8", "surrogatepass"))
