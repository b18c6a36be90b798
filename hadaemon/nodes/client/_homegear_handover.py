"""What the daemon hands a node process as it starts it, taken as the client is imported.

- ``HADAEMON_NODE_ID``: the node's id (when the node file is not given it);
- ``HADAEMON_DAEMON_PID``: the pid of the node's spawner (the daemon's reaper process),
  whose death the node must not outlive;
- ``HADAEMON_NODE_TOKEN_FD``: an inherited pipe (fd 3) on which the daemon writes the
  node's token: never in the environment, which any process of the same user reads;
- ``HADAEMON_CALL_TIMEOUT``: how long a call waits for the daemon's answer.

Taken out of the environment as this module is imported, so that what the node starts
inherits neither (a Python child importing the client would otherwise take itself for
the node). Python 3.7+, standard library only.
"""

from __future__ import annotations

import os

ENV_TOKEN_FD = "HADAEMON_NODE_TOKEN_FD"
TOKEN_FD = 3  # the daemon hands a node its token on this inherited pipe
ENV_NODE_ID = "HADAEMON_NODE_ID"
ENV_DAEMON_PID = "HADAEMON_DAEMON_PID"
ENV_CALL_TIMEOUT = "HADAEMON_CALL_TIMEOUT"


def _take_daemon_pid() -> int | None:
    """The pid of the daemon that started this node (None when not started by one).

    Taken out of the environment, so that what the node starts does not inherit it (a
    Python child importing this module would otherwise take itself for the node).
    """
    value = os.environ.pop(ENV_DAEMON_PID, "")
    return int(value) if value.isdigit() else None


def _die_with_the_daemon(daemon_pid: int | None) -> None:
    """End this process when its spawner died before the node got this far.

    The spawner (the daemon's reaper process, whose pid ``HADAEMON_DAEMON_PID`` names)
    arms every node's parent-death signal between fork and exec, so the node need not
    load ctypes to do it; it checks only that its spawner did not die before that.
    """
    if daemon_pid is not None and os.getppid() != daemon_pid:
        os._exit(70)  # the spawner died before the signal was armed


def _take_token() -> str | None:
    """The node's token, read to its end from the pipe the daemon handed over (its fd
    is named in the environment), and the pipe closed.

    Never in the environment, which any process of the same user reads in
    ``/proc/<pid>/environ``; read as the module is imported, so that what the node
    starts later inherits neither the pipe nor the token. The daemon writes the token
    once it knows this process's pid, and accepts it only from this process.
    """
    value = os.environ.pop(ENV_TOKEN_FD, "")
    if not value.isdigit():
        return None
    try:
        with open(int(value), "rb") as pipe:  # closed with it
            token = pipe.read()
    except OSError:
        return None
    return token.decode("utf-8", "replace") or None


# Only as a node's client: the daemon imports this module too, for its constants.
DAEMON_PID = None if __name__.startswith("hadaemon.") else _take_daemon_pid()
_die_with_the_daemon(DAEMON_PID)
TOKEN = None if __name__.startswith("hadaemon.") else _take_token()
