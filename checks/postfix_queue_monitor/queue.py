"""Measure the queue: ``postqueue -j`` (or ``-p`` before Postfix 3.1) → :class:`QueueSnapshot`.

The parsers are pure (lines and ``now`` in, a plain object out) and stream: memory depends on the
number of distinct destination domains and reason texts (both capped, texts also in length),
never on the queue size.
Counting follows docs/reference.md: the listing is not a snapshot, so a message listed twice counts
twice; a malformed line is skipped, counted and kept as a sample for ``-v``.
"""

from __future__ import annotations

import gc
import json
import os
import re
import signal
import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable
from itertools import chain, compress, islice, repeat
from operator import itemgetter, not_

from . import reasons
from .deadline import Deadline
from .errors import MonitorError
from .proc import MAX_LINE, Child

# typing is imported for type checkers only: at run time it cost ~3 ms of every check's start-up
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Optional, Union

    #: (age bounds in seconds, size bounds in bytes) for HistogramStats; None: QueueStats.
    Histograms = Optional[tuple[tuple[float, ...], tuple[float, ...]]]
    #: a reason text kept as an example, or the class of one that is not: (class,)
    Token = Union[str, tuple[str]]

#: orjson's loads (it parses postqueue's lines ~3x faster), else the stdlib's: chosen on the
#: first non-empty line, so an empty queue does not pay orjson's ~5 ms import.
_loads: Callable[[bytes | str], Any] | None = None


def _decoder() -> Callable[[bytes | str], Any]:
    global _loads
    if _loads is None:
        try:
            from orjson import loads
        except ImportError:  # pragma: no cover - orjson is a dependency, but not a hard one
            loads = json.loads
        _loads = loads
    return _loads


def _strict_loads(raw: bytes | str) -> Any:
    """What orjson refuses but the stdlib reads: a lone surrogate escape such as "\\udcff"
    (orjson dropped the whole line). The surrogates become U+FFFD, so the text can be printed."""
    obj = json.loads(raw)
    for r in obj.get("recipients") or () if isinstance(obj, dict) else ():
        if isinstance(r, dict):
            for k in ("address", "delay_reason"):
                if isinstance(r.get(k), str):
                    r[k] = r[k].encode("utf-8", "replace").decode("utf-8")
    return obj


QUEUES: tuple[str, ...] = ("maildrop", "incoming", "active", "deferred", "hold")
ALL_QUEUES: tuple[str, ...] = (*QUEUES, "total")
#: qshape's age buckets, upper bounds in minutes; a last, open bucket follows.
AGE_BUCKETS_MIN: tuple[int, ...] = (5, 10, 20, 40, 80, 160, 320, 640, 1280)
MAX_DOMAINS = 20000        # distinct deferred destination domains kept; the rest go to "(other)"
MAX_REASON_TEXTS = 2000    # distinct reason texts kept as examples; classes are always counted
MAX_SAMPLES = 5            # malformed lines kept for -v
#: distinct (domain, age bucket, reason) keys before they are folded; 40,000 (20,000 before
#: December 2026) cost no memory once texts that quote an address were no longer remembered
#: whole (see _new_tok): peak RSS 44 MB on the 1M-line benchmark stream either way
MAX_PENDING = 40_000
#: the same for a ``tokenized`` snapshot (the fast path's), whose keys are smaller (a reason
#: text beyond the examples is its shared class token)
MAX_PENDING_TOKENS = 50_000
#: reason texts whose class one snapshot remembers (a text that quotes an address is
#: remembered by its key, MAX_KEY_MEMO). 20,000 (50,000 before MAX_PENDING doubled): the texts
#: held at once, this memo's, the key memo's and the pending keys', stay at most 70,000, as
#: before; 150,000 distinct 4 KB texts (benchmarks/gen_long_reasons.py --lines 150000) took
#: 97 MB peak RSS with 50,000 and MAX_PENDING 40,000, 73 MB with 20,000 (79 MB before either
#: change). The 1M-line benchmark stream has ~18,400 distinct texts without an address.
MAX_CLASS_MEMO = 20_000
MAX_KEY_MEMO = 10_000      # classes remembered by reasons.class_key (a text less its addresses)
# A reason text is kept (memo keys, examples, pending keys) by its reasons.cut: at most
# reasons.CUT_AT characters, so the caps above bound bytes too, whatever the texts' length: the
# memo holds at most ~15 MB (20,000 texts at the bound; ~36 MB for 50,000 by tracemalloc,
# December 2026), the key memo at most half of that.
_LIMITS_S: tuple[int, ...] = tuple(m * 60 for m in AGE_BUCKETS_MIN)
#: the token (see QueueSnapshot.token) of a reason text not kept as an example: its class
_CLASS_TOKENS: dict[str, tuple[str]] = {c: (c,) for c in reasons.CLASSES}


# Plain classes, not dataclasses: importing dataclasses (and inspect, which it pulls in) cost
# ~8 ms of every check's start-up, as much as the whole run on an empty queue.

