"""The node reaper: a tiny process that outlives a killed daemon to end its nodes' groups.

A parent-death signal ends each node when the daemon dies, but not what the node
spawned (its own children do not inherit that signal). The daemon starts this script
once (``python -I -S reaper_process.py``, in a session of its own so that killing the
daemon's process group spares it) and tells it, on its stdin, each node's process group
as it starts (``+<pgid>``) and ends (``-<pgid>``). The daemon holds the only write end
of that pipe: when the daemon dies, however it dies, the reaper reads end-of-file and
sends SIGKILL to every group still listed, then exits. After a clean stop the list is
empty and it just exits.

Standard library only, and nothing from hadaemon: it starts in milliseconds.
"""

import contextlib
import os
import signal


def main() -> None:
    # Terminal signals are for the daemon; this one ends only at end-of-file.
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGTSTP):
        signal.signal(sig, signal.SIG_IGN)
    groups: set[int] = set()
    pending = b""
    while True:
        try:
            data = os.read(0, 4096)
        except InterruptedError:
            continue
        except OSError:
            break
        if not data:
            break
        *lines, pending = (pending + data).split(b"\n")
        for line in lines:
            if len(line) > 1 and line[1:].isdigit():
                pgid = int(line[1:])
                if line[:1] == b"+":
                    groups.add(pgid)
                elif line[:1] == b"-":
                    groups.discard(pgid)
    for pgid in groups:
        with contextlib.suppress(OSError):
            os.killpg(pgid, signal.SIGKILL)


if __name__ == "__main__":
    main()
