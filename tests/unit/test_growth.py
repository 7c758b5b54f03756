"""The growth rule of the contract, pure."""

from __future__ import annotations

import pytest

from postfix_queue_monitor.growth import compute_growth, min_interval, prune

W = 900.0


def test_first_run_waits_for_baseline():
    g = compute_growth([], 1000.0, 10, W)
    assert g.rate is None and g.note == "waiting for baseline"


def test_reference_is_oldest_inside_window():
    samples = [(0.0, 0), (200.0, 10), (500.0, 40)]
    g = compute_growth(samples, 1000.0, 100, W)   # window starts at 100
    assert g.ref == (200.0, 10)
    assert g.rate == pytest.approx((100 - 10) / 800 * 3600)


def test_reference_is_newest_older_when_none_inside():
    samples = [(0.0, 0), (50.0, 5)]
    g = compute_growth(samples, 1000.0, 100, W)
    assert g.ref == (50.0, 5)
    assert g.rate == pytest.approx(95 / 950 * 3600)


def test_sub_second_resolution():
    g = compute_growth([(1000.25, 10)], 1060.75, 11, W)
    assert g.rate == pytest.approx(1 / 60.5 * 3600)


def test_no_rate_from_samples_closer_than_the_minimum_interval():
    """Issue 16.5: 50 then 51 deferred 0.2 s apart gave +18,000/h (CRITICAL for nothing)."""
    assert min_interval(W) == 60 and min_interval(60) == 15
    g = compute_growth([(1000.0, 50)], 1000.2, 51, W)
    assert g.rate is None and g.note == "waiting: samples only 0.2 s apart, a rate needs 60 s"
    # the previous rate of this window is reused while it is inside the window
    g = compute_growth([(1000.0, 50)], 1000.2, 51, W, previous=(990.0, 12.5))
    assert g.rate == 12.5 and g.note.startswith("rate of 10 s ago")
    g = compute_growth([(1000.0, 50)], 1000.2, 51, W, previous=(1.0, 12.5))
    assert g.rate is None
    # an inside sample too close: the newest older one is the reference
    g = compute_growth([(0.0, 40), (1000.0, 50)], 1000.2, 51, W)
    assert g.ref == (0.0, 40) and g.rate == pytest.approx(11 / 1000.2 * 3600)


def test_flushed_queue_is_negative_growth():
    g = compute_growth([(0.0, 5000)], 600.0, 0, W)
    assert g.rate == pytest.approx(-30000)


def test_clock_backwards_drops_future_samples():
    g = compute_growth([(2000.0, 10)], 1000.0, 10, W)
    assert g.rate is None and "backwards" in g.note
    g = compute_growth([(500.0, 0), (2000.0, 10)], 1000.0, 10, W)
    assert g.rate == pytest.approx(10 / 500 * 3600) and "1 newer sample" in g.note
    assert prune([(500.0, 0), (2000.0, 10), (1000.0, 10)], 1000.0, W) == [(500.0, 0),
                                                                           (1000.0, 10)]


def test_prune_keeps_window_and_one_older():
    samples = [(float(t), t) for t in range(0, 2000, 100)]
    kept = prune(samples, 2000.0, W)
    assert kept[0] == (1000.0, 1000) and kept[1][0] >= 1100.0
    assert kept[-1] == (1900.0, 1900)


def test_a_newer_sample_of_an_overlapping_run_is_kept_not_called_backwards():
    """A run whose listing (t=1000) is older than a sample another run stored meanwhile
    (1005) while the clock reads 1010: no reference, no 'backwards', kept by prune."""
    g = compute_growth([(500.0, 0), (1005.0, 12)], 1000.0, 10, W, wall=1010.0)
    assert g.rate == pytest.approx(10 / 500 * 3600) and g.note == ""
    assert prune([(500.0, 0), (1005.0, 12), (1000.0, 10)], 1010.0, W) == [
        (500.0, 0), (1000.0, 10), (1005.0, 12)]


def test_a_reused_listing_gives_the_listers_rate_and_one_sample():
    g = compute_growth([(500.0, 0), (1000.0, 10)], 1000.0, 10, W, wall=1059.0)
    assert g.rate == pytest.approx(10 / 500 * 3600) and g.note == ""
    assert prune([(500.0, 0), (1000.0, 10), (1000.0, 10)], 1059.0, W) == [(500.0, 0),
                                                                           (1000.0, 10)]