class QueueStats:
    """One queue's totals."""

    __slots__ = ("messages", "recipients", "bytes", "oldest_arrival", "forced_expire")

    def __init__(self) -> None:
        self.messages = 0
        self.recipients = 0
        self.bytes = 0
        self.oldest_arrival: float | None = None
        self.forced_expire = 0

    def _key(self) -> tuple:
        return (self.messages, self.recipients, self.bytes, self.oldest_arrival,
                self.forced_expire)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, QueueStats) and self._key() == other._key()

    def __repr__(self) -> str:
        return f"QueueStats{self._key()}"

    def add(self, size: int, arrival: float, recipients: int, forced: bool) -> None:
        self.messages += 1
        self.recipients += recipients
        self.bytes += size
        if self.oldest_arrival is None or arrival < self.oldest_arrival:
            self.oldest_arrival = arrival
        if forced:
            self.forced_expire += 1

    def merge(self, other: QueueStats) -> None:
        self.messages += other.messages
        self.recipients += other.recipients
        self.bytes += other.bytes
        self.forced_expire += other.forced_expire
        if other.oldest_arrival is not None and (
            self.oldest_arrival is None or other.oldest_arrival < self.oldest_arrival
        ):
            self.oldest_arrival = other.oldest_arrival

    def oldest_age(self, now: float) -> float:
        """Seconds since the oldest arrival; 0 for an empty queue (never negative)."""
        if self.oldest_arrival is None:
            return 0.0
        return max(0.0, now - self.oldest_arrival)


class HistogramStats(QueueStats):
    """QueueStats that also count each message into age and size buckets (upper bounds,
    inclusive, as Prometheus' ``le``). A subclass, so the checks' listings pay nothing for it."""

    __slots__ = ("now", "age_bounds", "size_bounds", "ages", "sizes", "age_sum")

    def __init__(self, now: float, age_bounds: tuple[float, ...],
                 size_bounds: tuple[float, ...]) -> None:
        super().__init__()
        self.now = now
        self.age_bounds, self.size_bounds = age_bounds, size_bounds
        self.ages = [0] * (len(age_bounds) + 1)        # the last: above every bound (+Inf)
        self.sizes = [0] * (len(size_bounds) + 1)
        self.age_sum = 0.0

    def add(self, size: int, arrival: float, recipients: int, forced: bool) -> None:
        super().add(size, arrival, recipients, forced)
        age = self.now - arrival
        self.ages[bisect_left(self.age_bounds, age)] += 1
        self.sizes[bisect_left(self.size_bounds, size)] += 1
        self.age_sum += age


def age_bucket(age_s: float) -> int:
    """Index into AGE_BUCKETS_MIN (len(AGE_BUCKETS_MIN) for the open last bucket)."""
    return bisect_left(_LIMITS_S, age_s)


def _domain(raw: str) -> str:
    domain = raw.strip().rstrip(".").lower()
    return domain or "(local)"


