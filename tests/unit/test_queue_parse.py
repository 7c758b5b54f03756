"""Pure parser tests on real-format captures of postqueue -j and -p."""

from __future__ import annotations

import json
import time
from collections import Counter

import pytest

from postfix_queue_monitor import queue
from postfix_queue_monitor.queue import age_bucket, infer_arrival, parse_json_lines, parse_text

NOW = 1795966800.0  # 2026-11-29 15:40:00 UTC


pytestmark = pytest.mark.usefixtures("utc")


def independent_counts(path):
    """A second, plain reading of a -j capture to check the parser against."""
    per_queue, rcpts, sizes, oldest = Counter(), Counter(), Counter(), {}
    domains, reasons = Counter(), Counter()
    for line in path.read_text().splitlines():
        obj = json.loads(line)
        q = obj["queue_name"]
        per_queue[q] += 1
        rcpts[q] += len(obj["recipients"])
        sizes[q] += obj["message_size"]
        oldest[q] = min(oldest.get(q, obj["arrival_time"]), obj["arrival_time"])
        if q == "deferred":
            for r in obj["recipients"]:
                domains[r["address"].split("@")[1]] += 1
                reasons[r.get("delay_reason", "")] += 1
    return per_queue, rcpts, sizes, oldest, domains, reasons


def test_real_capture_counts_match_an_independent_count(fixtures):
    path = fixtures / "deferred-50-four-reasons.jsonl"
    per_queue, rcpts, sizes, oldest, domains, reasons = independent_counts(path)
    snap = parse_json_lines(path.read_bytes().splitlines(keepends=True), NOW)
    assert snap.malformed == 0
    for q in queue.QUEUES:
        assert snap.queues[q].messages == per_queue[q]
        assert snap.queues[q].recipients == rcpts[q]
        assert snap.queues[q].bytes == sizes[q]
    assert snap.stats("total").messages == 50
    assert snap.queues["deferred"].oldest_arrival == oldest["deferred"]
    assert snap.stats("deferred").oldest_age(NOW) == NOW - oldest["deferred"]
    assert dict(snap.deferred_domains) == dict(domains)
    assert sum(snap.deferred_reason_texts.values()) == sum(reasons.values())
    assert snap.queues["deferred"].forced_expire == sum(
        1 for line in path.read_text().splitlines() if json.loads(line)["forced_expire"])


def test_malformed_duplicate_unknown_members_and_foreign_queue(fixtures):
    path = fixtures / "mixed-malformed-dup-postfix311.jsonl"
    snap = parse_json_lines(path.read_bytes().splitlines(keepends=True), NOW)
    # the cut line, the non-JSON line and the "corrupt" queue (never a real listing) are skipped
    assert snap.malformed == 3
    assert len(snap.malformed_samples) == 3
    assert "not json at all" in snap.malformed_samples
    assert snap.lines == 9
    # a message listed twice counts twice (the listing is not a snapshot)
    assert snap.queues["deferred"].messages == 2
    assert snap.queues["active"].messages == 1          # orig_address / unknown members ignored
    assert snap.queues["hold"].messages == 1
    assert snap.queues["hold"].recipients == 2
    assert snap.queues["hold"].forced_expire == 1
    assert snap.queues["incoming"].oldest_arrival == 1795966000.5
    assert snap.queues["maildrop"].messages == 1
    assert snap.stats("total").messages == 6


def test_empty_listing_is_an_empty_queue():
    snap = parse_json_lines([], NOW)
    assert snap.stats("total").messages == 0
    assert snap.oldest_age(queue.QUEUES) == 0.0
    assert snap.malformed == 0


def test_text_listing_real_capture(fixtures):
    """The real -p excerpt: 15 messages shown, all unmarked (deferred), one forced (#)."""
    path = fixtures / "deferred-60-short-ids.txt"
    snap = parse_text(path.read_bytes().splitlines(keepends=True), NOW)
    assert snap.source == "text"
    assert snap.malformed == 0
    entries = [ln for ln in path.read_text().splitlines() if ln[:1].isalnum()]
    assert snap.queues["deferred"].messages == len(entries) == 15
    assert snap.queues["deferred"].forced_expire == 1
    assert snap.queues["deferred"].recipients == 15
    assert snap.expected_messages == 2687
    # "Sun Nov 29 14:23:17" is the oldest arrival shown, in local time (UTC here)
    assert snap.queues["deferred"].oldest_arrival == 1795962197.0
    assert snap.deferred_domains["d20.example"] == 6
    assert sum(snap.deferred_reason_texts.values()) == 15


def test_text_listing_long_ids_markers_reasons_and_years(fixtures):
    path = fixtures / "mixed-long-ids-markers.txt"
    snap = parse_text(path.read_bytes().splitlines(keepends=True), NOW)
    assert snap.malformed == 0
    assert snap.queues["active"].messages == 1
    assert snap.queues["hold"].messages == 2
    assert snap.queues["hold"].recipients == 3
    assert snap.queues["hold"].forced_expire == 1
    assert snap.queues["deferred"].messages == 2       # unmarked: deferred (-p cannot tell)
    assert snap.queues["deferred"].recipients == 4
    assert snap.queues["deferred"].forced_expire == 1
    # Dec 31 cannot be this year (in the future): last year's, whose weekday matches
    assert snap.queues["deferred"].oldest_arrival == time.mktime(
        (2025, 12, 31, 22, 0, 0, 0, 0, -1))
    # the reason is printed once and holds for the recipients that follow it
    assert snap.deferred_reason_texts == Counter({
        "host mx.example.org[198.51.100.7] said: 451 4.7.1 Try again later (in reply to RCPT "
        "TO command)": 2,
        "connect to mx.other.example[203.0.113.9]:25: Connection refused": 1})
    assert snap.deferred_domains["exämple.de"] == 1
    assert snap.expected_messages == 5


