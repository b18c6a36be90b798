"""The node client preloaded in hadaemon's node spawner, for nodes forked without exec.

The spawner (``hadaemon/nodes/reaper_process.py``, ``[nodes] spawn = "fork"``) imports
the client as a node does, once, and forks the nodes from there: :func:`preload` in the
spawner, :func:`forked` in each node process before its file runs. Only the import-time
steps that belong to one node process (its spawner's pid, its token) are done again.

Python 3.7+, standard library only.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def preload() -> None:
    """Import ``homegear`` and what it imports (in the spawner: no node state is taken,
    its environment names no token and no daemon)."""
    import homegear  # type: ignore[import-not-found]  # noqa: F401


def forked() -> None:
    """In a node forked from the spawner, what importing the client does for a node:
    take the spawner's pid and the token (read from the node's fd 3, which blocks until
    the daemon wrote it) out of the environment, die if the spawner is already gone."""
    rpc: Any = sys.modules["_homegear_rpc"]
    rpc.DAEMON_PID = rpc._take_daemon_pid()
    rpc._die_with_the_daemon(rpc.DAEMON_PID)
    rpc.TOKEN = rpc._take_token()
