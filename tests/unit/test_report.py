"""postfix_queue_report run in-process (main(argv)) against stand-in postqueues that print
captured or generated listings; every number is checked against a plain, independent reading of
the fixture written here (its own JSON loop, its own age buckets, its own text → class table)."""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from pathlib import Path

import pytest

from fakes import fake_postqueue
from postfix_queue_monitor import report

NOW = 1795966800.0  # 2026-11-29 15:40:00 UTC
QUEUES = ("maildrop", "incoming", "active", "deferred", "hold")
LIMITS_MIN = (5, 10, 20, 40, 80, 160, 320, 640, 1280)
CLASSES = ("loop", "tls", "auth", "dns", "rate_limited", "greylisted", "mailbox_full",
           "recipient_unknown", "refused", "timeout", "lost_connection", "policy", "transport",
           "other")

#: the fixture's delay texts, by a distinctive piece: (class, permanent) — written by hand
TEXT_CLASS = (
    ("4.7.28", "rate_limited", False),
    ("OverQuotaTemp", "mailbox_full", False),
    ("4.7.500 Server busy", "rate_limited", False),
    ("(S3150)", "policy", True),
    ("[TSS04]", "rate_limited", False),
    ("552 1 Requested mail action aborted, mailbox not found", "recipient_unknown", True),
    ("user does not exist", "recipient_unknown", True),
    ("Comcast block for spam", "policy", True),
    ("mx00.gmx.net", "mailbox_full", False),
    ("IP address is black listed", "policy", True),
    ("DOC-1369#451", "greylisted", False),
    ("pphosted.com", "greylisted", False),
    ("barracudanetworks.com", "policy", True),
    ("Greylisted, see", "greylisted", False),
    ("Connection timed out", "timeout", False),
    ("Connection refused", "refused", False),
    ("Name service error", "dns", False),
    ("TLS is required", "tls", False),
    ("SASL authentication failed", "auth", True),
    ("lost connection with", "lost_connection", False),
    ("timed out while sending RCPT TO", "timeout", False),
    ("queue file write error", "other", False),
    ("loops back to myself", "loop", True),
    ("mail transport unavailable", "transport", False),
)


pytestmark = pytest.mark.usefixtures("utc")


def bucket(age_s: float) -> int:
    for i, limit in enumerate(LIMITS_MIN):
        if age_s <= limit * 60:
            return i
    return len(LIMITS_MIN)


def text_class(text: str) -> tuple[str, bool]:
    for piece, cls, permanent in TEXT_CLASS:
        if piece in text:
            return cls, permanent
    raise AssertionError(f"fixture text without a hand-written class: {text}")


def independent(path: Path) -> dict:
    """A plain reading of a postqueue -j capture."""
    q = {name: {"messages": 0, "recipients": 0, "bytes": 0, "oldest": None} for name in QUEUES}
    domains, ages = Counter(), {}
    classes, permanent = Counter(), Counter()
    for line in path.read_text(encoding="utf-8").splitlines():
        obj = json.loads(line)
        s = q[obj["queue_name"]]
        s["messages"] += 1
        s["recipients"] += len(obj["recipients"])
        s["bytes"] += obj["message_size"]
        s["oldest"] = min(s["oldest"] or obj["arrival_time"], obj["arrival_time"])
        if obj["queue_name"] != "deferred":
            continue
        for r in obj["recipients"]:
            dom = r["address"].split("@")[1].lower()
            domains[dom] += 1
            ages.setdefault(dom, [0] * 10)[bucket(NOW - obj["arrival_time"])] += 1
            cls, perm = text_class(r["delay_reason"])
            classes[cls] += 1
            permanent[cls] += perm
    total = {k: sum(q[n][k] for n in QUEUES) for k in ("messages", "recipients", "bytes")}
    total["oldest"] = min(q[n]["oldest"] for n in QUEUES if q[n]["oldest"])
    q["total"] = total
    for s in q.values():
        s["oldest_age"] = NOW - s["oldest"] if s["oldest"] else 0
    return {"queues": q, "domains": domains, "ages": ages, "classes": classes,
            "permanent": permanent}


