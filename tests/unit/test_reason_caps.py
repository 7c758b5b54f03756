"""Long reason texts are bounded in bytes, not only in count: classified by their head and tail
(reasons.cut), kept (memo keys, pending keys, examples, the shared listing, the bounce state)
at most reasons.CUT_AT characters long, and marked where they were shortened."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_queue_fastpath import SMALL_CAPS, assert_same

from postfix_queue_monitor import diagnosis, listing, queue, reasons, report, state_schema
from postfix_queue_monitor.maillog.tally import TEXT_CHARS, Tally

NOW = 1795966800.0
FIX = Path(__file__).resolve().parent.parent / "fixtures" / "reasons"
#: the most characters of one text anything keeps (CUT_AT, recomputed: a test against CUT_AT
#: itself would pass with a bound of a gigabyte)
BOUND = reasons.HEAD_CHARS + len(reasons.CUT_MARK) + reasons.TAIL_CHARS
#: no status code in the filler: the cause must come from the head or the tail, not from a
#: code repeated on every line (with "550-5.1.1" here shape 2 passed on a head-only cut)
FILLER = "550-Reference R{i:08d} line {n}: see the postmaster pages. "
#: (reply's first line, the last one with Postfix's note, the class the text means)
SHAPES = [
    ("550-5.1.1 The email account that you tried to reach does not exist.",
     "550 5.1.1 end (in reply to RCPT TO command)", "recipient_unknown"),
    ("554-5.7.1 Service unavailable; Client host [203.0.113.5] blocked using zen.spamhaus.org",
     "554 5.7.1 end (in reply to MAIL FROM command)", "policy"),
    # the cause only in the last line, after a long banner: the tail decides
    ("550-mx.example ESMTP banner", "550 5.1.1 <u@example.net>: User unknown "
     "(in reply to RCPT TO command)", "recipient_unknown"),
    ("452-4.2.2 The email account that you tried to reach is over quota.",
     "452 4.2.2 end (in reply to RCPT TO command)", "mailbox_full"),
]


def long_text(i: int, chars: int, shape: int = 0) -> str:
    first, last, _ = SHAPES[shape]
    head = f"host mx{i}.example.net[192.0.2.{i % 250 + 1}] said: {first} "
    body, n = "", 0
    while len(head) + len(body) + len(last) < chars:
        body += FILLER.format(i=i, n=n)
        n += 1
    return head + body + last


def _corpus() -> list[tuple[str, str]]:
    rows = []
    for path in sorted(FIX.glob("*.tsv")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.startswith("#"):
                text, cls = line.split("\t")[:2]
                rows.append((text, cls))
    return rows


# -- the classifier ---------------------------------------------------------------------------

@pytest.mark.parametrize("shape", range(len(SHAPES)))
def test_a_megabyte_text_is_classified_by_its_cut_and_as_its_meaning_says(shape, monkeypatch):
    """Fails without the cut: the classifier read the whole megabyte (~0.2 s a text, and every
    cache kept it whole)."""
    read: list[int] = []
    inner = reasons._classify
    monkeypatch.setattr(reasons, "_classify", lambda t: read.append(len(t)) or inner(t))
    reasons._classify_text.cache_clear()
    text = long_text(7, 1 << 20, shape)
    assert reasons.classify(text) == SHAPES[shape][2]
    assert read and max(read) <= BOUND
    assert reasons.is_permanent(text) == SHAPES[shape][1].startswith("5")


def test_cut_keeps_short_texts_whole_and_marks_long_ones():
    assert reasons.CUT_AT == BOUND <= 1024
    short = "x" * BOUND
    assert reasons.cut(short) is short
    text = long_text(1, 5000)
    got = reasons.cut(text)
    assert len(got) == BOUND
    assert got == text[:reasons.HEAD_CHARS] + reasons.CUT_MARK + text[-reasons.TAIL_CHARS:]
    assert got.isascii()           # one byte a character in memory


def test_no_corpus_text_changes_class_by_a_cut_smaller_than_ours(monkeypatch):
    """Every text of tests/fixtures/reasons/ classifies as it does whole, also when cut at a
    head of 300 and a tail of 100 characters, the margin reasons.py names. (None is longer than
    CUT_AT itself, so at the shipped bound the comparison would hold whatever cut() kept.)"""
    rows = _corpus()
    assert len(rows) > 1000
    monkeypatch.setattr(reasons, "HEAD_CHARS", 300)
    monkeypatch.setattr(reasons, "TAIL_CHARS", 100)
    monkeypatch.setattr(reasons, "CUT_AT", 300 + len(reasons.CUT_MARK) + 100)
    reasons._classify_text.cache_clear()
    cut = [t for t, _ in rows if reasons.cut(t) != t]
    assert len(cut) >= 20
    changed = [(cls, t) for t, cls in rows
               if reasons.classify(t) != reasons._classify(reasons.normalize(t))]
    reasons._classify_text.cache_clear()
    assert changed == []


# -- the queue snapshot -----------------------------------------------------------------------

def listing_lines(n: int, chars: int) -> list[bytes]:
    return [json.dumps({
        "queue_name": "deferred", "queue_id": f"{i:010X}", "arrival_time": int(NOW) - i,
        "message_size": 2048, "forced_expire": False, "sender": "s@example.org",
        "recipients": [{"address": f"r{i}@example{i % 3}.net",
                        "delay_reason": long_text(i, chars, i % len(SHAPES))}]}).encode() + b"\n"
                      for i in range(n)]


def kept_texts(snap: queue.QueueSnapshot) -> list[str]:
    keys = [k for k in (*snap.class_of, *snap.tokens, *snap.deferred_reason_texts)]
    return keys + [k[2] for k in snap.pending if isinstance(k[2], str)]


@pytest.mark.parametrize("fast", [True, False], ids=["fast-path", "json-path"])
def test_long_reason_texts_are_kept_cut_in_a_snapshot(fast):
    """Fails without the cut: memo keys and examples were 20 KB each."""
    lines = listing_lines(40, 20_000)
    snap = queue.parse_json_lines(lines, NOW, fast=fast)
    texts = kept_texts(snap)
    assert texts and max(map(len, texts)) <= BOUND
    assert all(reasons.CUT_MARK in t for t in snap.deferred_reason_texts)
    assert dict(snap.deferred_classes) == {"recipient_unknown": 20, "policy": 10,
                                           "mailbox_full": 10}
    # the shared listing stores the same cut texts
    data = listing.to_data(snap, "/usr/sbin/postqueue", None)
    assert max(map(len, data["deferred_reason_texts"])) <= BOUND
    # what is printed says the text was shortened
    assert all(line.endswith("…") for line in diagnosis.advice(snap) if "e.g." in line)
    doc = report.build(snap)
    examples = [d["example"] for d in doc["deferred_reason_details"] if d.get("example")]
    assert examples and all(reasons.CUT_MARK in e for e in examples)


def test_pending_keys_of_a_long_text_are_cut_while_parsing(monkeypatch):
    """The JSON path's pending keys (before a fold) hold the cut, not the 20 KB text."""
    seen: list[int] = []
    fold = queue.QueueSnapshot.fold

    def spy(self):
        seen.extend(len(k[2]) for k in self.pending if isinstance(k[2], str))
        return fold(self)

    monkeypatch.setattr(queue.QueueSnapshot, "fold", spy)
    monkeypatch.setattr(queue, "MAX_PENDING", 5)
    queue.parse_json_lines(listing_lines(30, 20_000), NOW, fast=False)
    assert seen and max(seen) <= BOUND


