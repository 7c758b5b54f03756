"""parse_json_lines' fast path (one regular expression per line, no JSON decode) against the
JSON path it stands in for: the same snapshot on every input, down to the order in which
domains, classes and reason texts were first met (most_common breaks ties by it), the types of
the figures (an int oldest arrival is not a float one) and what the checks print from it."""

from __future__ import annotations

import gc
import io
import json
import sys
from functools import partial
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fakes import fake_postqueue
from postfix_queue_monitor import diagnosis, queue, reasons
from postfix_queue_monitor.proc import MAX_LINE, Child

NOW = 1795966800.0
ROOT = Path(__file__).resolve().parents[2]
HIST = ((60.0, 3600.0, 86400.0), (1000.0, 100000.0))
DECODERS = [json.loads]
try:
    import orjson
    DECODERS.append(orjson.loads)
except ImportError:  # pragma: no cover - orjson is a dependency, but not a hard one
    pass
#: tiny caps, so that a few lines reach every cap: texts kept, domains kept, folds, caches,
#: and blocks of three lines (lines left to the decoder at a block's start, middle and end)
SMALL_CAPS = {"MAX_REASON_TEXTS": 2, "MAX_DOMAINS": 3, "MAX_PENDING": 2, "MAX_CLASS_MEMO": 2,
              "MAX_PENDING_TOKENS": 2,
              "MAX_KEY_MEMO": 2,
              "BLOCK_LINES": 3}


def ordered(value: object) -> object:
    """Mappings as lists of items (insertion order counts), recursively; the rest by repr."""
    if isinstance(value, dict):
        return [(k, ordered(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [ordered(v) for v in value]
    if isinstance(value, queue.QueueStats):
        return (type(value).__name__, repr(value), type(value.oldest_arrival).__name__,
                getattr(value, "ages", None), getattr(value, "sizes", None),
                getattr(value, "age_sum", None))
    return repr(value)


def seen(snap: queue.QueueSnapshot) -> list:
    """Everything a consumer of the snapshot sees."""
    return [(f, ordered(getattr(snap, f))) for f in queue.QueueSnapshot.COMPARED] + [
        ("cause", diagnosis.cause(snap)), ("details", diagnosis.details(snap)),
        ("advice", diagnosis.advice(snap))]


def both(lines: list, decoder=json.loads, histograms=None) -> tuple[list, list, int]:
    """(what the fast path gives, what the JSON path gives, lines the fast path decoded)."""
    decoded = 0

    def counting(raw):
        nonlocal decoded
        decoded += 1
        return decoder(raw)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(queue, "_loads", counting)
        fast = queue.parse_json_lines(list(lines), NOW, histograms, fast=True)
        fast_decoded = decoded
        slow = queue.parse_json_lines(list(lines), NOW, histograms, fast=False)
    return seen(fast), seen(slow), fast_decoded


def assert_same(lines: list, caps: dict | None = None) -> int:
    """Fast and JSON path agree, with every decoder, with and without histograms, with the
    given caps; returns how many lines the fast path left to the decoder."""
    with pytest.MonkeyPatch.context() as mp:
        for name, value in (caps or {}).items():
            mp.setattr(queue, name, value)
        for decoder in DECODERS:
            for hist in (None, HIST):
                fast, slow, decoded = both(lines, decoder, hist)
                assert fast == slow
    return decoded


def fixture_lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


# -- (a) the real captures --------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "tests/fixtures").glob("*.jsonl")))
@pytest.mark.parametrize("caps", [None, SMALL_CAPS], ids=["caps", "small-caps"])
def test_every_capture_gives_the_same_snapshot_on_both_paths(fixtures, name, caps):
    lines = fixture_lines(fixtures / name)
    decoded = assert_same(lines, caps)
    # the lines as they come (no newline on the last one), and as text
    assert_same([ln.rstrip(b"\n") for ln in lines], caps)
    assert_same([ln.decode("utf-8", "replace") for ln in lines], caps)
    if name in ("deferred-50-four-reasons.jsonl", "deferred-10-first-of-50.jsonl"):
        assert decoded == 0, "real postqueue -j lines must take the fast path"
    assert decoded < len(lines)


def test_the_fast_path_is_the_default_without_orjson_only(fixtures, monkeypatch):
    lines = fixture_lines(fixtures / "deferred-50-four-reasons.jsonl")
    calls = []
    monkeypatch.setattr(queue, "_loads", lambda raw: calls.append(raw) or json.loads(raw))
    queue.parse_json_lines(lines, NOW)                   # a decoder other than json.loads
    assert len(calls) == len(lines)
    calls.clear()
    monkeypatch.setattr(queue, "_loads", json.loads)     # the stdlib's: the fast path
    assert queue.parse_json_lines(lines, NOW).stats("total").messages == 50


# -- (b) generated lines: escapes, unicode, quotes, order, missing and extra members, junk ----

_ascii = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7f), max_size=12)
#: what showq prints without an escape: printable ASCII but '"' and '\'
_plain = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7f,
                               blacklist_characters='"\\'), max_size=12)
