"""The value model: the node client's codecs (C msgpack and the bundled pure-Python one)
match the daemon's byte for byte, and values round-trip exactly through real nodes."""

from __future__ import annotations

import asyncio
import importlib.util
import math
import pathlib
import shutil
import struct
import subprocess
import sys
import threading
import types
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.threads import blockingCallFromThread

from hadaemon import values
from hadaemon.aio import as_deferred
from hadaemon.daemon import Daemon
from hadaemon.nodes.client import CLIENT_DIR
from hadaemon.nodes.client import _homegear_values as client_values
from hadaemon.testing import new_reactor, wait_until
from tests.nodes.helpers import catalog, make_config, node

TEXT = st.text(st.characters(exclude_categories=())) | st.text(
    alphabet=st.sampled_from(["\ud800", "\udfff", "\udc80", "a", "\0", "é", "\U0001f600"])
)
FLOATS = st.floats() | st.binary(min_size=8, max_size=8).map(
    lambda b: struct.unpack(">d", b)[0]  # every bit pattern: NaN payloads, -0.0, inf
)
INTS = st.integers() | st.integers(min_value=-(2**200), max_value=2**200) | st.sampled_from(
    [0, -1, 127, 128, -32, -33, 2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1]
)
SCALARS = st.none() | st.booleans() | INTS | FLOATS | TEXT | st.binary()
VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=5)
        | st.tuples(children, children)
        | st.dictionaries(TEXT | INTS, children, max_size=5)
    ),
    max_leaves=25,
)


def same(a: Any, b: Any) -> bool:
    """Exactly the same value: same types, same float bits (NaN included)."""
    return values.pack(a) == values.pack(b)