def test_postqueue_p_keeps_long_texts_cut():
    lines = []
    for i in range(5):
        lines += [f"ABCDEF{i:04X}     2048 Thu Dec  3 10:00:0{i}  s@example.org",
                  f"({long_text(i, 10_000, i % len(SHAPES))})",
                  f"                                         r{i}@example.net", ""]
    snap = queue.parse_text(lines, NOW)
    assert sum(snap.deferred_classes.values()) == 5
    assert max(map(len, kept_texts(snap))) <= BOUND


def test_long_texts_give_the_same_snapshot_on_both_paths():
    lines = listing_lines(12, 3000)
    assert_same(lines)
    assert_same(lines, SMALL_CAPS)


# -- the bounce check's tallies -----------------------------------------------------------------

def test_the_bounce_tally_classifies_a_long_text_and_keeps_a_marked_example():
    tally = Tally()
    text = long_text(3, 60_000, 2)
    tally.count(60, 1, text)
    tally.count(60, 3, long_text(4, 60_000, 3))
    assert tally.buckets[60][4] == {"recipient_unknown": 1}
    assert tally.buckets[60][5] == {"mailbox_full": 1}
    kept = tally.texts["b:recipient_unknown"][0]
    assert len(kept) == TEXT_CHARS and kept.endswith("…") and text.startswith(kept[:-1])
    # the state it writes loads (the schema's text bound) and says the same
    loaded = Tally.load(state_schema.bounce(json.loads(json.dumps(tally.dump()))))
    assert loaded.texts == tally.texts
    short = Tally()
    short.count(60, 1, "host a[192.0.2.1] said: 550 5.1.1 User unknown")
    assert not short.texts["b:recipient_unknown"][0].endswith("…")