_plain_texts = st.one_of(_plain, st.sampled_from(
    ["connect to mx.a.example[192.0.2.1]:25: Connection refused", "",
     "host mx[1.2.3.4] said: 450 4.2.0 <u@x.example>: Recipient address rejected: Greylisted",
     "lost connection with x[1.1.1.1] while receiving the initial server greeting"]))
_plain_addresses = st.one_of(
    st.builds(lambda a, b: f"{a}@{b}", _plain, st.sampled_from(["a.example", "B-x.example.",
                                                                 "c.example", ""])),
    _plain, st.sampled_from(["postmaster", "a@b@c.example", "@", "a@", ""]))
_any = st.text(st.characters(blacklist_categories=()), max_size=8)   # surrogates too
_texts = st.one_of(
    _plain_texts, _plain_texts, _ascii, _any,
    st.sampled_from(["connect to mx.a.example[192.0.2.1]:25: Connection refused",
                     "host mx[1.2.3.4] said: 450 4.2.0 <u@x.example>: Recipient address "
                     "rejected: Greylisted (in reply to RCPT TO command)",
                     'say "hi"', "back\\slash", "tab\there", "", "caf\u00e9", "\udcff",
                     "delivery temporarily suspended: lost connection with x[1.1.1.1]"]))
_addresses = st.one_of(
    _plain_addresses, _plain_addresses, st.builds(lambda a, b: f"{a}@{b}", _ascii, _ascii),
    _ascii, _any,
    st.sampled_from(["u@Example.COM.", "postmaster", "a@b@c.example", "@", "a@", "",
                     '"q u"@x.example', "u@d.example"]))
_bad_values = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=False),
                        _ascii, st.just([]), st.just({}), st.integers(10**18, 10**30))
_numbers = st.one_of(st.integers(0, 2 * 10**9), st.integers(-10, 10),
                     st.floats(0, 2e9, allow_nan=False), _bad_values)
_queues = st.one_of(st.sampled_from(queue.QUEUES), st.sampled_from(queue.QUEUES),
                    st.sampled_from(["corrupt", "Deferred", ""]), _bad_values)


@st.composite
def _recipient(draw) -> object:
    if draw(st.integers(0, 15)) == 0:
        return draw(_bad_values)
    members = [("address", draw(st.one_of(_addresses, _addresses, _addresses, _bad_values)))]
    if draw(st.booleans()):
        members.append(("delay_reason", draw(st.one_of(_texts, _texts, _texts, _bad_values))))
    if draw(st.integers(0, 6)) == 0:
        members.insert(draw(st.integers(0, len(members))), ("orig_address", draw(_addresses)))
    if draw(st.integers(0, 6)) == 0:
        members.reverse()
    if draw(st.integers(0, 10)) == 0 and members:
        members.pop(0)
    return members