@pytest.fixture
def providers(tmp_path, fixtures):
    path = fixtures / "report-providers-mixed.jsonl"
    return fake_postqueue(tmp_path, j=path), independent(path)


# -- JSON -----------------------------------------------------------------------------------

def test_json_numbers_match_an_independent_count(providers, run_main):
    pq, want = providers
    code, out = run_main(report.main, ["--postqueue", pq, "--json", "--top", "100"], NOW)
    assert code == 0
    assert out.count("\n") == 1                     # one object, one line
    doc = json.loads(out)
    for name in (*QUEUES, "total"):
        got, exp = doc["queues"][name], want["queues"][name]
        assert (got["messages"], got["recipients"], got["bytes"]) == \
            (exp["messages"], exp["recipients"], exp["bytes"]), name
        assert got["oldest_age"] == pytest.approx(exp["oldest_age"]), name
    assert doc["queues"]["total"]["messages"] == 105
    assert doc["deferred_reasons"] == {c: want["classes"].get(c, 0) for c in CLASSES}
    assert list(doc["deferred_reasons"]) == list(CLASSES)
    assert {d["domain"]: d["recipients"] for d in doc["top_domains"]} == dict(want["domains"])
    assert {d["domain"]: d["ages"] for d in doc["top_domains"]} == want["ages"]
    assert doc["deferred_ages"] == [sum(a[i] for a in want["ages"].values()) for i in range(10)]
    assert doc["age_buckets_min"] == list(LIMITS_MIN)
    for d in doc["deferred_reason_details"]:
        assert d["permanent"] == want["permanent"][d["class"]], d["class"]
        assert d["temporary"] + d["permanent"] == want["classes"][d["class"]]
        assert ("postsuper -d" in d["action"]) == (d["permanent"] > 0)
        assert text_class(d["example"])[0] == d["class"]
    assert doc["malformed"] == 0 and doc["notes"] == []


def test_json_top_domains_most_first_and_cut_at_top(providers, run_main):
    pq, want = providers
    _, out = run_main(report.main, ["--postqueue", pq, "--json", "--top", "5"], NOW)
    top = json.loads(out)["top_domains"]
    assert len(top) == 5
    counts = [d["recipients"] for d in top]
    assert counts == sorted(counts, reverse=True)
    assert counts == [n for _, n in want["domains"].most_common(5)]
    assert all(want["domains"][d["domain"]] == d["recipients"] for d in top)
    # the IDN and the mixed-case domain arrive as one lower-case UTF-8 name each
    _, out = run_main(report.main, ["--postqueue", pq, "--json", "--top", "100"], NOW)
    names = {d["domain"] for d in json.loads(out)["top_domains"]}
    assert "bücher.example" in names and "mixed-case.example" in names
    assert "bücher.example" in out                  # not \u-escaped


def test_json_real_capture(tmp_path, fixtures, run_main):
    pq = fake_postqueue(tmp_path, j=fixtures / "deferred-50-four-reasons.jsonl")
    code, out = run_main(report.main, ["--postqueue", pq, "--json"], NOW)
    doc = json.loads(out)
    assert code == 0
    assert doc["queues"]["deferred"]["messages"] == 50
    assert doc["queues"]["total"]["bytes"] == 189860
    assert {c: n for c, n in doc["deferred_reasons"].items() if n} == {"greylisted": 33,
                                                                       "refused": 17}
    assert doc["top_domains"][0] == {"domain": "d20.example", "recipients": 33,
                                     "ages": [0, 0, 0, 0, 33, 0, 0, 0, 0, 0]}