def load_pure_client() -> types.ModuleType:
    """The client's value module as a node without msgpack gets it."""
    saved = {name: sys.modules.get(name) for name in ("msgpack", "_homegear_msgpack")}
    sys.modules["msgpack"] = None  # type: ignore[assignment]
    sys.path.insert(0, CLIENT_DIR)
    try:
        spec = importlib.util.spec_from_file_location(
            "_pure_homegear_values", pathlib.Path(CLIENT_DIR) / "_homegear_values.py"
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(CLIENT_DIR)
        for name, previous in saved.items():
            if previous is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = previous
    assert module.BACKEND == "pure-python"
    return module


PURE = load_pure_client()


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(VALUES)
def test_client_codecs_match_the_daemon_byte_for_byte(value: Any) -> None:
    expected = values.pack(value)
    assert client_values.pack(value) == expected
    assert PURE.pack(value) == expected
    for decode in (values.unpack, client_values.unpack, PURE.unpack):
        assert values.pack(decode(expected)) == expected


@settings(max_examples=200)
@given(st.lists(VALUES, min_size=1, max_size=4), st.data())
def test_pure_streaming_decoder_takes_any_split(items: list[Any], data: st.DataObject) -> None:
    stream = b"".join(values.pack(v) for v in items)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    unpacker = PURE.Unpacker()
    got: list[Any] = []
    start = 0
    for cut in [*cuts, len(stream)]:
        unpacker.feed(stream[start:cut])
        start = cut
        got.extend(unpacker)
    assert len(got) == len(items)
    assert all(same(a, b) for a, b in zip(got, items, strict=True))


def test_values_outside_the_model_are_refused_with_where() -> None:
    for codec in (client_values, PURE):
        with pytest.raises(TypeError, match=r"unsupported type set at \[1\]\['a'\]"):
            codec.pack([1, {"a": {1}}])
        with pytest.raises(TypeError, match="unsupported dict key type float"):
            codec.pack({1.5: 1})
        loop: list[Any] = []
        loop.append(loop)
        with pytest.raises(TypeError, match="nested deeper"):
            codec.pack(loop)
    with pytest.raises(ValueError, match="unknown msgpack ext type 9"):
        PURE.unpack(b"\xd4\x09\x00")


def test_small_and_large_dicts_get_the_same_key_checks() -> None:
    """Small dicts (node messages) are checked by a loop of their own: same verdicts."""
    for size in (0, 1, client_values._SMALL_DICT, client_values._SMALL_DICT + 1, 50):
        plain: dict[Any, Any] = {f"k{i}": i for i in range(size)}
        assert client_values.pack(plain) == values.pack(plain)
        assert client_values.pack({**plain, 7: [{"a": 1}]}) == values.pack({**plain, 7: [{"a": 1}]})
        for bad in (1.5, True, None, b"x"):
            with pytest.raises(TypeError, match="unsupported dict key type"):
                client_values.pack({**plain, bad: 1})
            with pytest.raises(TypeError, match="unsupported dict key type"):
                client_values.pack({**plain, "nested": [{bad: 1}]})


def other_pythons() -> list[str]:
    """Other interpreters on this machine (the client must import under each)."""
    found = []
    for name in ("python3.7", "python3.8", "python3.9", "python3.10", "python3.12",
                 "python3.13", "/usr/bin/python3"):
        path = shutil.which(name)
        if path and pathlib.Path(path).resolve() != pathlib.Path(sys.executable).resolve():
            try:
                subprocess.run([path, "-c", "pass"], check=True, capture_output=True,
                               timeout=10)
            except (OSError, subprocess.SubprocessError):
                continue
            found.append(path)
    return found


def test_the_client_imports_under_other_pythons() -> None:
    pythons = other_pythons()
    if not pythons:
        pytest.skip("no other Python on this machine")
    check = (
        "import homegear, _homegear_values as v\n"
        "x = [None, True, 2**100, -0.0, 'a\\ud800\\0', b'\\0', {1: (2,)}]\n"
        "assert v.pack(v.unpack(v.pack(x))) == v.pack(x)\n"
        "print(v.BACKEND)\n"
    )
    for python in pythons:
        result = subprocess.run([python, "-c", check], env={"PYTHONPATH": CLIENT_DIR},
                                capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, (python, result.stderr)
        # No Twisted was needed, nor hadaemon.
        assert result.stdout.strip() in ("msgpack", "pure-python")


class ThreadedDaemon:
    """The daemon on a reactor in a background thread (no signal handlers, no SIGCHLD),
    as an embedding program runs it; the test thread calls into it."""

    def __init__(self, config: Any) -> None:
        self.reactor = new_reactor()
        self.daemon = Daemon(config, self.reactor, catalog=catalog())
        self.thread = threading.Thread(target=self._run, name="test reactor", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.reactor._asyncioEventloop)
        self.reactor.run(installSignalHandlers=False)
        self.reactor._asyncioEventloop.close()

    def call(self, fn: Any, *args: Any) -> Any:
        return blockingCallFromThread(self.reactor, lambda: as_deferred(fn(*args)))

    def __enter__(self) -> ThreadedDaemon:
        self.thread.start()
        self.call(self._start)
        return self

    async def _start(self) -> None:
        self.daemon.startService()
        await self.daemon.started
        plugin = self.daemon.plugin("nodes")
        assert plugin is not None
        await wait_until(self.reactor, lambda: plugin.startup_done and all(  # type: ignore[attr-defined]
            r.startup_sent for r in plugin.runtimes.values()), what="the nodes", timeout=10.0)  # type: ignore[attr-defined]

    def __exit__(self, *exc: object) -> None:
        try:
            self.call(self.daemon.stopService)
        finally:
            self.reactor.callFromThread(self.reactor.stop)
            self.thread.join(10)


@pytest.fixture(scope="module")
def echo_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedDaemon]:
    tmp_path = tmp_path_factory.mktemp("echo")
    nodes = [node("echo", "relay.py", info={"mode": "echo"}),
             node("pure", "no_msgpack.py")]
    others = other_pythons()
    if others:
        nodes.append(node("other", "relay.py", info={"mode": "echo"}, interpreter=others[-1]))
    with ThreadedDaemon(make_config(tmp_path, nodes)) as daemon:
        yield daemon


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(VALUES)
def test_values_round_trip_exactly_through_real_nodes(
    echo_daemon: ThreadedDaemon, value: Any
) -> None:
    for node_id in echo_daemon.daemon.plugin("nodes").runtimes:  # type: ignore[union-attr]
        answer = echo_daemon.call(echo_daemon.daemon.bus.send, f"node:{node_id}/0",
                                  {"payload": value})
        assert same(answer["payload"], value), (node_id, answer["payload"], value)


def test_tricky_values_through_real_nodes(echo_daemon: ThreadedDaemon) -> None:
    tricky = {
        "nan": math.nan, "neg_nan": struct.unpack(">d", b"\xff\xf8\x00\x00\x00\x00\x00\x01")[0],
        "inf": math.inf, "-inf": -math.inf, "-0": -0.0, "tiny": 5e-324,
        "pi": math.pi, "big": 2**1000, "-big": -(2**64), "max": 2**64 - 1,
        "nul": "a\0b", "lone": "\ud800x\udfff", "bytes": b"\0\xff\0", "empty": b"",
        7: ["int key"], "tuple": (1, (2, 3)), "deep": [[[[[[[[[[[]]]]]]]]]]],
        "bool_not_int": [True, 1, False, 0], "float_not_int": [1.0, 1],
    }
    for node_id in echo_daemon.daemon.plugin("nodes").runtimes:  # type: ignore[union-attr]
        answer = echo_daemon.call(echo_daemon.daemon.bus.send, f"node:{node_id}/0",
                                  {"payload": tricky})
        assert same(answer["payload"], tricky), node_id
        assert answer["payload"]["tuple"] == [1, [2, 3]]
        assert type(answer["payload"]["bool_not_int"][0]) is bool


def test_a_node_under_the_daemon_in_a_thread_restarts(echo_daemon: ThreadedDaemon) -> None:
    # With no SIGCHLD handler the exit is still seen (pidfd), and the node comes back.
    plugin: Any = echo_daemon.daemon.plugin("nodes")
    pid = plugin.runtimes["echo"].pid
    import os
    import signal

    os.kill(pid, signal.SIGKILL)

    async def restarted() -> None:
        await wait_until(echo_daemon.reactor, lambda: plugin.runtimes["echo"].ready and
                         plugin.runtimes["echo"].pid not in (None, pid),
                         what="the restart", timeout=10.0)

    echo_daemon.call(restarted)
    answer = echo_daemon.call(echo_daemon.daemon.bus.send, "node:echo/0", {"payload": 1})
    assert answer["payload"] == 1