def _dump(value: object, ascii_only: bool) -> str:
    if isinstance(value, list) and value and all(isinstance(m, tuple) for m in value):
        return "{" + ", ".join(f"{json.dumps(k)}: {_dump(v, ascii_only)}" for k, v in value) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_dump(v, ascii_only) for v in value) + "]"
    return json.dumps(value, ensure_ascii=ascii_only)


@st.composite
def _pristine(draw) -> bytes:
    """A line in showq's own shape (the fast path's), with a few recipients."""
    rcpts = [[("address", draw(_plain_addresses))] + (
        [("delay_reason", draw(_plain_texts))] if draw(st.booleans()) else [])
        for _ in range(draw(st.integers(0, 4)))]
    members = [("queue_name", draw(st.sampled_from(queue.QUEUES))),
               ("queue_id", draw(st.sampled_from(["3F1B6160515", "4jcrbW53CMzBrT4", ""]))),
               ("arrival_time", int(NOW) - draw(st.sampled_from(
                   [0, 299, 300, 301, 4000, 76800, 76801, 10**6, 2 * 10**9]))),
               ("message_size", draw(st.integers(0, 10**7))),
               ("forced_expire", draw(st.booleans())),
               ("sender", draw(st.one_of(st.just("MAILER-DAEMON"), _plain_addresses))),
               ("recipients", rcpts)]
    return (_dump(members, True) + draw(st.sampled_from(["\n", "\n", ""]))).encode()


@st.composite
def _line(draw) -> bytes | str:
    """One line of a listing: showq's own shape, or one with a few members changed."""
    if draw(st.booleans()):
        return draw(_pristine())
    age = draw(st.sampled_from([0, 299, 300, 301, 4000, 76800, 76801, 10**6]))
    members = [
        ("queue_name", draw(_queues) if draw(st.integers(0, 5)) == 0 else
         draw(st.sampled_from(queue.QUEUES))),
        ("queue_id", draw(st.one_of(st.just("3F1B6160515"), _ascii))),
        ("arrival_time", int(NOW) - age if draw(st.integers(0, 5)) else draw(_numbers)),
        ("message_size", draw(st.integers(0, 10**7)) if draw(st.integers(0, 5))
         else draw(_numbers)),
        ("forced_expire", draw(st.booleans()) if draw(st.integers(0, 5)) else draw(_bad_values)),
        ("sender", draw(st.one_of(st.just("MAILER-DAEMON"), _addresses))),
        ("recipients", draw(st.lists(_recipient(), max_size=4)) if draw(st.integers(0, 8))
         else draw(_bad_values)),
    ]
    change = draw(st.integers(0, 12))
    if change == 1:
        members.pop(draw(st.integers(0, len(members) - 1)))
    elif change == 2:
        members.insert(draw(st.integers(0, len(members))), ("future_member", draw(_bad_values)))
    elif change == 3:
        i, j = draw(st.integers(0, len(members) - 1)), draw(st.integers(0, len(members) - 1))
        members[i], members[j] = members[j], members[i]
    elif change == 4:
        members.append(draw(st.sampled_from(members)))         # a member given twice
    ascii_only = draw(st.booleans())
    text = _dump(members, ascii_only)
    tweak = draw(st.integers(0, 14))
    if tweak == 1:
        text = text[:draw(st.integers(0, len(text)))]          # cut short
    elif tweak == 2:
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(['"', "\\", "\x00", "\x01", "}", "\n", " ",
                                                 "\x7f", "\u00e9"])) + text[at:]
    elif tweak == 3:
        text = text.replace(", ", ",").replace(": ", ":")      # compact separators
    elif tweak == 4:
        text = draw(st.sampled_from([" ", "\t", ""])) + text + draw(st.sampled_from(
            [" ", "\r", "\t", " \r"]))
    elif tweak == 5:
        text = text.replace('"arrival_time": ', '"arrival_time": 0', 1)   # a leading zero
    elif tweak == 6:
        text = draw(st.sampled_from(["", " ", "\r", "not json", "[]", "{}", "null"]))
    ending = draw(st.sampled_from(["\n", "\n", "\n", "", "\r\n"]))
    raw = (text + ending).encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 20)) == 0:
        raw = raw.replace(b"@", b"\xff", 1)                    # not UTF-8
    if draw(st.integers(0, 15)) == 0:
        return raw.decode("utf-8", "replace")                  # a text line
    return raw


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(_line(), max_size=8), st.booleans())
def test_generated_lines_give_the_same_snapshot_on_both_paths(lines, small):
    assert_same(lines, SMALL_CAPS if small else None)


