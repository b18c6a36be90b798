"""kill -9 at random moments: every write a child acknowledged must be there afterwards.

A child process (helpers/crash_child.py, a real asyncio reactor, the fsync thread and
frequent automatic compactions) writes in a loop and prints each write after the call
returned. The parent SIGKILLs it after a random 20-300 ms (later if it has not yet kept pace:
50 writes and one compaction per child on average), reopens the same file, checks
every printed write, and starts the next child on it.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import random
import select
import signal
import subprocess
import sys
import time
from types import ModuleType

from twisted.internet.defer import succeed
from twisted.internet.task import Clock

from hadaemon.store import Store

HELPER = pathlib.Path(__file__).parent / "helpers" / "crash_child.py"
ROOT = pathlib.Path(__file__).resolve().parents[2]
ITERATIONS = 40


def _load_helper() -> ModuleType:
    spec = importlib.util.spec_from_file_location("crash_child", HELPER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _read_for(proc: subprocess.Popen[bytes], seconds: float, until: bytes | None) -> bytes:
    """Read the child's stdout for ``seconds`` (or until ``until`` shows up)."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    out = b""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            out += chunk
            if until is not None and until in out:
                break
    return out


class Expectations:
    """What the printed lines promise, accumulated over all the children."""

    def __init__(self, child: ModuleType) -> None:
        self.child = child
        self.puts: set[int] = set()
        self.deletes: set[int] = set()
        self.hot: dict[int, int] = {}
        self.compactions = 0

    def record(self, lines: list[str]) -> None:
        for line in lines:
            if line == "#compacted":
                self.compactions += 1
                continue
            kind, number = line.split()
            n = int(number)
            if kind == "P":
                self.puts.add(n)
            elif kind == "D":
                self.deletes.add(n)
            else:
                assert kind == "H", line
                self.hot[n % self.child.HOT] = n

    def check(self, store: Store, last_line: str | None) -> None:
        child = self.child
        # The one write that may have happened without its line: the one right after the
        # last printed line. After "P n" that is the delete of u<n - WINDOW>.
        maybe_deleted = None
        if last_line is not None and last_line.startswith("P "):
            maybe_deleted = int(last_line.split()[1]) - child.WINDOW
        for n in sorted(self.puts - self.deletes):
            value = store.get(child.unique_key(n))
            if value is None and n == maybe_deleted:
                self.deletes.add(n)  # it was deleted: it must stay so
                continue
            assert value == child.unique_value(n), f"acknowledged put of u{n} lost: {value!r}"
        for n in self.deletes:
            assert child.unique_key(n) not in store, f"deleted u{n} came back"
        for slot, n in self.hot.items():
            value = store.get(f"h{slot}")
            assert value is not None and value["n"] >= n and value["n"] % child.HOT == slot
            assert value == child.hot_value(value["n"])
        # Only the write after the last printed line may exist without having been printed.
        newest = max(self.puts, default=-1)
        for key in store.keys("u"):
            n = int(key[1:])
            assert n in self.puts or n == newest + 1, f"{key} was never written"
            if n == newest + 1:
                assert store.get(key) == child.unique_value(n)
                self.puts.add(n)
        assert store.get("meta/next", 0) >= newest


def _now(f):  # type: ignore[no-untyped-def]
    return succeed(f())


def _spawn(path: pathlib.Path, stderr_path: pathlib.Path) -> subprocess.Popen[bytes]:
    with open(stderr_path, "wb") as stderr:
        return subprocess.Popen(
            [sys.executable, str(HELPER), str(path)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, cwd=ROOT,
        )


def _reap(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    for pipe in (proc.stdin, proc.stdout):
        if pipe is not None:
            pipe.close()


def test_kill_9_loses_no_acknowledged_write(tmp_path: pathlib.Path) -> None:
    child = _load_helper()
    path = tmp_path / "state.db"
    expect = Expectations(child)
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    written = 0
    procs = [_spawn(path, tmp_path / "child-0.err")]
    try:
        for iteration in range(ITERATIONS):
            proc, stderr_path = procs[-1], tmp_path / f"child-{iteration}.err"
            out = _read_for(proc, 60, until=b"loaded\n")
            assert proc.stdin is not None
            proc.stdin.write(b"go\n")  # its turn: the previous child is dead and checked
            proc.stdin.flush()
            out += _read_for(proc, 60, until=b"ready\n")
            assert b"ready\n" in out, f"child did not start: {stderr_path.read_text()}"
            if iteration + 1 < ITERATIONS:  # imports overlap with this child's run
                procs.append(_spawn(path, tmp_path / f"child-{iteration + 1}.err"))
            out += _read_for(proc, rng.uniform(0.02, 0.3), until=None)
            # A loaded machine fits less work in that window: go on until the children
            # have kept pace (50 writes and one compaction each, on average), so every
            # run exercises what the assertions at the end say it did.
            deadline = time.monotonic() + 120
            while (written + out.count(b"\nP ") < (iteration + 1) * 51
                   or expect.compactions + out.count(b"\n#compacted\n") < iteration + 1):
                assert time.monotonic() < deadline, f"child {iteration} made no progress"
                out += _read_for(proc, 0.02, until=None)
            os.kill(proc.pid, signal.SIGKILL)
            out += _read_for(proc, 10, until=None)  # what it wrote before dying, to EOF
            assert proc.wait(10) == -signal.SIGKILL, stderr_path.read_text()
            _reap(proc)
            # Lines cut by the kill are dropped: their writes are not checked, no more.
            lines = out.decode().split("\n")[:-1]
            assert lines[:2] == ["loaded", "ready"], lines[:3]
            ops = [line for line in lines[2:] if not line.startswith("#")]
            written += len(ops)
            expect.record(lines[2:])
            store = Store(path, reactor=Clock(), run_in_thread=_now)
            store.open()
            try:
                expect.check(store, ops[-1] if ops else None)
            except AssertionError as exc:
                raise AssertionError(f"iteration {iteration} (seed {seed}): {exc}") from exc
            finally:
                store.stopService()
    finally:
        for proc in procs:  # no child outlives the test, whatever happened
            _reap(proc)
    assert written > ITERATIONS * 50, written  # the children really were writing
    assert expect.compactions >= ITERATIONS, expect.compactions  # and compacting