def test_text_empty_queue(fixtures):
    snap = parse_text((fixtures / "empty-p.txt").read_bytes().splitlines(), NOW)
    assert snap.stats("total").messages == 0 and snap.malformed == 0


@pytest.mark.parametrize("date,expected", [
    ("Sun Nov 29 14:31:38", (2026, 11, 29, 14, 31, 38)),
    ("Mon Nov 30 00:10:00", (2026, 11, 30, 0, 10, 0)),     # a few hours ahead: clock skew
    ("Wed Dec 31 22:00:00", (2025, 12, 31, 22, 0, 0)),
    ("Thu Feb 29 12:00:00", (2024, 2, 29, 12, 0, 0)),     # leap day: the last year that had one
    ("Sun Nov  1 01:02:03", (2026, 11, 1, 1, 2, 3)),
])
def test_year_inference(date, expected):
    assert infer_arrival(date, NOW) == time.mktime((*expected, 0, 0, -1))


@pytest.mark.parametrize("age_min,bucket", [(0, 0), (5, 0), (5.01, 1), (10, 1), (1280, 8),
                                            (1281, 9), (100000, 9)])
def test_qshape_age_buckets(age_min, bucket):
    assert age_bucket(age_min * 60) == bucket


def test_memory_flat_distinct_texts_are_capped():
    """A queue whose every reason text is unique does not grow the snapshot without bound."""
    def lines():
        for i in range(queue.MAX_REASON_TEXTS * 3):
            yield json.dumps({"queue_name": "deferred", "queue_id": f"Q{i}", "arrival_time": NOW,
                              "message_size": 1, "sender": "",
                              "recipients": [{"address": f"u@d{i}.example",
                                              "delay_reason": f"451 4.3.0 id={i}"}]})
    snap = parse_json_lines(lines(), NOW)
    assert len(snap.deferred_reason_texts) == queue.MAX_REASON_TEXTS
    assert sum(snap.deferred_classes.values()) == queue.MAX_REASON_TEXTS * 3


def test_stdlib_json_fallback_gives_the_same_snapshot(fixtures, monkeypatch):
    lines = (fixtures / "mixed-malformed-dup-postfix311.jsonl").read_bytes().splitlines(True)
    lines += (fixtures / "deferred-50-four-reasons.jsonl").read_bytes().splitlines(True)
    fast = parse_json_lines(lines, NOW)
    monkeypatch.setattr(queue, "_loads", json.loads)
    slow = parse_json_lines(lines, NOW)
    assert fast == slow and fast.stats("total").messages == 56


def test_folding_midway_changes_nothing(fixtures, monkeypatch):
    lines = (fixtures / "deferred-50-four-reasons.jsonl").read_bytes().splitlines(True)
    once = parse_json_lines(lines, NOW)
    monkeypatch.setattr(queue, "MAX_PENDING", 2)
    monkeypatch.setattr(queue, "MAX_PENDING_TOKENS", 2)
    often = parse_json_lines(lines, NOW)
    assert once == often


def test_bare_local_part_recipient_is_local():
    line = json.dumps({"queue_name": "deferred", "queue_id": "A", "arrival_time": NOW,
                       "message_size": 1, "sender": "",
                       "recipients": [{"address": "postmaster", "delay_reason": "x"},
                                      {"address": "u@Example.COM.", "delay_reason": "x"}]})
    snap = parse_json_lines([line], NOW)
    assert dict(snap.deferred_domains) == {"(local)": 1, "example.com": 1}


@pytest.mark.parametrize("rcpts", [[{"address": 5}], [{"address": "a@b", "delay_reason": 5}],
                                   ["a@b"], {"address": "a@b"}, 7])
def test_wrongly_typed_recipients_are_malformed_not_a_crash(rcpts):
    line = json.dumps({"queue_name": "deferred", "queue_id": "A", "arrival_time": NOW,
                       "message_size": 1, "sender": "", "recipients": rcpts})
    snap = parse_json_lines([line], NOW)
    assert snap.malformed == 1 and snap.stats("total").messages == 0


def test_summary_line_mismatch_is_noted_with_verbose(fixtures):
    from postfix_queue_monitor.diagnosis import parse_notes
    full = parse_text((fixtures / "mixed-long-ids-markers.txt").read_bytes().splitlines(), NOW)
    assert not [n for n in parse_notes(full) if "summary" in n]
    cut = parse_text((fixtures / "deferred-60-short-ids.txt").read_bytes().splitlines(), NOW)
    assert "postqueue -p's summary says 2687 request(s), 15 were read" in " ".join(
        parse_notes(cut))
