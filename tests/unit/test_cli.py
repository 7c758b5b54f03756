"""Thresholds, durations and the parser factory's UNKNOWN behaviour."""

from __future__ import annotations

import argparse

import pytest

from postfix_queue_monitor.cli import fmt_age, parse_duration, parse_range, violation


@pytest.mark.parametrize("text,start,end,invert", [
    ("10", 0, 10, False),
    ("10:", 10, float("inf"), False),
    ("~:10", float("-inf"), 10, False),
    ("10:20", 10, 20, False),
    ("@10:20", 10, 20, True),
    ("2.5", 0, 2.5, False),
])
def test_nagios_range_syntax(text, start, end, invert):
    r = parse_range(text)
    assert (r.start, r.end, r.invert) == (start, end, invert)


@pytest.mark.parametrize("text,start,end", [
    ("1h", 0, 3600), ("30m:2d", 1800, 172800), ("~:90s", float("-inf"), 90), ("1w", 0, 604800),
    ("1.5h", 0, 5400),
])
def test_age_ranges_take_suffixes(text, start, end):
    r = parse_range(text, durations=True)
    assert (r.start, r.end) == (start, end)


@pytest.mark.parametrize("text", ["1h", "abc", "10:5", "1:2:3", "", "@"])
def test_bad_ranges_are_rejected(text):
    with pytest.raises(argparse.ArgumentTypeError):
        parse_range(text)


def test_plain_number_is_an_upper_limit_for_rates():
    r = parse_range("100", plain_is_upper=True)
    assert r.match(-500) and r.match(100) and not r.match(101)
    assert parse_range("0:100", plain_is_upper=True).start == 0


@pytest.mark.parametrize("text,seconds", [("900", 900), ("15m", 900), ("1h", 3600),
                                          ("2d", 172800), ("0.5", 0.5)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["0", "-5m", "5x", "m"])
def test_bad_durations(text):
    with pytest.raises(argparse.ArgumentTypeError):
        parse_duration(text)


def test_violation_wording():
    assert violation(523, parse_range("500")) == "> 500"
    assert violation(3, parse_range("10:")) == "< 10"
    assert violation(15, parse_range("@10:20")) == "inside @10:20"
    assert violation(90000, parse_range("1d", durations=True), fmt_age) == "> 1d"


@pytest.mark.parametrize("s,text", [(0, "0s"), (59, "59s"), (61, "1m 1s"), (3600, "1h"),
                                    (3660, "1h 1m"), (266400, "3d 2h")])
def test_fmt_age(s, text):
    assert fmt_age(s) == text
