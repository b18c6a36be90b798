"""Topic filter matching: hadaemon's matcher against level-by-level splitting.

Run by hand: ``.venv/bin/python benchmarks/topics.py [ROUNDS]``. Matches typical bus and
zigbee2mqtt topics against typical filters (hits and misses), with
``hadaemon.bus.topics.matcher`` (one regular expression per filter) and with the split
and compare both former matchers used, taking turns round by round; prints ns per match
for each round.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from hadaemon.bus.topics import matcher

CASES = [
    ("variable/+/+/+/temperature", ["variable/zigbee2mqtt/7/1/temperature",
                                    "variable/zigbee2mqtt/7/1/humidity",
                                    "lifecycle/mqtt/connected"]),
    ("variable/zigbee2mqtt/#", ["variable/zigbee2mqtt/7/1/temperature", "variable/nodes/7/1/x"]),
    ("zigbee2mqtt/+/availability", ["zigbee2mqtt/lamp/availability", "zigbee2mqtt/lamp",
                                    "zigbee2mqtt/bridge/state"]),
    ("zigbee2mqtt/+", ["zigbee2mqtt/lamp", "zigbee2mqtt/lamp/set"]),
    ("lifecycle/mqtt/+", ["lifecycle/mqtt/connected", "lifecycle/daemon/started"]),
    ("#", ["error/node:n1/error", "$SYS/broker/uptime"]),
]


def split_matcher(pattern: str) -> Callable[[str], object]:
    """The former matchers' way (``bus/topics.py`` and ``mqtt/topics.py`` before issue 12)."""
    if "+" not in pattern and "#" not in pattern:
        return pattern.__eq__
    levels = pattern.split("/")
    multi = levels[-1] == "#"
    fixed = levels[:-1] if multi else levels
    wild_start = levels[0] in ("+", "#")

    def match(topic: str) -> bool:
        if wild_start and topic.startswith("$"):
            return False
        parts = topic.split("/")
        if multi:
            if len(parts) < len(fixed):
                return False
        elif len(parts) != len(fixed):
            return False
        return all(want in ("+", got) for want, got in zip(fixed, parts, strict=False))

    return match


def run(make: Callable[[str], Callable[[str], object]], repeat: int) -> float:
    compiled = [(make(pattern), topics) for pattern, topics in CASES]
    calls = repeat * sum(len(topics) for _p, topics in CASES)
    start = time.perf_counter()
    for _ in range(repeat):
        for match, topics in compiled:
            for topic in topics:
                match(topic)
    return (time.perf_counter() - start) / calls * 1e9


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    for pattern, topics in CASES:  # the two agree before anything is timed
        for topic in topics:
            assert bool(matcher(pattern)(topic)) == bool(split_matcher(pattern)(topic))
    for number in range(1, rounds + 1):
        ours = run(matcher, 20000)
        split = run(split_matcher, 20000)
        print(f"round {number}: matcher {ours:6.0f} ns/match   split {split:6.0f} ns/match"
              f"   ratio {split / ours:4.1f}x")


if __name__ == "__main__":
    main()
