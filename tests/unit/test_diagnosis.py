"""From alert to cause: the "why" on a non-OK first line, the -v lines, and log_cause for the
bounce-rate check. Snapshots are built by the real parser from real or realistic listings."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from fakes import fake_postqueue
from postfix_queue_monitor import diagnosis
from postfix_queue_monitor.plugins import queue_size
from postfix_queue_monitor.queue import QueueSnapshot, parse_json_lines

NOW = 1795966800.0

TIMEOUT = "connect to alt1.gmail-smtp-in.l.google.com[142.250.153.27]:25: Connection timed out"
REFUSED = "connect to mx.example.net[192.0.2.7]:25: Connection refused"
UNKNOWN = ("host gmail-smtp-in.l.google.com[142.250.102.27] said: 550-5.1.1 The email account "
           "that you tried to reach does not exist. (in reply to RCPT TO command)")


def listing(spec: list[tuple[str, str, int]], split: bool = False) -> list[str]:
    """One deferred message per (domain, reason, recipients) entry (with ``split``: one message
    per recipient), as postqueue -j prints them."""
    lines = []
    for i, (domain, reason, n) in enumerate(spec):
        groups = [[k] for k in range(n)] if split else [list(range(n))]
        for j, group in enumerate(groups):
            lines.append(json.dumps({
                "queue_name": "deferred", "queue_id": f"A{i:04X}{j:06X}",
                "arrival_time": NOW - 3600, "message_size": 1000, "forced_expire": False,
                "sender": "s@ours.example",
                "recipients": [{"address": f"u{k}@{domain}", "delay_reason": reason}
                               for k in group]}))
    return lines


def snap_of(spec) -> QueueSnapshot:
    return parse_json_lines(listing(spec), NOW)


def test_cause_names_the_dominant_class_and_its_top_domain():
    # 523 deferred recipients: 71 % timeout, most of them gmail.com
    snap = snap_of([("gmail.com", TIMEOUT, 300), ("yahoo.com", TIMEOUT, 71),
                    ("example.net", REFUSED, 152)])
    assert diagnosis.cause(snap) == "71% timeout, top gmail.com 300"


def test_cause_names_a_runner_up_when_nothing_dominates():
    snap = snap_of([("gmail.com", TIMEOUT, 45), ("example.net", REFUSED, 30),
                    ("gmail.com", UNKNOWN, 25)])
    assert diagnosis.cause(snap) == "45% timeout, 30% refused, top gmail.com 45"
    # a runner-up under 15 % is not worth the space
    snap = snap_of([("gmail.com", TIMEOUT, 50), ("example.net", REFUSED, 10),
                    ("a.example", UNKNOWN, 9), ("b.example", "mail transport unavailable", 9),
                    ("c.example", "mail for c.example loops back to myself", 9),
                    ("d.example", "Cannot start TLS: handshake failure", 13)])
    assert diagnosis.cause(snap) == "50% timeout, top gmail.com 50"


def test_cause_is_empty_without_deferred_mail():
    assert diagnosis.cause(QueueSnapshot(now=NOW)) == ""


def test_cause_on_the_first_line_of_a_check(tmp_path, capsys):
    path = tmp_path / "q.jsonl"
    path.write_text("\n".join(listing([("gmail.com", TIMEOUT, 300), ("yahoo.com", TIMEOUT, 71),
                                       ("example.net", REFUSED, 152)], split=True)) + "\n")
    pq = fake_postqueue(tmp_path, j=path)
    with pytest.raises(SystemExit) as exc:
        queue_size.main(["--postqueue", pq, "-w", "500", "-c", "2000", "--queue", "deferred"],
                        clock=lambda: NOW)
    first = capsys.readouterr().out.splitlines()[0]
    assert exc.value.code == 1
    assert first.split(" | ")[0] == ("POSTFIX QUEUE WARNING - 523 deferred (> 500): "
                                     "71% timeout, top gmail.com 300")


def test_details_lists_classes_and_domains():
    snap = snap_of([("gmail.com", TIMEOUT, 3), ("gmail.com", UNKNOWN, 2),
                    ("example.net", REFUSED, 1)])
    assert diagnosis.details(snap) == [
        "deferred recipients by reason: timeout 3, recipient_unknown 2, refused 1",
        "top deferred domains: gmail.com 5, example.net 1"]
    assert diagnosis.details(QueueSnapshot(now=NOW)) == []


def test_advice_gives_an_example_and_an_action_per_top_class():
    snap = snap_of([("gmail.com", TIMEOUT, 3), ("gmail.com", UNKNOWN, 2),
                    ("example.net", REFUSED, 1), ("x.example", "mail transport unavailable", 1)])
    lines = diagnosis.advice(snap)
    assert len(lines) == 3 * 2
    assert lines[0] == f"  timeout: e.g. {TIMEOUT}"
    assert lines[1].startswith("  timeout: check that outgoing port 25")
    # the 550 text is permanent: its action carries the postsuper advice
    assert lines[3].startswith("  recipient_unknown: the address does not exist")
    assert "postsuper -d" in lines[3] and "postsuper" not in lines[1]
    assert not any("transport" in ln for ln in lines)          # 4th class: not shown


def test_class_examples_and_permanence_count_recipients():
    snap = snap_of([("gmail.com", UNKNOWN, 4), ("gmail.com", TIMEOUT, 2),
                    ("x.example", "delivery temporarily suspended: " + TIMEOUT, 3)])
    ex = diagnosis.class_examples(snap)
    assert ex["timeout"] == ("delivery temporarily suspended: " + TIMEOUT, 3)
    assert ex["recipient_unknown"] == (UNKNOWN, 4)
    assert diagnosis.class_permanent(snap) == {"recipient_unknown": (0, 4), "timeout": (5, 0)}


@pytest.mark.parametrize(("classes", "domains", "want"), [
    ({"recipient_unknown": 62, "policy": 20, "mailbox_full": 18},
     {"example.com": 40, "gmail.com": 30}, "62% recipient_unknown, top example.com 40"),
    ({"recipient_unknown": 50, "policy": 30, "other": 20},
     {"gmail.com": 10, "outlook.com": 60, "yahoo.com": 30},
     "50% recipient_unknown, 30% policy, top outlook.com 60"),
    ({"policy": 1}, {"t-online.de": 1}, "100% policy, top t-online.de 1"),
    ({"policy": 3}, {}, "100% policy"),
    ({}, {}, ""),
    ({"policy": 0}, {"x.example": 0}, ""),
])
def test_log_cause(classes, domains, want):
    assert diagnosis.log_cause(Counter(classes), Counter(domains)) == want
    assert diagnosis.log_cause(dict(classes), dict(domains)) == want   # any mapping


def test_shorten_keeps_one_line():
    assert diagnosis.shorten("a\n  b\tc") == "a b c"
    long = "x" * 500
    assert len(diagnosis.shorten(long)) == diagnosis.EXAMPLE_CHARS
    assert diagnosis.shorten(long).endswith("…")
