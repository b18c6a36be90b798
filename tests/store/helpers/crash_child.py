"""Child process of the kill -9 test: writes to a store on a real reactor until killed.

Usage: ``python crash_child.py STATE_FILE``. It imports what it needs, prints ``loaded``
and waits for a line on stdin before it opens the store (so the parent can start the next
child while the current one runs), prints ``ready`` once the store is open, then one line
per write, each only after the write call returned (so it was
acknowledged): ``P n`` (key ``u<n>`` put), ``D n`` (``u<n>`` deleted), ``H n`` (hot key
``h<n % HOT>`` set to ``hot_value(n)``). ``#compacted`` marks each finished compaction.
The fsync thread (a short interval) and automatic compactions (a small threshold) run all
the time. The parent imports this file for the value functions.
"""

from __future__ import annotations

import os
import pathlib
import random
import sys
from typing import Any

WINDOW = 120  # u<n> is deleted once u<n + WINDOW> is written: the live data stays bounded
HOT = 16


def unique_key(n: int) -> str:
    return f"u{n:07d}"


def unique_value(n: int) -> dict[str, Any]:
    size = (n * 7919) % 3000  # value sizes vary: records straddle page and chunk edges
    return {
        "n": n,
        "blob": random.Random(n).randbytes(size),
        "text": "é\x00\udc80" + "t" * (n % 97),
        "big": 2**70 + n,
        "list": [n, None, True, 1.5, -(2**65)],
    }


def hot_value(n: int) -> dict[str, Any]:
    return {"n": n, "pad": "h" * (n % 500)}


def emit(line: str) -> None:
    os.write(1, line.encode() + b"\n")  # unbuffered: the line is out when this returns


def main() -> None:
    from twisted.internet import asyncioreactor

    asyncioreactor.install()
    from twisted.internet import reactor
    from twisted.logger import LogEvent, Logger

    from hadaemon.store import Store

    emit("loaded")
    if not sys.stdin.readline():
        return  # the parent went away before its turn came

    def observer(event: LogEvent) -> None:
        if str(event.get("log_format", "")).startswith("compacted"):
            emit("#compacted")

    store = Store(
        pathlib.Path(sys.argv[1]),
        reactor=reactor,  # type: ignore[arg-type]
        fsync_interval=0.005,
        compact_min_bytes=16 * 1024,
        compact_ratio=1.5,
        log=Logger(namespace="crash-child", observer=observer),
    )
    store.open()
    rng = random.Random()
    n = store.get("meta/next", 0)
    emit("ready")

    def step() -> None:
        nonlocal n
        for _ in range(rng.randint(1, 40)):
            if rng.random() < 0.5:
                store.put_many({unique_key(n): unique_value(n), "meta/next": n + 1})
                emit(f"P {n}")
            else:
                store.put(unique_key(n), unique_value(n))
                emit(f"P {n}")
                store.put("meta/next", n + 1)
            if n >= WINDOW:
                store.delete(unique_key(n - WINDOW))
                emit(f"D {n - WINDOW}")
            store.put(f"h{n % HOT}", hot_value(n))
            emit(f"H {n}")
            n += 1
        reactor.callLater(0, step)  # type: ignore[attr-defined]
        # let the reactor run compaction and fsync callbacks between bursts

    reactor.callWhenRunning(step)  # type: ignore[attr-defined]
    reactor.run()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
