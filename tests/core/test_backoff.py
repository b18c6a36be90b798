"""The one backoff policy, on a fake clock and a fixed random source."""

from __future__ import annotations

import pytest
from twisted.internet.task import Clock

from hadaemon.backoff import Backoff


def delays(backoff: Backoff, count: int) -> list[float]:
    return [backoff.next_delay() for _ in range(count)]


def test_doubles_up_to_the_cap_and_reset_starts_over() -> None:
    backoff = Backoff(0.5, 3.0)
    assert delays(backoff, 5) == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert backoff.failures == 5
    backoff.reset()
    assert delays(backoff, 2) == [0.5, 1.0]


def test_a_first_delay_beyond_the_cap_waits_the_cap() -> None:
    assert delays(Backoff(5.0, 1.0), 3) == [1.0, 1.0, 1.0]


def test_factor_one_is_constant_and_huge_counts_do_not_overflow() -> None:
    assert delays(Backoff(0.5, 60.0, factor=1.0), 9)[-1] == 0.5
    big = Backoff(1.0, 10.0, factor=1e300)
    assert delays(big, 3) == [1.0, 10.0, 10.0]
    steady = Backoff(1.0, 10.0)
    steady.failures = 100_000
    assert steady.next_delay() == 10.0


def test_jitter_takes_up_to_its_fraction_off() -> None:
    assert Backoff(2.0, 10.0, jitter=0.5, rand=lambda: 1.0).next_delay() == 1.0
    assert Backoff(2.0, 10.0, jitter=0.5, rand=lambda: 0.0).next_delay() == 2.0
    assert Backoff(2.0, 10.0, jitter=0.25, rand=lambda: 0.5).next_delay() == 1.75
    assert Backoff(2.0, 10.0, rand=lambda: 1.0).next_delay() == 2.0  # no jitter: exact


def test_an_attempt_that_ran_reset_after_starts_over_on_the_clock() -> None:
    clock = Clock()
    backoff = Backoff(1.0, 60.0, reset_after=10.0, clock=clock)
    backoff.started()
    clock.advance(1)
    assert backoff.next_delay() == 1.0
    backoff.started()
    clock.advance(9.5)
    assert backoff.next_delay() == 2.0  # ran 9.5 s: still in a row
    backoff.started()
    clock.advance(10.0)
    assert backoff.next_delay() == 1.0  # ran 10 s: over
    assert backoff.failures == 1
    assert backoff.next_delay() == 2.0  # no started(): nothing ran, still in a row


def test_delays_drive_a_retry_loop_on_a_fake_clock() -> None:
    clock = Clock()
    backoff = Backoff(0.5, 2.0, jitter=0.5, rand=lambda: 0.5, clock=clock)
    attempts: list[float] = []

    def attempt() -> None:
        attempts.append(clock.seconds())
        if len(attempts) < 5:
            clock.callLater(backoff.next_delay(), attempt)

    attempt()
    clock.pump([0.125] * 40)
    # 0.375, 0.75, 1.5, 1.5 (3/4 of 0.5, 1, 2, 2): retries at these offsets
    assert attempts == [0.0, 0.375, 1.125, 2.625, 4.125]


@pytest.mark.parametrize("args", [
    {"delay": -1.0, "delay_max": 1.0},
    {"delay": 1.0, "delay_max": -1.0},
    {"delay": 1.0, "delay_max": 2.0, "factor": 0.5},
    {"delay": 1.0, "delay_max": 2.0, "jitter": 1.5},
    {"delay": 1.0, "delay_max": 2.0, "reset_after": 5.0},  # without a clock
])
def test_nonsense_is_refused(args: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=r"backoff needs|needs a clock"):
        Backoff(**args)  # type: ignore[arg-type]
