"""reasons.class_key: texts with equal keys must classify alike, because queue.py remembers
classes by key (QueueSnapshot.classify). Proved where it can fail: normalize() of the key is
normalize() of the text, on every corpus text, on corpus texts with other addresses put in,
and on generated texts built from the characters the patterns turn on."""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from postfix_queue_monitor import queue, reasons

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "reasons"
#: the labelled parts as of this test (a new held-back part is read by its own evaluation first)
PARTS = ("tuning.tsv", "heldback.tsv", "realworld.tsv")   # (parts 8 and 9 are in realworld.tsv)
ANGLE = re.compile(r"<[^<>\s@]*@[^<>\s]*>")


def corpus() -> list[str]:
    texts = []
    for name in PARTS:
        for line in (FIXTURES / name).read_text(encoding="utf-8").splitlines():
            if line and not line.startswith("#"):
                texts.append(line.split("\t")[0])
    return texts


TEXTS = corpus()


def assert_alike(text: str) -> None:
    key = reasons.class_key(text)
    assert reasons.normalize(key) == reasons.normalize(reasons.cut(text)), (text, key)
    assert reasons.classify(key) == reasons.classify(text), (text, key)


def test_every_corpus_text_normalises_and_classifies_as_its_key():
    assert len(TEXTS) > 1000
    for text in TEXTS:
        assert_alike(text)


def test_corpus_texts_that_quote_other_addresses_share_a_key():
    """The point of the key: the same reply for another recipient is the same key (and a text
    whose address sits in a host's brackets keeps it, so it is not shared)."""
    quoting = [t for t in TEXTS if ANGLE.search(t)]
    assert len(quoting) > 50
    shared = 0
    for text in quoting:
        other = ANGLE.sub("<someone.else+tag@other-domain.example>", text)
        assert_alike(other)
        if reasons.class_key(other) == reasons.class_key(text):
            shared += 1
        else:       # a key kept the address: only where it is unsafe to replace
            assert reasons.class_key(text) == reasons.cut(text) or "[" in text
    assert shared > len(quoting) * 0.9


def test_a_host_whose_brackets_hold_an_address_keeps_it():
    # normalize reads "x[a<b@c.d>]" as a host (the bracket holds a dot): the key must not
    # replace the address there, or the key would normalise to something else
    for text in ("said x[a<b@c.d>]: 450 busy", "host y[(<u@v.w>)]:25 said: 421 later"):
        assert reasons.class_key(text) == text
        assert_alike(text)


def test_the_benchmark_streams_address_texts_share_one_key():
    text = ("host mx1.d.example[198.1.2.3] said: 450 4.2.0 <user{}@d.example>: Recipient "
            "address rejected: Greylisted, see http://postgrey.example/d.example.html "
            "(in reply to RCPT TO command)")
    assert reasons.class_key(text.format(1)) == reasons.class_key(text.format(987654))
    assert_alike(text.format(1))


def test_a_long_text_is_keyed_by_its_cut():
    text = "host a.b[1.2.3.4] said: 452 4.2.2 <u@v> " + "over quota " * 200
    assert reasons.class_key(text) == reasons.class_key(reasons.cut(text))
    assert len(reasons.class_key(text)) <= reasons.CUT_AT
    assert_alike(text)
    # "<@>" becomes the longer "<ADDR>": a key never grows past a cut text
    text = "said: 450 " + "<@> " * 200
    assert reasons.class_key(text) == reasons.cut(text)
    assert len(reasons.class_key("said: 450 <@>")) > len("said: 450 <@>")


# the pieces the normalisation patterns turn on: brackets, angle brackets, "@", separators
PIECES = st.sampled_from([
    "<", ">", "@", "[", "]", "(", ")", " ", "\t", ":", ".", "/", "x", "mx.a.example", "ab", "h[",
    "<u@d.example>", "<@>", "<a@b", "a@b>", "u.s+r=x@d-x.example", "[1.2.3.4]", "[127.0.0.1]:25",
    "[/run/lmtp]", "[TSS04]", "[dMDIcuXEPaWkLrAnT9uJTA.uk12]", "- gsmtp", " 450 4.2.0 ",
    "Recipient address rejected", "said: ", "1234", "-", "=", "+",
])


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(PIECES, max_size=14).map("".join))
def test_generated_texts_normalise_as_their_key(text):
    key = reasons.class_key(text)
    assert reasons.normalize(key) == reasons.normalize(text), (text, key)


#: an address and what can stand around it within a word
AROUND = st.tuples(
    st.sampled_from(["", " ", "said: ", "h[", "x[a", "(", "h[(", ":", "a]", "[1.2]x", "TO:"]),
    st.sampled_from(["<u@d.example>", "<u@d>", "<@>", "<a.b@c[1.2]>", "<a@b@c.d>"]),
    st.sampled_from(["", "]", "]:25", ">", ")]", ": 450", ".]", " [ID12345678901]"]))


@settings(max_examples=1000, deadline=None)
@given(st.lists(AROUND.map("".join), min_size=1, max_size=3).map(" ".join))
def test_addresses_in_any_surrounding_normalise_as_their_key(text):
    key = reasons.class_key(text)
    assert reasons.normalize(key) == reasons.normalize(text), (text, key)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="<>@[]() .:/xa1\t", max_size=30))
def test_any_text_of_those_characters_normalises_as_its_key(text):
    assert reasons.normalize(reasons.class_key(text)) == reasons.normalize(text)


def test_the_key_memo_gives_the_same_snapshot_as_classifying_every_text(monkeypatch):
    """queue.QueueSnapshot.classify remembers classes by key: every text classified alone
    (MAX_KEY_MEMO 0) gives the same snapshot, on both paths."""
    import json
    lines = []
    for i, text in enumerate(TEXTS[:400] + [ANGLE.sub(f"<r{j}@x{j % 7}.example>", t)
                                             for j, t in enumerate(TEXTS) if ANGLE.search(t)]):
        lines.append(json.dumps({
            "queue_name": "deferred", "queue_id": f"Q{i}", "arrival_time": 1795960000 - i,
            "message_size": 1000 + i, "forced_expire": False, "sender": "s@src.example",
            "recipients": [{"address": f"r{i}@x{i % 7}.example", "delay_reason": text}],
        }).encode() + b"\n")
    monkeypatch.setattr(queue, "MAX_REASON_TEXTS", 20)     # most texts counted by class
    for fast in (True, False):
        memo = queue.parse_json_lines(lines, 1795966800.0, fast=fast)
        monkeypatch.setattr(queue, "MAX_KEY_MEMO", 0)
        alone = queue.parse_json_lines(lines, 1795966800.0, fast=fast)
        monkeypatch.setattr(queue, "MAX_KEY_MEMO", 10_000)
        assert memo == alone
        assert memo.deferred_classes == alone.deferred_classes
        assert len(memo.class_of_key) > 10 and not alone.class_of_key
