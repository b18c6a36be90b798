"""Blocking round trips from a synchronous thread into the embedded daemon, vs crochet.

Run by hand: ``.venv/bin/python benchmarks/embed_calls.py [N]`` (needs the ``bench`` extra:
``pip install -e '.[bench]'``). Prints calls/s and p50/p99 latency for hadaemon's
``handle.call``, a facade method, crochet 2.x's ``@wait_for`` and Twisted's
``blockingCallFromThread``, all against the same asyncio reactor in the same run.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable


def measure(name: str, fn: Callable[[], object], n: int) -> None:
    for _ in range(min(1000, n // 10)):  # warm up
        fn()
    latencies = []
    start = time.perf_counter()
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        latencies.append(time.perf_counter() - t0)
    total = time.perf_counter() - start
    latencies.sort()
    p50 = statistics.median(latencies) * 1e6
    p99 = latencies[int(len(latencies) * 0.99)] * 1e6
    print(f"{name:<44} {n / total:>10,.0f} calls/s   p50 {p50:7.1f} us   p99 {p99:7.1f} us")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    import hadaemon.embed as embed

    with tempfile.TemporaryDirectory() as state:
        handle = embed.start({"daemon": {"state_dir": state}}, log="none")
        handle.set_system_variable("x", 1)

        def noop() -> None:
            return None

        print(f"{n} blocking round trips from the main thread, asyncio reactor in a thread")
        measure("hadaemon handle.call(noop)", lambda: handle.call(noop), n)
        measure("hadaemon handle.get_system_variable", lambda: handle.get_system_variable("x"), n)
        try:
            import crochet
        except ImportError:
            print("crochet not installed: pip install -e '.[bench]'")
        else:
            crochet.no_setup()  # the reactor already runs (hadaemon's thread)

            @crochet.wait_for(timeout=10)
            def crochet_noop() -> None:
                return None

            measure(f"crochet {crochet.__version__} @wait_for(noop)", crochet_noop, n)
        from twisted.internet import reactor
        from twisted.internet.threads import blockingCallFromThread

        measure("twisted blockingCallFromThread(noop)",
                lambda: blockingCallFromThread(reactor, noop), n)
        handle.stop()


if __name__ == "__main__":
    main()
