"""The node client preloaded in hadaemon's node spawner, for nodes forked without exec.

The spawner (``hadaemon/nodes/reaper_process.py``, ``[nodes] spawn = "fork"``) calls
:func:`preload` once and forks the nodes from there: what ``homegear`` imports (msgpack,
threading, the client's other modules) is loaded once for all of them. The modules named
in :data:`PER_PROCESS` are dropped again in each forked node, which imports them itself
when it imports ``homegear``, as a node started afresh does.

Python 3.7+, standard library only.
"""

from __future__ import annotations

PER_PROCESS = ("homegear", "_homegear_rpc")
"""Modules that take per-process state as they are imported: the node's token (from its
fd 3) and its spawner's pid, out of the environment; and the asyncio hook."""


def preload() -> None:
    """Import ``homegear`` and what it imports (in the spawner, whose environment names
    no token and no spawner: nothing is taken)."""
    import homegear  # type: ignore[import-not-found]  # noqa: F401