# -- (b2) hand-made edge cases: lines the pattern must read as JSON does, or leave to it -------

_BASE = (b'{"queue_name": "deferred", "queue_id": "3F1B6160515", "arrival_time": 1795960000, '
         b'"message_size": 1234, "forced_expire": false, "sender": "a@b.example", "recipients": '
         b'[{"address": "u@x.example", "delay_reason": "connect to x[192.0.2.1]:25: refused"}]}\n')


def _edit(old: bytes, new: bytes, line: bytes = _BASE) -> bytes:
    assert old in line
    return line.replace(old, new, 1)


def _rcpts(*rcpts: bytes, queue_name: bytes = b"deferred") -> bytes:
    line = _edit(b'"deferred"', b'"' + queue_name + b'"')
    return line[:line.index(b'"recipients": [') + 15] + b", ".join(rcpts) + b"]}\n"


_ARRIVAL = b'"arrival_time": 1795960000'
EDGE_CASES = {
    "several @": [_rcpts(b'{"address": "a@b@c.example", "delay_reason": "r"}',
                         b'{"address": "@@x.example"}')],
    "quoted local part": [_rcpts(b'{"address": "\\"a@b\\"@c.example", "delay_reason": "r"}')],
    "empty address, @ alone, @ at the end": [
        _rcpts(b'{"address": "", "delay_reason": "r"}', b'{"address": "@"}',
               b'{"address": "a@", "delay_reason": ""}', b'{"address": "postmaster"}')],
    "domains in upper case": [_rcpts(b'{"address": "u@Example.COM.", "delay_reason": "r"}'),
                              _rcpts(b'{"address": "u@example.com", "delay_reason": "r"}')],
    "18 and 19 digits": [_edit(_ARRIVAL, b'"arrival_time": 999999999999999999'),
                         _edit(_ARRIVAL, b'"arrival_time": 9999999999999999999'),
                         _edit(b'"message_size": 1234', b'"message_size": ' + b"9" * 5000)],
    "leading zeros": [_edit(_ARRIVAL, b'"arrival_time": 01795960000'),
                      _edit(b'"message_size": 1234', b'"message_size": 00'), _BASE],
    "negative, float, exponent arrival": [
        _edit(_ARRIVAL, b'"arrival_time": -5'), _edit(_ARRIVAL, b'"arrival_time": -0'),
        _edit(_ARRIVAL, b'"arrival_time": 1795960000.5'), _edit(_ARRIVAL, b'"arrival_time": 1e9')],
    # the oldest arrival is the first one met: an int from the pattern, then an equal float
    "equal arrivals, int then float": [_BASE, _edit(_ARRIVAL, _ARRIVAL + b".0"), _BASE],
    "equal arrivals, float then int": [_edit(_ARRIVAL, _ARRIVAL + b".0"), _BASE],
    "duplicate keys": [_edit(b'"sender"', b'"arrival_time": 5, "sender"'),
                       _edit(b'"delay_reason"', b'"address": "z@y.example", "delay_reason"')],
    "no recipients": [_rcpts(), _rcpts(queue_name=b"active"),
                      _edit(b'"recipients": [', b'"rcpts": [')],
    "trailing spaces, CR LF, two newlines": [_BASE[:-1] + b"   \n", _BASE[:-1] + b"\r\n",
                                             _BASE + b"\n", b"\n", b" " + _BASE],
    # in every kind of string the pattern reads: sender, first and later address and reason
    "non-ASCII and control bytes": [
        _edit(old, old[:-2] + bad + old[-2:], _rcpts(
            b'{"address": "u@x.example", "delay_reason": "r"}',
            b'{"address": "v@y.example", "delay_reason": "q"}'))
        for bad in (b"\xe9", "\u00e9".encode(), b"\x7f", b"\x00", b"\t", b"\x1f")
        for old in (b'"a@b.example"', b'"u@x.example"', b'"r"', b'"v@y.example"', b'"q"')],
    "other members": [_rcpts(b'{"address": "u@x.example"}',
                             b'{"address": "v@y.example", "orig_address": "w@z.example"}'),
                      _rcpts(b'{"address": "u@x.example", "delay_reason": "r", "dsn": "4.0.0"}'),
                      _edit(b'"sender": "a@b.example"', b'"sender": "a", "x": "@b.example"')],
    "escapes": [_edit(b"x.example", b"x\\/.example"), _edit(b"refused", b"refused\\u0041")],
    "a reason that quotes a recipient": [_rcpts(b'{"address": "a"}', b'{"address": "b", '
                                                b'"delay_reason": "x {\\"address\\": y"}',
                                                queue_name=b"hold")],
    "a recipient without address": [_rcpts(b'{"address": "a"}', b'{"delay_reason": "q"}')],
    # lines given as a list: one holds a newline and lacks the last, so that the block has as
    # many newlines as lines, yet one line is not one row
    "a newline inside a line": [_BASE + _BASE[:-1], _BASE, _BASE],
}


