"""Value model benchmark: ``copy`` against the round trip the node router used to copy with.

Prints, per message shape, ns per copy for:

- ``unpack(packed)``: what the router did per bus destination (the bytes were packed
  once per message, for the node destinations, and decoded again per bus destination);
- ``pack + unpack``: the same when no node destination had packed it first (packed as
  the router packs a decoded message: ``hadaemon.nodes.link.fast_pack``, the C packer);
- ``copy``: :func:`hadaemon.values.copy`;

and ns per :func:`hadaemon.values.same` call on a report that did not change. The
variants run interleaved, round after round (the machine may be shared: compare within
a run); each figure is the range (min .. max) over the rounds.

Run it by hand: ``.venv/bin/python benchmarks/values.py [--rounds 5]``.
"""

from __future__ import annotations

import argparse
import timeit
from collections.abc import Callable
from typing import Any

from hadaemon.nodes.link import fast_pack
from hadaemon.values import copy, pack, same, unpack

SHAPES: dict[str, Any] = {
    "small message": {"payload": 1, "t": 1_700_000_000_000, "source": "a"},
    "sensor report": {"payload": {"temperature": 21.5, "humidity": 40, "state": "ON",
                                  "color": {"x": 0.31, "y": 0.42}},
                      "topic": "zigbee2mqtt/Hall", "_msgid": "9f2c", "source": "a"},
    "50-int list": {"payload": list(range(50)), "source": "a"},
    "nested 3x10": {"payload": [{"k": i, "v": [i, i * 0.5, str(i)]} for i in range(10)],
                    "source": "a"},
}


def per_call(f: Callable[[], Any], number: int) -> float:
    return timeit.timeit(f, number=number) / number * 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--number", type=int, default=50_000)
    args = parser.parse_args()
    for name, value in SHAPES.items():
        packed = pack(value)
        variants: dict[str, Callable[[], Any]] = {
            "unpack(packed)": lambda packed=packed: unpack(packed),
            "pack + unpack": lambda value=value: unpack(fast_pack(value)),
            "copy": lambda value=value: copy(value),
        }
        other = unpack(packed)
        variants["same (unchanged)"] = lambda value=value, other=other: same(value, other)
        figures: dict[str, list[float]] = {label: [] for label in variants}
        for _ in range(args.rounds):
            for label, f in variants.items():
                figures[label].append(per_call(f, args.number))
        print(f"{name} ({len(packed)} bytes packed)")
        for label, ns in figures.items():
            print(f"  {label:<18} {min(ns):8.0f} .. {max(ns):8.0f} ns")


if __name__ == "__main__":
    main()