def test_json_empty_queue(tmp_path, run_main):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    code, out = run_main(report.main, ["--postqueue", fake_postqueue(tmp_path, j=empty),
                                       "--json"], NOW)
    doc = json.loads(out)
    assert code == 0
    assert doc["queues"]["total"] == {"messages": 0, "recipients": 0, "bytes": 0,
                                      "oldest_age": 0.0, "forced_expire": 0}
    assert doc["top_domains"] == [] and set(doc["deferred_reasons"].values()) == {0}


# -- text -----------------------------------------------------------------------------------

def _section(out: str, title: str) -> list[str]:
    lines = out.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith(title))
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].strip()), len(lines))
    return lines[start + 1:end]


def test_text_tables_match_an_independent_count(providers, run_main):
    pq, want = providers
    code, out = run_main(report.main, ["--postqueue", pq, "--top", "8"], NOW)
    assert code == 0
    assert out.startswith("Postfix queue report, 2026-11-29 15:40:00 UTC (postqueue -j)\n")

    queue_rows = out.split("\n\n")[1].splitlines()
    assert queue_rows[0].split() == ["queue", "messages", "recipients", "bytes", "oldest"]
    for row in queue_rows[1:]:
        name, msgs, rcpts, size = row.split()[:4]
        exp = want["queues"][name]
        assert (int(msgs), int(rcpts), int(size)) == (exp["messages"], exp["recipients"],
                                                      exp["bytes"])
    assert [r.split()[0] for r in queue_rows[1:]] == [*QUEUES, "total"]
    assert queue_rows[-1].split()[-2:] == ["6d", "6h"]     # hold's 9000 minutes

    table = _section(out, "Deferred queue by destination domain and age")
    assert table[0].split() == ["domain", "total", "5", "10", "20", "40", "80", "160", "320",
                                "640", "1280", "1280+"]
    assert len({len(r) for r in table[:-1]}) == 1          # aligned (right-aligned numbers)
    total = [int(x) for x in table[1].split()[1:]]
    assert table[1].split()[0] == "TOTAL"
    assert total[0] == sum(want["domains"].values())
    assert total[1:] == [sum(a[i] for a in want["ages"].values()) for i in range(10)]
    shown = table[2:10]
    for row in shown:
        dom, *nums = row.split()
        assert int(nums[0]) == want["domains"][dom]
        assert [int(x) for x in nums[1:]] == want["ages"][dom]
    rest = len(want["domains"]) - 8
    assert table[10] == (f"... and {rest} more domain(s) with "
                         f"{total[0] - sum(int(r.split()[1]) for r in shown)} recipient(s) "
                         f"(--top to show more)")

    reasons = _section(out, "Deferral reasons (recipients)")
    assert reasons[0].split() == ["class", "recipients", "share", "temporary", "permanent",
                                  "top", "domain"]
    rows = [r for r in reasons[1:] if not r.startswith("    ")]
    assert {r.split()[0]: int(r.split()[1]) for r in rows} == dict(want["classes"])
    for r in rows:
        cls, n, _share, temp, perm = r.split()[:5]
        assert int(perm) == want["permanent"][cls] and int(temp) + int(perm) == int(n)
    counts = [int(r.split()[1]) for r in rows]
    assert counts == sorted(counts, reverse=True)
    examples = [r for r in reasons if r.startswith("    example: ")]
    actions = [r for r in reasons if r.startswith("    action:  ")]
    assert len(examples) == len(actions) == len(rows) == len(CLASSES)
    assert sum("postsuper -d" in a for a in actions) == sum(
        1 for c in want["permanent"] if want["permanent"][c])


def test_text_postqueue_p_fallback(tmp_path, fixtures, run_main):
    """Postfix < 3.1: -j refused, -p read; the counts are of the -p listing."""
    path = fixtures / "deferred-60-short-ids.txt"
    entries = [ln for ln in path.read_text().splitlines()
               if re.match(r"^[0-9A-Za-z]+[*!]?#?\s+\d+ ", ln)]
    pq = fake_postqueue(tmp_path, p=path, j_invalid=True)
    code, out = run_main(report.main, ["--postqueue", pq], NOW)
    assert code == 0
    assert "(postqueue -p)" in out.splitlines()[0]
    total = next(ln for ln in out.splitlines() if ln.startswith("total "))
    assert int(total.split()[1]) == len(entries)
    assert int(total.split()[3]) == sum(int(ln.split()[1]) for ln in entries)
    assert "unmarked messages counted as deferred" in out


