"""The growth rule of the contract, pure."""

from __future__ import annotations

import pytest

from postfix_queue_monitor.growth import compute_growth, prune

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
    g = compute_growth([(1000.25, 10)], 1000.75, 11, W)
    assert g.rate == pytest.approx(1 / 0.5 * 3600)


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