class QueueSnapshot:
    """What one listing of the queue said, aggregated."""

    #: the fields that make two snapshots equal (what the listing said, not caches)
    COMPARED = ("now", "source", "queues", "lines", "malformed", "malformed_samples",
                "deferred_domains", "deferred_domain_ages", "deferred_classes",
                "deferred_class_domains", "deferred_reason_texts", "warnings",
                "expected_messages", "pending")

    def __init__(self, now: float, source: str = "json", histograms: Histograms = None):
        self.now = now
        self.source = source                  # "json" (postqueue -j) or "text" (postqueue -p)
        self.queues: dict[str, QueueStats] = {
            q: HistogramStats(now, *histograms) if histograms else QueueStats() for q in QUEUES}
        self.lines = 0
        self.malformed = 0
        self.malformed_samples: list[str] = []
        # deferred queue, counted per recipient
        self.deferred_domains: Counter[str] = Counter()
        self.deferred_domain_ages: dict[str, list[int]] = {}
        self.deferred_classes: Counter[str] = Counter()
        self.deferred_class_domains: dict[str, Counter[str]] = {}
        self.deferred_reason_texts: Counter[str] = Counter()
        self.warnings: list[str] = []
        self.expected_messages: int | None = None    # from postqueue -p's summary line
        # deferred recipients not yet folded into the counters above, by (raw domain, age
        # bucket, reason text, or with ``tokenized`` its token, see token()): one dict update
        # per recipient while parsing, the rest once per distinct key
        # (a Counter for update(): collections' C counting loop, used by _rows)
        self.pending: Counter[tuple[str | bytes, int, Any]] = Counter()   # Any: str or Token
        self.tokenized = False
        # class of each reason text met so far (up to MAX_CLASS_MEMO): every distinct text is
        # classified once per listing (reasons.classify's LRU of 4096 thrashes on queues with
        # tens of thousands); with ``tokenized``, only the texts kept as examples
        self.class_of: dict[str, str] = {}
        # class of each reasons.class_key that differs from its text (up to MAX_KEY_MEMO):
        # texts that differ only by the recipient's address they quote are classified once
        # (classify()'s cost is mostly reasons.normalize, ~5 us a text; on the 1M-line
        # benchmark stream 82,000 of the 100,700 distinct texts have 1,580 keys)
        self.class_of_key: dict[str, str] = {}
        # with ``tokenized``: the token of each reason text met so far (up to MAX_CLASS_MEMO)
        self.tokens: dict[str, Token] = {}
        # the fast path's tokens of texts that quote an address, by their bytes (up to
        # MAX_KEY_MEMO; see _new_tok)
        self.address_tokens: dict[bytes, Token] = {}
        # how the listing went: cut by the deadline (every figure is then a lower bound of the
        # true one), its duration, lines over proc.MAX_LINE skipped, and the age of a listing
        # reused from another run (None: listed by this run)
        self.cut = False
        self.elapsed: float | None = None
        self.long_lines = 0
        self.reused_age: float | None = None
        # set while a listing runs: true once the time to classify its texts is up (_run);
        # fold() then stops classifying and the snapshot is cut
        self.stop: Callable[[], bool] | None = None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, QueueSnapshot) and all(
            getattr(self, f) == getattr(other, f) for f in self.COMPARED)

    def __repr__(self) -> str:
        return (f"QueueSnapshot(now={self.now}, source={self.source!r}, "
                f"total={self.stats('total')!r}, malformed={self.malformed})")

    # -- aggregates -------------------------------------------------------------------------
    def stats(self, queue: str) -> QueueStats:
        if queue != "total":
            return self.queues[queue]
        total = QueueStats()
        for q in QUEUES:
            total.merge(self.queues[q])
        return total

    def oldest_age(self, queues: Iterable[str]) -> float:
        return max((self.stats(q).oldest_age(self.now) for q in queues), default=0.0)

    # -- building ---------------------------------------------------------------------------
    def bad_line(self, line: str) -> None:
        self.malformed += 1
        if len(self.malformed_samples) < MAX_SAMPLES:
            self.malformed_samples.append(line[:200])

    def add_message(self, queue: str, size: int, arrival: float, forced: bool,
                    recipients: list[tuple[str, str]]) -> None:
        """Count one listed message; ``recipients`` are (address, delay reason or '')."""
        self.queues[queue].add(size, arrival, len(recipients), forced)
        if queue != "deferred":
            return
        bucket = age_bucket(self.now - arrival)
        pending, cut_at = self.pending, reasons.CUT_AT
        for address, reason in recipients:
            if len(reason) > cut_at:
                reason = reasons.cut(reason)
            key = (address.rpartition("@")[2] if "@" in address else "", bucket, reason)
            pending[key] = pending.get(key, 0) + 1
        if len(pending) > MAX_PENDING:
            self.fold()

    def token(self, reason: str) -> Token:
        """What the pending counters keep of one deferred recipient's reason text: the text
        itself while it is one of the first MAX_REASON_TEXTS distinct texts of the listing (kept
        as examples, counted per text), else only its class, as ``(class,)``. Collapsing the
        other texts to their class at once keeps the pending keys few when texts carry addresses
        or message ids (tens of thousands of distinct texts). For a ``tokenized`` snapshot
        (the fast path's); call it in listing order, and only for recipients of lines that are
        counted: the first texts met are the ones kept. Pass a text already cut
        (reasons.cut, as the parse loop cuts every delay_reason), so the memo's keys stay
        short."""
        tok = self.tokens.get(reason)
        if tok is None:
            tok = self.new_token(reason)
            if len(self.tokens) < MAX_CLASS_MEMO:
                self.tokens[reason] = tok
        return tok

    def new_token(self, reason: str) -> Token:
        """token() without its cache (for callers that cache tokens themselves; they must not
        keep a text longer than reasons.CUT_AT as a key: the token holds its cut)."""
        if not reason:
            return _CLASS_TOKENS["other"]
        if len(reason) > reasons.CUT_AT:
            reason = reasons.cut(reason)
        if reason in self.class_of:
            return reason
        cls = self.classify(reason)
        if len(self.class_of) < MAX_REASON_TEXTS:
            self.class_of[reason] = cls
            return reason
        tok = _CLASS_TOKENS.get(cls)
        if tok is None:
            tok = _CLASS_TOKENS[cls] = (cls,)
        return tok

    def classify(self, reason: str) -> str:
        """reasons.classify of one text, remembered by its reasons.class_key."""
        key, memo = reasons.class_key(reason), self.class_of_key
        if key == reason:       # nothing to share: classify()'s own cache, and the callers'
            return reasons.classify(reason)
        if (cls := memo.get(key)) is None:
            cls = reasons.classify(reason)
            if len(memo) < MAX_KEY_MEMO:
                memo[key] = cls
        return cls

    def fold(self) -> QueueSnapshot:
        """Fold the pending deferred recipients into the per-domain, per-class counters
        (domains and example texts capped, so memory stays flat as the queue grows).

        Two steps: reason texts become classes first (unless the fast path did it already,
        see token()), which collapses the keys from one per distinct text (tens of thousands
        when texts carry addresses) to one per (domain, age bucket, class); the per-domain
        counters are then updated once per collapsed key.

        Classifying is the one step whose cost is not bounded by the listing's length alone
        (60,000 distinct long texts: ~10 s): when ``stop`` says its time is up (_run), the
        texts not yet classified are dropped with their recipients and the snapshot is cut
        (every figure a lower bound), so the check still answers within -t."""
        classify, class_of, stop = self.classify, self.class_of, self.stop
        texts = self.deferred_reason_texts
        by_class: dict[tuple[str | bytes, int, str], int] = {}
        get = by_class.get
        if self.tokenized:
            for (raw, bucket, tok), n in self.pending.items():
                if isinstance(tok, tuple):
                    cls = tok[0]
                else:           # a text kept as an example
                    cls = class_of[tok]
                    texts[tok] += n
                key = (raw, bucket, cls)
                by_class[key] = get(key, 0) + n
        # (texts are cut, reasons.cut, before they become pending keys)
        for (raw, bucket, reason), n in () if self.tokenized else self.pending.items():
            if reason:
                cls = class_of.get(reason)
                if cls is None:
                    if stop is not None and stop():
                        self.cut = True
                        break
                    cls = classify(reason)
                    # (a text that quotes an address: by its key, see _new_tok)
                    if len(class_of) < MAX_CLASS_MEMO and not ("@" in reason and "<" in reason):
                        class_of[reason] = cls
                if reason in texts or len(texts) < MAX_REASON_TEXTS:
                    texts[reason] += n
            else:
                cls = "other"
            key = (raw, bucket, cls)
            by_class[key] = get(key, 0) + n
        self.pending.clear()
        domains, ages_by_domain = self.deferred_domains, self.deferred_domain_ages
        classes, class_domains = self.deferred_classes, self.deferred_class_domains
        domain_of: dict[str | bytes, str] = {}
        for (raw, bucket, cls), n in by_class.items():
            domain = domain_of.get(raw)
            if domain is None:      # raw: str, or ASCII bytes from the fast path's blocks
                domain = domain_of[raw] = _domain(raw if isinstance(raw, str)
                                                  else raw.decode("ascii"))
            if domain not in domains and len(domains) >= MAX_DOMAINS:
                domain = "(other)"
            domains[domain] += n
            ages = ages_by_domain.get(domain)
            if ages is None:
                ages = ages_by_domain[domain] = [0] * (len(AGE_BUCKETS_MIN) + 1)
            ages[bucket] += n
            classes[cls] += n
            per_class = class_domains.get(cls)
            if per_class is None:
                per_class = class_domains[cls] = Counter()
            per_class[domain] += n
        return self


