"""The one time budget: what is left, and the child's and a lock's share of it."""

from __future__ import annotations

import pytest

from postfix_queue_monitor.deadline import MIN_CHILD, MIN_LOCK, Deadline


class FakeMonotonic:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_remaining_counts_down_and_stops_at_zero() -> None:
    clock = FakeMonotonic()
    d = Deadline(10.0, clock)
    assert d.remaining() == 10.0 and not d.expired()
    clock.t += 4.0
    assert d.remaining() == 6.0
    clock.t += 7.0
    assert d.remaining() == 0.0 and d.expired()


@pytest.mark.parametrize(("seconds", "child"), [(10.0, 9.0), (3.0, 2.4), (0.1, MIN_CHILD)])
def test_child_keeps_a_reserve_for_the_status_line(seconds: float, child: float) -> None:
    assert Deadline(seconds, FakeMonotonic()).child_timeout() == pytest.approx(child)


def test_child_timeout_shrinks_with_what_is_left() -> None:
    clock = FakeMonotonic()
    d = Deadline(10.0, clock)
    clock.t += 5.0
    assert d.child_timeout() == pytest.approx(4.0)


def test_lock_takes_a_share_of_what_is_left() -> None:
    clock = FakeMonotonic()
    d = Deadline(9.0, clock)
    assert d.lock_timeout(1 / 3) == pytest.approx(3.0)
    assert d.lock_timeout() == pytest.approx(4.5)
    clock.t += 9.0
    assert d.lock_timeout() == MIN_LOCK
