"""The node client's callback pool (hadaemon/nodes/client/_homegear_pool.py), on real
threads: order while callbacks return promptly, overlap when one blocks, ten at most,
startUpComplete beyond them, time waiting for the daemon not counted."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from hadaemon.nodes.client import _homegear_pool as pool


class Record:
    """What the jobs did, with a condition to wait for what a test means."""

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.started: list[Any] = []
        self.finished: list[Any] = []
        self.running = 0
        self.most = 0  # the most jobs that ran at once
        self.release = threading.Event()

    def job(self, block: Callable[[Any], bool] = lambda job: False) -> Callable[[Any], None]:
        """A lane's ``run``: records the job, blocks until released if ``block(job)``."""

        def run(job: Any) -> None:
            with self.changed:
                self.started.append(job)
                self.running += 1
                self.most = max(self.most, self.running)
                self.changed.notify_all()
            if block(job):
                self.release.wait()
            with self.changed:
                self.running -= 1
                self.finished.append(job)
                self.changed.notify_all()

        return run

    def wait_for(self, predicate: Callable[[], bool], what: str) -> None:
        with self.changed:
            assert self.changed.wait_for(predicate, timeout=10.0), what


@pytest.fixture
def record() -> Iterator[Record]:
    record = Record()
    yield record
    record.release.set()  # no thread is left blocked by a failed test


def test_prompt_callbacks_run_in_order_one_at_a_time(record: Record) -> None:
    lane = pool.Lane(record.job())
    callbacks = pool.Pool([lane])
    for start in range(0, 3000, 100):
        callbacks.submit(lane, list(range(start, start + 100)))
    record.wait_for(lambda: len(record.finished) == 3000, "3000 jobs")
    assert record.started == list(range(3000))
    assert record.most == 1


def test_a_blocked_callback_lets_the_next_ones_start(
    record: Record, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pool, "OVERLAP_AFTER", 0.05)
    lane = pool.Lane(record.job(lambda job: job == 0))
    callbacks = pool.Pool([lane])
    callbacks.submit(lane, [0, 1, 2, 3])
    record.wait_for(lambda: record.finished == [1, 2, 3], "the jobs after the blocked one")
    assert record.started == [0, 1, 2, 3]  # started in order all the same
    record.release.set()
    record.wait_for(lambda: len(record.finished) == 4, "the blocked job")


def test_ten_at_most_and_start_up_complete_beyond_them(
    record: Record, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pool, "OVERLAP_AFTER", 0.01)
    lane = pool.Lane(record.job(lambda job: job != "startUpComplete"))
    callbacks = pool.Pool([lane])
    callbacks.submit(lane, list(range(12)))
    record.wait_for(lambda: record.running == 10, "ten blocked jobs")
    # Every thread is blocked: startUpComplete still runs (on an eleventh thread)...
    callbacks.submit_first(lane, "startUpComplete")
    record.wait_for(lambda: "startUpComplete" in record.finished, "startUpComplete")
    # ...while the last two wait for a thread.
    assert record.started[:10] == list(range(10)) and callbacks.waiting() == 2
    assert record.most == 11
    record.release.set()
    record.wait_for(lambda: len(record.finished) == 13, "every job")
    assert record.started[11:] == [10, 11]


def lane_with_a_call(run: Callable[[Any, Callable[[float], None]], None]) -> tuple[
        pool.Pool, pool.Lane]:
    """A pool of one lane whose ``run(job, call)`` may ``call(seconds)``: a call to the
    daemon answered after that long (the callback waits as the client does)."""
    def call(seconds: float) -> None:
        paused = callbacks.pause()
        time.sleep(seconds)  # the call's wait, not a synchronisation
        callbacks.resume(paused)

    lane = pool.Lane(lambda job: run(job, call))
    callbacks = pool.Pool([lane])
    return callbacks, lane


def test_time_spent_waiting_for_the_daemon_does_not_count(
    record: Record, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pool, "OVERLAP_AFTER", 0.05)

    def run(job: int, call: Callable[[float], None]) -> None:
        record.job()(job)
        if job == 0:
            call(0.5)  # ten times the threshold
            record.job()("answered")

    callbacks, lane = lane_with_a_call(run)
    callbacks.submit(lane, [0, 1])
    record.wait_for(lambda: len(record.finished) == 3, "both jobs")
    assert record.finished == [0, "answered", 1]  # 1 waited for 0's call
    assert record.most == 1


def test_drained_once_nothing_waits(record: Record) -> None:
    drained: list[int] = []

    def on_drained() -> None:
        with record.changed:
            drained.append(len(record.finished))
            record.changed.notify_all()

    lane = pool.Lane(record.job(), on_drained)
    callbacks = pool.Pool([lane])
    callbacks.submit(lane, list(range(50)))
    record.wait_for(lambda: bool(drained), "the lane to drain")
    assert drained == [50]


def test_a_callback_that_blocks_after_waiting_for_the_daemon_lets_the_next_start(
    record: Record, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pool, "OVERLAP_AFTER", 0.05)

    def run(job: int, call: Callable[[float], None]) -> None:
        if job == 0:
            call(0.2)  # a call first: the idle thread stops timing...
        record.job(lambda job: job == 0)(job)  # ...then it blocks for good

    callbacks, lane = lane_with_a_call(run)
    callbacks.submit(lane, [0, 1])
    record.wait_for(lambda: record.finished == [1], "the job after the blocked one")
    record.release.set()
    record.wait_for(lambda: record.finished == [1, 0], "the blocked job")
