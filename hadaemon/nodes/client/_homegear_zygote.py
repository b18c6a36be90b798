"""The node client preloaded in hadaemon's node spawner, for nodes forked without exec.

The spawner (``hadaemon/nodes/reaper_process.py``, ``[nodes] spawn = "fork"``) calls
:func:`preload` once and forks the nodes from there: what ``homegear`` imports (msgpack
and datetime, threading, collections, ...) is loaded once for all of them. The client's
own modules (``homegear``, ``_homegear_*``, in this directory) are dropped again in each
forked node, which imports them itself, as a node started afresh does: they take the
node's token and its spawner's pid as they are imported, and a node may arrange what
they find before it imports them (e.g. no msgpack). That costs a node ~1-2 ms.

Python 3.7+, standard library only.
"""


def preload() -> None:
    """Import ``homegear`` and what it imports (in the spawner, whose environment names
    no token and no spawner: nothing is taken)."""
    import homegear  # type: ignore[import-not-found]  # noqa: F401