@pytest.mark.parametrize("name", EDGE_CASES)
@pytest.mark.parametrize("caps", [None, SMALL_CAPS], ids=["caps", "small-caps"])
def test_edge_cases_give_the_same_snapshot_on_both_paths(name, caps):
    assert_same(EDGE_CASES[name], caps)


@pytest.mark.parametrize("fast", [False, True])
def test_the_garbage_collector_is_on_again_after_a_parse_that_fails(fast):
    """parse_json_lines turns the cyclic collector off while it parses: a listing that breaks
    off with an error (the child's, a decode's) must not leave the check's process without it."""
    def lines():
        yield _BASE
        raise OSError("the pipe broke")
    assert gc.isenabled()
    queue.parse_json_lines([_BASE], NOW, fast=fast)
    assert gc.isenabled()
    with pytest.raises(OSError, match="pipe broke"):
        queue.parse_json_lines(lines(), NOW, fast=fast)
    assert gc.isenabled()


# -- (c) the benchmark's generated stream -----------------------------------------------------

def test_a_sample_of_the_generated_stream(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import gen_stream
    out = io.StringIO()
    gen_stream.generate(out, 3000, domains=400, now=NOW)
    lines = out.getvalue().encode().splitlines(keepends=True)
    assert assert_same(lines) == 0, "every generated line must take the fast path"
    assert_same(lines, SMALL_CAPS)
    assert_same(lines, {"MAX_REASON_TEXTS": 50, "MAX_DOMAINS": 60, "MAX_CLASS_MEMO": 80})


# -- the line bound, and the whole way through a real child -----------------------------------

def test_line_bound_and_a_real_child_give_the_same_check(tmp_path, fixtures, monkeypatch):
    """A listing with a line over the bound (skipped by the reader), a valid one just under it
    (a message with 1,100 recipients), a junk line and no newline at the end, read through a
    real child: both paths give the same snapshot, and the same via read_queue."""
    good = fixture_lines(fixtures / "deferred-50-four-reasons.jsonl")
    obj = json.loads(good[0])
    obj["recipients"] = [{"address": f"u{i}@d{i % 7}.example", "delay_reason": f"r {i % 3}"}
                         for i in range(1100)]
    under = json.dumps(obj).encode() + b"\n"
    assert MAX_LINE / 2 < len(under) < MAX_LINE
    over = good[1].replace(b'"sender": "', b'"sender": "' + b"x" * MAX_LINE)
    listing = tmp_path / "listing.jsonl"
    listing.write_bytes(b"".join([*good[:5], over, under, b"junk\n", *good[5:9],
                                  good[9].rstrip(b"\n")]))
    pq = fake_postqueue(tmp_path, j=listing)
    with Child([pq, "-j"], 10) as child:
        lines = list(child.lines())
        child.finish()
    assert child.long_lines == 1 and len(lines) == 12
    assert assert_same(lines) == 1          # the junk line
    monkeypatch.setattr(queue, "_loads", json.loads)             # the fast path's default
    fast = queue.read_queue(pq, None, 10, NOW)
    monkeypatch.setattr(queue, "parse_json_lines", partial(queue.parse_json_lines, fast=False))
    slow = queue.read_queue(pq, None, 10, NOW)
    assert seen(fast) == seen(slow)
    assert fast.long_lines == slow.long_lines == 1
    assert fast.stats("total").recipients == 10 + 1100 and fast.malformed == 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))