def test_text_empty_queue(tmp_path, run_main):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    code, out = run_main(report.main, ["--postqueue", fake_postqueue(tmp_path, j=empty)], NOW)
    assert code == 0
    assert "Deferred queue: empty." in out
    assert re.search(r"^total\s+0\s+0\s+0\s+-$", out, re.M)


def test_malformed_lines_are_noted(tmp_path, fixtures, run_main):
    pq = fake_postqueue(tmp_path, j=fixtures / "mixed-malformed-dup-postfix311.jsonl")
    code, out = run_main(report.main, ["--postqueue", pq], NOW)
    assert code == 0
    assert "skipped 3 malformed line(s) of 9:" in out


# -- failures: one line, non-zero ----------------------------------------------------------

@pytest.mark.parametrize(("kind", "code", "words"), [
    ("down", 3, "Postfix is not running"),
    ("not-allowed", 3, "may not list the queue"),
    ("missing", 3, "not found: install Postfix or pass --postqueue"),
    ("hung", 3, "did not finish within 0.4 s"),   # -t 0.5 less the reserve
    ("garbage", 3, "none parses as a queue listing"),
    ("bad-option", 2, "unrecognized arguments: --frobnicate"),
    ("bad-timeout", 2, "is not a duration"),
    ("bad-top", 2, "must be at least 1"),
])
def test_failure_is_one_line(tmp_path, run_main, kind, code, words):
    argv = []
    if kind == "down":
        argv = ["--postqueue", fake_postqueue(
            tmp_path, rc=69, stderr="postqueue: fatal: Queue report unavailable - mail system "
                                    "is down (Connect to the Postfix showq service: Connection "
                                    "refused)")]
    elif kind == "not-allowed":
        argv = ["--postqueue", fake_postqueue(
            tmp_path, rc=77, stderr="postqueue: fatal: User nagios(114) is not allowed to view "
                                    "the mail queue")]
    elif kind == "missing":
        argv = ["--postqueue", str(tmp_path / "no-such-postqueue")]
    elif kind == "hung":
        argv = ["--postqueue", fake_postqueue(tmp_path, sleep=10), "-t", "0.5"]
    elif kind == "garbage":
        junk = tmp_path / "junk.txt"
        junk.write_text("this is not\npostqueue output\n")
        argv = ["--postqueue", fake_postqueue(tmp_path, j=junk)]
    elif kind == "bad-option":
        argv = ["--frobnicate"]
    elif kind == "bad-timeout":
        argv = ["-t", "soon"]
    elif kind == "bad-top":
        argv = ["--top", "0"]
    started = time.monotonic()
    got, out = run_main(report.main, [*argv, "--json"], NOW)
    assert got == code
    assert out.count("\n") == 1 and words in out, out
    assert time.monotonic() - started < 5


def test_internal_error_is_one_line(tmp_path, fixtures, capsys):
    pq = fake_postqueue(tmp_path, j=fixtures / "deferred-50-four-reasons.jsonl")

    def broken_clock() -> float:
        raise RuntimeError("clock broke")

    code = report.main(["--postqueue", pq], clock=broken_clock)
    out, err = capsys.readouterr()
    assert code == 3 and err == ""
    assert out == "postfix_queue_report: internal error: RuntimeError: clock broke " \
                  "(please report it)\n"


def test_version_and_help_exit_0(capsys):
    assert report.main(["-V"]) == 0
    assert capsys.readouterr().out.startswith("postfix_queue_report ")
    assert report.main(["--help"]) == 0
    assert "--json" in capsys.readouterr().out