# -- postqueue -j ---------------------------------------------------------------------------

#: The fast path's patterns (compiled on the first line of a listing, see _fast_patterns):
#: showq's lines as Postfix prints them (3.7's captures in tests/fixtures), member for member,
#: strings of printable ASCII without escapes. A line they match in full decodes to exactly
#: what these groups say; every other line (escapes, other characters, other members or order,
#: floats, ...) goes to the JSON decoder, so both paths give the same snapshot
#: (tests/unit/test_queue_fastpath.py).
_STR = rb'[ !#-\[\]-\x7f]*+'              # a JSON string's body: no '"', no '\', no control
_NOAT = rb'[ !#-?A-\[\]-\x7f]*+'          # ... and no '@'
#: a recipient up to its closing brace: (domain, reason) (b"" where absent, read as "")
_RCPT_OPEN = (rb'\{"address": "(?:(?:' + _NOAT + rb'@)++(' + _NOAT + rb')|' + _NOAT + rb')"'
              rb'(?:, "delay_reason": "(' + _STR + rb')")?')
_RCPT = _RCPT_OPEN + rb'\}'
_OTHERS = rb'(?:, \{"address": "' + _STR + rb'"(?:, "delay_reason": "' + _STR + rb'")?\})*+'
_HEAD = (rb'\{"queue_name": "(maildrop|incoming|active|deferred|hold)", '
         rb'"queue_id": "[0-9A-Za-z]*+", "arrival_time": (0|[1-9][0-9]{0,17}), '
         rb'"message_size": (0|[1-9][0-9]{0,17}), "forced_expire": (true|false), '
         rb'"sender": "' + _STR + rb'", "recipients": \[')
#: one line: (queue, arrival, size, forced, first domain, first reason, the other recipients)
_LINE = _HEAD + rb'(?:' + _RCPT + rb'(' + _OTHERS + rb'))?\]\}\n?'
#: every line of a block of lines, one row each: a line in showq's shape gives the groups of
#: _LINE (the others start at the first recipient's closing brace, so that they are b"" only
#: for a line without recipients); any other line gives only its last group, the whole line
_ROW = (_HEAD + rb'(?:' + _RCPT_OPEN + rb'(\}' + _OTHERS + rb'))?\]\}\n|([^\n]*+\n)')
_fast: tuple[Callable[[bytes], Any], Callable[[bytes], list]] | None = None
_block: Callable[[bytes], list] | None = None
#: lines per block, at most (~800 KB of showq's lines), and bytes per block, about: big enough
#: that the per-block work is lost in the per-line work, small enough to stay out of the peak
#: memory (a block of long lines has fewer lines)
BLOCK_LINES = 2048
BLOCK_BYTES = 1 << 20


def _fast_patterns() -> tuple[Callable[[bytes], Any], Callable[[bytes], list]]:
    """(fullmatch of a whole line, findall of (domain, reason) in the recipients after the
    first). Compiled on first use: a check on an empty queue does not pay for it."""
    global _fast
    if _fast is None:
        _fast = re.compile(_LINE).fullmatch, re.compile(_RCPT).findall
    return _fast


def _block_pattern() -> Callable[[bytes], list]:
    """findall of _ROW (compiled on first use)."""
    global _block
    if _block is None:
        _block = re.compile(_ROW).findall
    return _block