def test_texts_that_quote_an_address_are_not_remembered_by_their_bytes():
    """The fast path's memo of tokens by reason bytes leaves out texts that quote an address
    (seldom met twice, they filled it); met again and again, one still counts as it should."""
    text = ("host mx.d.example[192.0.2.1] said: 450 4.2.0 <u@d.example>: Recipient address "
            "rejected: Greylisted (in reply to RCPT TO command)")
    plain = "connect to mx.d.example[192.0.2.1]:25: Connection refused"
    lines = [json.dumps({
        "queue_name": "deferred", "queue_id": f"Q{i}", "arrival_time": int(NOW) - 60 * i,
        "message_size": 100, "forced_expire": False, "sender": "",
        "recipients": [{"address": "u@d.example", "delay_reason": text if i % 2 else plain}],
    }).encode() + b"\n" for i in range(40)]
    fast, slow, decoded = both(lines)
    assert fast == slow and decoded == 0
    for caps in (SMALL_CAPS, {"MAX_REASON_TEXTS": 1}):
        assert_same(lines, caps)
    tok_of: dict = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(queue, "MAX_REASON_TEXTS", 1)
        snap = queue.QueueSnapshot(NOW)
        snap.tokenized = True
        toks = [queue._new_tok(snap, tok_of, t.encode()) for t in (plain, text, text)]
    assert toks == [plain, (reasons.classify(text),), (reasons.classify(text),)]
    assert plain.encode() in tok_of and text.encode() not in tok_of
    assert dict(snap.class_of_key) == {"host mx.d.example[192.0.2.1] said: 450 4.2.0 <ADDR>: "
                                       "Recipient address rejected: Greylisted (in reply to "
                                       "RCPT TO command)": toks[1][0]}


def test_a_text_that_quotes_an_address_met_again_is_keyed_once(monkeypatch):
    """Texts that quote an address have a bytes memo of their own (up to MAX_KEY_MEMO texts):
    one that recurs, as a reply quoting the sender does for every recipient, is decoded and
    keyed once, not once per recipient; without the memo, the same snapshot."""
    text = ("host mx.d.example[192.0.2.1] said: 450 4.1.8 <bounce@src.example>: Sender address "
            "rejected: Domain not found (in reply to RCPT TO command)")
    lines = [json.dumps({
        "queue_name": "deferred", "queue_id": f"Q{i}", "arrival_time": int(NOW) - 60 * i,
        "message_size": 100, "forced_expire": False, "sender": "bounce@src.example",
        "recipients": [{"address": f"u{i}@d.example", "delay_reason": text}],
    }).encode() + b"\n" for i in range(40)]
    met: list[str] = []
    new_token = queue.QueueSnapshot.new_token
    monkeypatch.setattr(queue.QueueSnapshot, "new_token",
                        lambda self, reason: met.append(reason) or new_token(self, reason))
    snap = queue.parse_json_lines(lines, NOW, fast=True)
    assert met.count(text) == 1 and snap.address_tokens == {text.encode(): text}
    assert snap.deferred_classes == {reasons.classify(text): 40}
    met.clear()
    monkeypatch.setattr(queue, "MAX_KEY_MEMO", 0)
    alone = queue.parse_json_lines(lines, NOW, fast=True)
    assert met.count(text) == 40 and not alone.address_tokens
    assert alone == snap
