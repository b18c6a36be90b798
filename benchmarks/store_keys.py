"""Store prefix queries: the sorted key index against the scan of every key it replaced.

``Registry.add_device`` loads the device's last known values with
``Store.items("registry/state/<peer>/")``. With a scan of every key per query, adding N
devices took O(N^2); with the sorted key index (``hadaemon/store/keyindex.py``) a query
costs O(log n + matches). For N = 1,000 and 10,000 devices this prints, for both:

- ``add N devices``: a restart's registration of N devices, each with 3 last known
  values and its peer id in the store (what a previous run left: 4 N keys), on a real
  ``Store`` file, a real ``Registry`` and ``Bus``;
- ``one prefix query``: ``store.keys(prefix)`` of one device's values, per call;
- ``N puts of new keys``: what keeping the index costs writes (a bisect and a list
  insert per new key; replacing a value changes no key).

"scan" is a ``Store`` running the code from before the index (``keys``: ``sorted(key for
key in self._data if key.startswith(prefix))``; writes keep no index), in the same
process. Run it by hand:
``.venv/bin/python benchmarks/store_keys.py [--sizes 1000 10000]``.
"""

from __future__ import annotations

import argparse
import pathlib
import tempfile
import time
from collections.abc import Sequence
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock

from hadaemon.bus import Bus
from hadaemon.registry import Access, ChannelSpec, Registry, ValueType, VariableSpec
from hadaemon.store import Store
from hadaemon.store.records import Change
from hadaemon.store.replay import apply_changes

VARIABLES = ("state", "brightness", "linkquality")


class ScanningStore(Store):
    """The store as it was: no index kept on writes, every prefix query looks at every
    key."""

    def keys(self, prefix: str = "") -> list[str]:
        self._check_readable()
        return sorted(key for key in self._data if key.startswith(prefix))

    def _apply(self, changes: Sequence[Change]) -> None:
        self._live_size += apply_changes(self._data, changes)


def run_now(f: Any) -> Deferred[Any]:
    return succeed(f())


def open_store(cls: type[Store], path: pathlib.Path) -> Store:
    store = cls(path, reactor=Clock(), run_in_thread=run_now, compact_min_bytes=1 << 30)
    store.open()
    return store


def close(store: Store) -> None:
    store.stopService()


def previous_run(path: pathlib.Path, n: int) -> None:
    """What a previous run left: n devices' peer ids and last known values."""
    store = open_store(Store, path)
    registry = Registry(Clock(), Bus(Clock()), store, state_flush_interval=3600)
    for i in range(n):
        peer = registry.peer_id_for("bench", f"dev-{i}")
        store.put_many({f"registry/state/{peer}/1/{name}": i for name in VARIABLES})
    close(store)


def add_devices(cls: type[Store], path: pathlib.Path, n: int) -> tuple[float, float]:
    """Seconds to add n devices after a restart; microseconds per prefix query."""
    store = open_store(cls, path)
    registry = Registry(Clock(), Bus(Clock()), store, state_flush_interval=3600)
    spec = [ChannelSpec(1, [VariableSpec(name, ValueType.INT, Access.ALL)
                            for name in VARIABLES])]
    started = time.perf_counter()
    for i in range(n):
        device = registry.add_device("bench", f"dev-{i}", f"Device {i}", spec, owner=None)
        assert device.channels[1].variables["state"].last_known == i, "values not loaded"
    took = time.perf_counter() - started
    queries = 200
    started = time.perf_counter()
    for i in range(queries):
        store.keys(f"registry/state/{1 + (i * 7919) % n}/")
    per_query = (time.perf_counter() - started) / queries * 1e6
    close(store)
    return took, per_query


def new_key_puts(cls: type[Store], path: pathlib.Path, n: int) -> float:
    """Microseconds per put of a new key into a store of n keys (the index's cost)."""
    store = open_store(cls, path)
    store.put_many({f"k/{i:08d}": i for i in range(0, 2 * n, 2)})
    started = time.perf_counter()
    for i in range(1, 2 * n, 2):
        store.put(f"k/{i:08d}", i)
    took = (time.perf_counter() - started) / n * 1e6
    close(store)
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    args = parser.parse_args()
    print(f"{'devices':>8}  {'figure':<24} {'scan (before)':>14} {'index (now)':>14}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            base = pathlib.Path(tmp) / f"state-{n}"
            base.mkdir()
            figures: dict[str, dict[str, str]] = {"add": {}, "query": {}, "put": {}}
            for label, cls in (("scan", ScanningStore), ("index", Store)):
                path = base / f"{label}.db"
                previous_run(path, n)
                took, per_query = add_devices(cls, path, n)
                figures["add"][label] = f"{took:.3f} s"
                figures["query"][label] = f"{per_query:.1f} us"
                figures["put"][label] = f"{new_key_puts(cls, base / f'{label}-puts.db', n):.1f} us"
            for key, title in (("add", f"add {n} devices"), ("query", "one prefix query"),
                               ("put", f"{n} puts of new keys")):
                print(f"{n:>8}  {title:<24} {figures[key]['scan']:>14} "
                      f"{figures[key]['index']:>14}")


if __name__ == "__main__":
    main()