def parse_json_lines(lines: Iterable[bytes | str], now: float,
                     histograms: Histograms = None, fast: bool | None = None,
                     stop: Callable[[], bool] | None = None) -> QueueSnapshot:
    """Parse ``postqueue -j`` output (JSON Lines); unknown members are ignored.

    The hot loop of every check. With ``fast`` (the default where orjson is missing, as in the
    Debian package), lines (bytes) in showq's own shape take the fast path: no JSON decode, no
    dict per line, reason texts looked up by their bytes; a block of lines is matched by one
    call (re.findall: the rows come as tuples, made in C), and the block's figures are summed
    column by column (see _rows). Any other line is decoded as JSON, with the same result.
    Where orjson is there, decoding with it is as fast as the pattern (benchmarks/RESULTS.md),
    so by default every line is decoded. ``stop``: see QueueSnapshot.fold.
    """
    snap = QueueSnapshot(now=now, source="json", histograms=histograms)
    snap.stop = stop
    # the fast path's tokens by reason bytes (None: no delay_reason), so that a text met again
    # is neither decoded nor classified
    tok_of: dict[bytes | None, Token] = {None: snap.token("")}
    if fast is None:        # decided on the first line: an empty queue skips the import
        it = iter(lines)
        for first in it:
            fast = (_loads or _decoder()) is json.loads
            lines = chain((first,), it)
            break
    snap.tokenized = bool(fast)
    # no cyclic garbage collection meanwhile: the parse makes no cycles, but a block's rows
    # (thousands of tuples) outlive a few young collections, so that the collector kept
    # walking every pending key and cached token (~0.7 s of 5 on a 1M-line listing)
    collecting = gc.isenabled()
    gc.disable()
    try:
        if fast and histograms is None:     # (histograms: add() per message, exact sums)
            snap.lines = _parse_blocks(snap, lines, tok_of)
        else:
            snap.lines = _parse_lines(snap, lines, bool(fast), tok_of)
        return snap.fold()
    finally:
        if collecting:
            gc.enable()


def _new_tok(snap: QueueSnapshot, tok_of: dict[bytes | None, Token], reason: bytes) -> Token:
    """The token of a reason text the fast path meets for the first time (or again, once
    tok_of is full)."""
    if b"@" in reason and b"<" in reason:
        # a text that quotes an address: not in tok_of, which such texts filled to no use when
        # each names its recipient (greylisting; 10 MB of 45 on the 1M-line benchmark stream),
        # but in a memo of its own, capped as the key memo is: a text that quotes the sender
        # recurs once per recipient ("<bounce@ours>: Sender address rejected"), and keying it
        # each time cost +30% CPU on such a queue (200k lines: 0.62 s -> 0.82 s, 0.69 s with it)
        by_bytes = snap.address_tokens
        tok = by_bytes.get(reason)
        if tok is None:
            tok = snap.new_token(reason.decode("ascii"))
            if len(by_bytes) < MAX_KEY_MEMO and len(reason) <= reasons.CUT_AT:
                by_bytes[reason] = tok
        return tok
    tok = snap.new_token(reason.decode("ascii"))
    if len(tok_of) < MAX_CLASS_MEMO and len(reason) <= reasons.CUT_AT:     # short keys only
        tok_of[reason] = tok
    return tok


def _parse_blocks(snap: QueueSnapshot, lines: Iterable[bytes | str],
                  tok_of: dict[bytes | None, Token]) -> int:
    """The fast path by blocks of BLOCK_LINES lines: one findall per block; the rows of lines
    in showq's shape are counted by _rows, any other line by _parse_lines, in listing order.
    A block whose lines are not each one line of bytes ending in its only newline (text, the
    last line without one, a list of lines with newlines inside) goes to _parse_lines whole."""
    findall = _block_pattern()
    rest_of = (_fast or _fast_patterns())[1]
    stats_of = {q.encode(): s for q, s in snap.queues.items()}
    it = iter(lines)
    n_lines = 0
    size = min(64, BLOCK_LINES)         # lines in the first block, then ~BLOCK_BYTES a block
    while True:
        batch: list[Any] = list(islice(it, size))
        if not batch:
            return n_lines
        whole = set(map(type, batch)) == {bytes}        # not a text line, nor a bytearray
        if whole:
            block = b"".join(batch)
            size = min(BLOCK_LINES, max(16, BLOCK_BYTES * len(batch) // (len(block) or 1)))
            # each row of _ROW ends at the first newline after the previous one, so there are
            # as many rows as newlines: as many as lines, each ending in one, means one row per
            # line, and no newline inside a line
            rows = findall(block)
            del block
            whole = len(rows) == len(batch) and all(map(bytes.endswith, batch, repeat(b"\n")))
        if not whole:
            n_lines += _parse_lines(snap, batch, True, tok_of)
            continue
        others = list(map(itemgetter(7), rows))
        if others.count(b"") == len(rows):
            n_lines += _rows(snap, rows, tok_of, stats_of, rest_of)
            continue
        # lines the pattern leaves to the decoder: the rows between them by _rows
        start = 0
        for i in compress(range(len(rows)), others):
            if i > start:
                n_lines += _rows(snap, rows[start:i], tok_of, stats_of, rest_of)
            n_lines += _parse_lines(snap, (batch[i],), True, tok_of)
            start = i + 1
        if start < len(rows):
            n_lines += _rows(snap, rows[start:], tok_of, stats_of, rest_of)


def _rows(snap: QueueSnapshot, rows: list[tuple[bytes, ...]], tok_of: dict[bytes | None, Token],
          stats_of: dict[bytes, QueueStats], rest_of: Callable[[bytes], list]) -> int:
    """Count rows of _ROW (lines in showq's shape, in listing order) column by column: the
    deferred queue's sums, count and minimum by map/compress/sum (C loops, no Python code per
    line; the other queues' lines, one in seven, by QueueStats.add), the deferred recipients'
    (domain, age bucket, token) keys into ``pending`` by Counter.update (a C loop), in listing
    order (first met first, as line by line: the same snapshot)."""
    columns: Any = zip(*rows)
    queues, arrivals, sizes, forced, doms, texts, rcpts, _ = columns
    n = queues.count(b"deferred")
    if n < len(queues):
        mask = list(map(b"deferred".__eq__, queues))
        for q, a, size, f, r in compress(zip(queues, arrivals, sizes, forced, rcpts),
                                         map(not_, mask)):
            stats_of[q].add(int(size), int(a), (1 + r.count(b'{"address"')) if r else 0,
                            f == b"true")
        if not n:
            return len(rows)
        arrivals, sizes, forced, doms, texts, rcpts = (
            list(compress(c, mask)) for c in (arrivals, sizes, forced, doms, texts, rcpts))
    ints = list(map(int, arrivals))
    stats = stats_of[b"deferred"]
    stats.messages += n
    stats.bytes += sum(map(int, sizes))
    stats.forced_expire += forced.count(b"true")
    # a line's recipients are b"" (none) or "}" and the others: 1 + the others' count
    stats.recipients += (n - rcpts.count(b"")
                         + sum(map(bytes.count, rcpts, repeat(b'{"address"'))))
    oldest = min(ints)
    if stats.oldest_arrival is None or oldest < stats.oldest_arrival:
        stats.oldest_arrival = oldest
    # the recipients in listing order, as three columns: raw domain, age bucket, text
    dom_col: list[bytes] = []
    bucket_col: list[int] = []
    text_col: list[bytes] = []
    add_dom, add_bucket, add_text = dom_col.append, bucket_col.append, text_col.append
    buckets = map(bisect_left, repeat(_LIMITS_S), map(snap.now.__sub__, ints))   # age_bucket
    for bucket, dom, text, rest in zip(buckets, doms, texts, rcpts):
        if rest:
            add_dom(dom)
            add_bucket(bucket)
            add_text(text)
            if len(rest) > 1:       # "}" and the others: one message in eight
                for dom, text in rest_of(rest):
                    add_dom(dom)
                    add_bucket(bucket)
                    add_text(text)
    toks = list(map(tok_of.get, text_col))
    if None in toks:                # texts not met before: tokens in listing order
        i = toks.index(None)
        try:
            while True:
                text = text_col[i]
                toks[i] = tok_of.get(text) or _new_tok(snap, tok_of, text)
                i = toks.index(None, i + 1)
        except ValueError:
            pass
    snap.pending.update(zip(dom_col, bucket_col, toks))
    if len(snap.pending) > MAX_PENDING_TOKENS:
        snap.fold()
    return len(rows)


def _parse_lines(snap: QueueSnapshot, lines: Iterable[bytes | str], fast: bool,
                 tok_of: dict[bytes | None, Token]) -> int:
    """Parse lines one at a time (the JSON path; with ``fast``, lines in showq's shape by one
    match each): what a block's lines need when they are not all one line of bytes, and the
    lines the block pattern leaves to the decoder. Returns the lines counted."""
    queues, pending = snap.queues, snap.pending
    count = pending.get
    limits, now = _LIMITS_S, snap.now
    token = snap.token
    loads = None
    n_lines = 0
    brace = None
    match: Any = None                  # the fast path's patterns, once a line came
    rest_of: Any = None
    stats_of = {q.encode(): s for q, s in queues.items()}
    cut_at = reasons.CUT_AT
    cap = MAX_PENDING_TOKENS if fast else MAX_PENDING
    for raw in lines:
        if fast and raw.__class__ is bytes:
            if match is None:
                match, rest_of = _fast or _fast_patterns()
            m = match(raw)
            if m is not None:
                # a line in showq's own shape: it is good (the pattern checked every member)
                queue_b, arrival_b, size_b, forced, dom, reason, rest = m.groups()
                n_lines += 1
                arrival = int(arrival_b)
                n = 0 if rest is None else 1 + rest.count(b'{"address"')
                if n and queue_b == b"deferred":
                    bucket = bisect_left(limits, now - arrival)     # age_bucket, inlined
                    # the first recipient, then (one message in eight) the others; findall
                    # gives b"" for an absent domain or reason, read as None is: ""
                    for r_dom, r_reason in [(dom, reason), *rest_of(rest)] if rest else (
                            (dom, reason),):
                        key = (r_dom.decode("ascii") if r_dom else "", bucket,
                               tok_of.get(r_reason) or _new_tok(snap, tok_of, r_reason))
                        pending[key] = count(key, 0) + 1
                    if len(pending) > cap:
                        snap.fold()
                stats_of[queue_b].add(int(size_b), arrival, n, forced == b"true")
                continue
        # postqueue's lines start with "{": only others need the (copying) strip to be skipped
        # (the brace of the lines' own type: bytes == str would warn under python -b)
        if brace is None:
            brace = b"{" if isinstance(raw, bytes) else "{"
        if raw[:1] != brace and not raw.strip():
            continue
        n_lines += 1
        try:
            if loads is None:
                loads = _loads or _decoder()
            try:
                obj = loads(raw)
            except ValueError:
                if loads is json.loads:
                    raise
                obj = _strict_loads(raw)
            queue = obj["queue_name"]
            stats = queues[queue]
            arrival = obj["arrival_time"]
            size = obj["message_size"]
            if type(arrival) not in (int, float) or type(size) is not int or size < 0:
                raise ValueError("types")
            rcpts = obj.get("recipients") or ()
            if queue == "deferred":
                # validated and keyed in one pass; counted only once the whole line is good
                bucket = bisect_left(limits, now - arrival)     # age_bucket, inlined
                keys: list[tuple[str, int, Any]] = []
                for r in rcpts:
                    address = r.get("address") or ""
                    reason = r.get("delay_reason") or ""
                    if type(address) is not str or type(reason) is not str:
                        raise ValueError("recipient")
                    if len(reason) > cut_at:        # pending keys stay short
                        reason = reasons.cut(reason)
                    keys.append((address.rpartition("@")[2] if "@" in address else "",
                                 bucket, reason))
            elif not isinstance(rcpts, (list, tuple)) or any(
                    type(r) is not dict or type(r.get("address", "")) is not str for r in rcpts):
                raise ValueError("recipients")
        except (ValueError, KeyError, TypeError, AttributeError):
            text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
            snap.bad_line(text.rstrip("\n"))
            continue
        stats.add(size, arrival, len(rcpts), obj.get("forced_expire") is True)
        if queue == "deferred":
            if fast:
                keys = [(d, b, token(r)) for d, b, r in keys]
            for key in keys:
                pending[key] = count(key, 0) + 1
            if len(pending) > cap:
                snap.fold()
    return n_lines


# -- postqueue -p (Postfix < 3.1) -----------------------------------------------------------

_ENTRY = re.compile(
    r"^(?P<id>[0-9A-Za-z]+)(?P<mark>[*!]?)(?P<forced>#?)\s+(?P<size>\d+)\s+"
    r"(?P<date>[A-Z][a-z]{2} [A-Z][a-z]{2} +\d{1,2} \d\d:\d\d:\d\d)\s+(?P<sender>.*?)\s*$"
)
_SUMMARY = re.compile(r"^-- \d+ Kbytes in (?P<n>\d+) Requests?\.\s*$")
#: a recipient as -p prints it: no blank outside a quoted local part ('"john doe"@example.com')
_RECIPIENT = re.compile(r'^(?:"(?:[^"\\]|\\.)*"|[^\s"])+$')
_MONTHS = {m: i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}
_WDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def infer_arrival(date: str, now: float) -> float:
    """Epoch of a year-less local ``Sun Nov 29 14:31:38``.

    The year is the latest one that puts the date no later than a day after ``now`` (clock skew
    between showq and us) and, where possible, matches the printed weekday.
    """
    wday, mon, day, hms = date.split()
    month, mday = _MONTHS[mon], int(day)
    hh, mm, ss = (int(x) for x in hms.split(":"))
    this_year = time.localtime(now).tm_year
    fallback = None
    for year in range(this_year + 1, this_year - 7, -1):
        try:
            t = time.mktime((year, month, mday, hh, mm, ss, 0, 0, -1))
        except (OverflowError, ValueError):
            continue
        if t > now + 86400 or time.localtime(t).tm_mday != mday:   # Feb 29 in a common year
            continue
        if fallback is None:
            fallback = t
        if _WDAYS[time.localtime(t).tm_wday] == wday:
            return t
    if fallback is None:
        raise ValueError(date)
    return fallback


def parse_text(lines: Iterable[bytes | str], now: float,
               histograms: Histograms = None,
               stop: Callable[[], bool] | None = None) -> QueueSnapshot:
    """Parse ``postqueue -p``: ``*`` active, ``!`` hold, unmarked counted as deferred
    (``stop``: see QueueSnapshot.fold)."""
    snap = QueueSnapshot(now=now, source="text", histograms=histograms)
    snap.stop = stop
    current: tuple[str, int, float, bool] | None = None
    recipients: list[tuple[str, str]] = []
    reason = ""

    def flush() -> None:
        nonlocal current, recipients, reason
        if current is not None:
            snap.add_message(current[0], current[1], current[2], current[3], recipients)
        current, recipients, reason = None, [], ""

    for raw in lines:
        line = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        line = line.rstrip("\r\n")
        if not line.strip():
            flush()
            continue
        m = _SUMMARY.match(line)
        if m:                       # normally after a blank line; tolerate its absence
            flush()
            snap.expected_messages = int(m["n"])
            continue
        if current is None:
            if line.startswith("-") and "Queue ID" in line:
                continue
            if line.strip() == "Mail queue is empty":
                snap.expected_messages = 0      # the summary of an empty queue
                continue
            m = _ENTRY.match(line)
            if not m:
                snap.lines += 1
                snap.bad_line(line)
                continue
            snap.lines += 1
            try:
                arrival = infer_arrival(m["date"], now)
            except (ValueError, KeyError):
                snap.bad_line(line)
                continue
            queue = {"*": "active", "!": "hold"}.get(m["mark"], "deferred")
            current = (queue, int(m["size"]), arrival, m["forced"] == "#")
            continue
        stripped = line.strip()
        if stripped.startswith("(") and stripped.endswith(")"):
            reason = stripped[1:-1]
        elif line[:1].isspace() and _RECIPIENT.match(stripped):
            recipients.append((stripped, reason))
        else:
            snap.bad_line(line)
    flush()
    return snap.fold()


# -- running postqueue ----------------------------------------------------------------------

def postqueue_argv(postqueue: str, config_dir: str | None, flag: str) -> list[str]:
    argv = [postqueue]
    if config_dir is not None:
        argv += ["-c", config_dir]       # verbatim: postqueue's own error explains a bad one
    return [*argv, flag]


def _explain(rc: int, err: str, argv: list[str]) -> str:
    """One line that says what to fix, from postqueue's exit code and stderr."""
    low = err.lower()
    last = next((ln.strip() for ln in reversed(err.splitlines()) if ln.strip()), "")
    user = _username()
    if "unauthorized configuration directory" in low:
        cdir = (argv[argv.index("-c") + 1] if "-c" in argv
                else os.environ.get("MAIL_CONFIG", "the config dir"))
        return (f'postqueue refuses config dir {cdir}: add "alternate_config_directories = {cdir}" '
                f"to the default main.cf (exact name, no trailing slash)")
    if "not allowed to view the mail queue" in low or rc == 77:
        return (f"user {user} may not list the queue: add it to authorized_mailq_users in "
                f"main.cf ({last})")
    if "mail system is down" in low or "connection refused" in low:
        return ("Postfix is not running (showq unreachable): start it (postfix start) and check "
                "the showq service in master.cf")
    if "permission denied" in low:
        return (f"postqueue cannot reach the showq socket as {user}: check the permissions of "
                f"public/showq in the queue directory ({last})")
    if "main.cf" in low and "no such file" in low:
        return f"no Postfix configuration there: check --config-dir ({last})"
    if rc < 0:        # a negative code: a signal ended the child
        try:
            name = signal.Signals(-rc).name
        except ValueError:
            name = f"signal {-rc}"
        return f"postqueue was killed by {name}: {last or 'no message'}"
    return f"postqueue exited {rc}: {last or 'no message'}"


def _username() -> str:
    try:
        import pwd
        return pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError):
        return str(os.geteuid())


def _run(argv: list[str], timeout: float, parse, now: float, histograms: Histograms = None):
    """Run one listing; at the deadline the child is killed and what was read is returned,
    flagged ``cut``. Classifying what was read may go on a little past that deadline (a tenth
    of it, at most 0.5 s: the caller's reserve is a fifth, at most 1 s); then it stops and
    the snapshot is cut (QueueSnapshot.fold). ``killed``: the child was killed at the deadline
    (its exit code and stderr say nothing then); a snapshot cut only while classifying comes
    from a postqueue that finished by itself."""
    end = time.monotonic() + timeout + min(0.5, 0.1 * timeout)
    with Child(argv, timeout, missing="install Postfix or pass --postqueue PATH") as child:
        snap = parse(child.lines(MAX_LINE, cut_ok=True), now, histograms,
                     stop=lambda: time.monotonic() > end)
        rc, err = child.finish(cut_ok=True)
        snap.cut = snap.cut or child.expired
        snap.stop = None
        snap.long_lines = child.long_lines
    return snap, rc, err, child.expired


def read_queue(postqueue: str, config_dir: str | None, timeout: float,
               now: float, histograms: Histograms = None,
               allow_cut: bool = False) -> QueueSnapshot:
    """List the queue with ``postqueue -j``, falling back to ``-p`` where ``-j`` is refused
    (``histograms``: also count each message into these age and size buckets).

    A listing still running at ``timeout`` is cut: postqueue is killed. With ``allow_cut`` the
    snapshot of what was read comes back with ``cut`` set (its counts, bytes and ages are lower
    bounds); without, that is the MonitorError it always was."""
    deadline = Deadline(timeout)
    argv = postqueue_argv(postqueue, config_dir, "-j")
    snap, rc, err, killed = _run(argv, timeout, parse_json_lines, now, histograms)
    if not snap.cut and (rc == 64 or ("invalid option" in err and rc != 0)):
        argv = postqueue_argv(postqueue, config_dir, "-p")
        remaining = max(0.1, deadline.remaining())
        snap, rc, err, killed = _run(argv, remaining, parse_text, now, histograms)
    snap.elapsed = timeout - deadline.remaining()
    if not killed:      # postqueue ended by itself (even if classifying its listing was cut)
        if rc != 0:
            raise MonitorError(_explain(rc, err, argv))
        if "accessing queue directly" in err:
            snap.warnings.append("postqueue: mail system is down, the queue was read directly "
                                 "(start Postfix)")
    if snap.cut:
        name = os.path.basename(argv[0])
        if not allow_cut:
            raise MonitorError(f"{name} did not finish within {timeout:.1f} s and was killed "
                               f"(raise -t, or look at why it hangs)")
        if not snap.lines:              # hung before its first line: nothing to judge
            long = (f" (it printed {snap.long_lines} line(s) longer than 64 KiB, skipped)"
                    if snap.long_lines else "")
            raise MonitorError(f"{name} did not finish within {timeout:.1f} s and was killed, "
                               f"before listing anything{long} (raise -t, or look at why it "
                               f"hangs)")
        if snap.malformed == snap.lines:
            raise MonitorError(f"{' '.join(argv)} was cut after {snap.elapsed:.1f} s and none "
                               f"of the {snap.lines} lines read parses as a queue listing")
        return snap
    if snap.long_lines and snap.malformed == snap.lines:
        raise MonitorError(f"{' '.join(argv)} printed {snap.long_lines} line(s) longer than "
                           f"64 KiB (skipped) and no queue listing besides")
    if snap.source == "text" and not snap.lines and snap.expected_messages is None:
        # -p always ends with "Mail queue is empty" or its summary line: nothing is no listing
        raise MonitorError(f"{' '.join(argv)} printed no listing, not even 'Mail queue is "
                           f"empty' (run it by hand and look at what it says)")
    if snap.lines and snap.malformed == snap.lines:
        sample = snap.malformed_samples[0][:80] if snap.malformed_samples else ""
        raise MonitorError(f"{' '.join(argv)} printed {snap.lines} lines and none parses as a "
                           f"queue listing (first: {sample!r})")
    if snap.source == "text" and snap.expected_messages is None:
        # real postqueue -p always ends with one of them: without, showq may have stopped early
        snap.warnings.append("postqueue -p ended without its summary line ('-- N Kbytes in M "
                             "Requests.' or 'Mail queue is empty'): the listing may be "
                             "incomplete, counted as read")
    return snap
