"""What each state file must hold, checked by type and range when it is loaded.

A state file that parses as JSON can still be wrong (hand-edited, written by another version,
damaged): a count that is a string, a negative offset, a list where a mapping belongs. Such a
file would break every later run with a TypeError or an OSError, so each loader passes the
file's data through one of these functions first; a ``ValueError`` from them makes
``StateFile.read`` move the file aside and say what was lost (see docs/reference.md, state
files). Pure functions of the decoded JSON: no I/O, no clock.
"""

from __future__ import annotations

import math

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: Upper bounds that no real file reaches (a 64-bit offset, an inode, a count) but that keep
#: arithmetic and ``read(n)`` sizes sane when a file says otherwise.
MAX_INT = 2 ** 63 - 1
MAX_COUNT = 2 ** 53            # exact in a float, far beyond any queue or log count
MAX_TIME = 2 ** 40             # seconds since the epoch: year ~36,800
MAX_FP_LEN = 64 * 1024         # the log fingerprint is 1 KiB; never read more than this
MAX_TEXT = 64 * 1024
MAX_RATE = 1e15                # messages per hour


def integer(value: object, what: str, lo: int = 0, hi: int = MAX_INT) -> int:
    """An int in [lo, hi] (a bool is not an int here)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{what} is {type(value).__name__}, not an integer")
    if not lo <= value <= hi:
        raise ValueError(f"{what} {value} is out of range [{lo}, {hi}]")
    return value


def number(value: object, what: str, lo: float = 0.0, hi: float = MAX_TIME) -> float:
    """A finite int or float in [lo, hi], as a float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{what} is {type(value).__name__}, not a number")
    out = float(value)
    if not math.isfinite(out) or not lo <= out <= hi:
        raise ValueError(f"{what} {value!r} is out of range [{lo:g}, {hi:g}]")
    return out


def text(value: object, what: str, limit: int = MAX_TEXT, one_line: bool = True) -> str:
    """A string of at most ``limit`` characters; ``one_line``: without CR or LF (it may end up
    in a status line, which must stay one line)."""
    if not isinstance(value, str):
        raise ValueError(f"{what} is {type(value).__name__}, not a string")
    if len(value) > limit:
        raise ValueError(f"{what} is longer than {limit} characters")
    if one_line and ("\n" in value or "\r" in value):
        raise ValueError(f"{what} holds a line break")
    return value


def mapping(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{what} is {type(value).__name__}, not an object")
    return value


def array(value: object, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError(f"{what} is {type(value).__name__}, not a list")
    return value


# -- growth ---------------------------------------------------------------------------------

def growth(data: dict[str, Any]) -> dict[str, Any]:
    """``{"samples": [[time, deferred], …], "windows": {"900.0": last_used, …}, "rates":
    {"900.0": [time, rate], …}}`` (windows: those of the consumers of this file, so pruning
    keeps what the longest needs; rates: each window's last rate, reused while the samples are
    too close for a new one)."""
    samples = []
    for i, s in enumerate(array(data.get("samples", []), "samples")):
        pair = array(s, f"sample {i}")
        if len(pair) != 2:
            raise ValueError(f"sample {i} has {len(pair)} fields, not 2")
        samples.append((number(pair[0], f"sample {i} time"),
                        integer(pair[1], f"sample {i} count", 0, MAX_COUNT)))
    windows = {}
    for key, used in mapping(data.get("windows", {}), "windows").items():
        w = _window(key)
        windows[w] = number(used, f"window {key[:40]} last use")
    rates = {}
    for key, pair in mapping(data.get("rates", {}), "rates").items():
        w = _window(key)
        row = array(pair, f"rate {key[:40]}")
        if len(row) != 2:
            raise ValueError(f"rate {key[:40]} has {len(row)} fields, not 2")
        rates[w] = (number(row[0], f"rate {key[:40]} time"),
                    number(row[1], f"rate {key[:40]}", -MAX_RATE, MAX_RATE))
    return {"samples": samples, "windows": windows, "rates": rates}


def _window(key: str) -> float:
    try:
        w = float(key)
    except ValueError:
        raise ValueError(f"window {key[:40]!r} is not a number") from None
    if not (math.isfinite(w) and 0 < w <= MAX_TIME):
        raise ValueError(f"window {key[:40]!r} is out of range")
    return w


# -- bounce rate: log position or journal cursor, per-minute counts -------------------------

def position(data: object) -> dict[str, Any]:
    d = mapping(data, "position")
    return {"path": text(d.get("path"), "position path", 4096),
            "dev": integer(d.get("dev"), "position dev"),
            "ino": integer(d.get("ino"), "position inode"),
            "offset": integer(d.get("offset"), "position offset"),
            "fp": text(d.get("fp"), "position fingerprint", 64),
            "fp_len": integer(d.get("fp_len"), "position fingerprint length", 0, MAX_FP_LEN)}


def _counter(value: object, what: str, limit: int = MAX_TEXT, one_line: bool = False
             ) -> dict[str, int]:
    """A mapping of names (bounce classes, domains, reason texts) to counts."""
    return {text(k, f"{what} name", limit, one_line): integer(n, f"{what} count", 0, MAX_COUNT)
            for k, n in mapping(value, what).items()}


def _source(data: dict[str, Any], out: dict[str, Any]) -> None:
    """Where a log reader stopped: the source, a file position or a journal cursor."""
    if "source" in data:
        out["source"] = text(data["source"], "source", 4096)
    if data.get("position") is not None:
        out["position"] = position(data["position"])
    if "cursor" in data:
        cursor = data["cursor"]
        out["cursor"] = None if cursor is None else text(cursor, "journal cursor", 4096)
    if "updated" in data:
        out["updated"] = number(data["updated"], "updated")
    if "name_seen" in data:              # --syslog-name: a line of it was read (deliveries)
        if not isinstance(data["name_seen"], bool):
            raise ValueError(f"name_seen is {type(data['name_seen']).__name__}, not a boolean")
        out["name_seen"] = data["name_seen"]
    if "other_names" in data:            # until then: the other Postfix names read
        names = array(data["other_names"], "other_names")
        if len(names) > 64:
            raise ValueError(f"other_names holds {len(names)} names")
        out["other_names"] = [text(n, "other name", 200, True) for n in names]


def bounce(data: dict[str, Any]) -> dict[str, Any]:
    """The bounce-rate state: where reading stopped and the per-minute counts (keys unknown
    here pass through unchecked: whoever adds one checks it where it is loaded)."""
    out: dict[str, Any] = dict(data)
    _source(data, out)
    buckets = {}
    for key, b in mapping(data.get("buckets", {}), "buckets").items():
        try:
            minute = int(key)
        except ValueError:
            raise ValueError(f"bucket {key[:40]!r} is not a minute") from None
        if not 0 <= minute <= MAX_TIME:
            raise ValueError(f"bucket {minute} is out of range")
        row = array(b, f"bucket {minute}")
        if len(row) != 6:
            raise ValueError(f"bucket {minute} has {len(row)} fields, not 6")
        buckets[str(minute)] = [*(integer(n, f"bucket {minute} count", 0, MAX_COUNT)
                                  for n in row[:4]),
                                _counter(row[4], f"bucket {minute} bounce class", 200, True),
                                _counter(row[5], f"bucket {minute} deferral class", 200, True)]
    out["buckets"] = buckets
    texts = {}
    for key, t in mapping(data.get("texts", {}), "texts").items():
        pair = array(t, f"text {key[:40]}")
        if len(pair) != 2:
            raise ValueError(f"text {key[:40]} has {len(pair)} fields, not 2")
        texts[text(key, "text class", 200)] = [text(pair[0], f"text {key[:40]}"),
                                               integer(pair[1], f"text {key[:40]} minute", 0,
                                                       MAX_TIME)]
    out["texts"] = texts
    if data.get("unreadable") is not None:       # lines in a timestamp style not understood
        odd = array(data["unreadable"], "unreadable")
        if len(odd) != 4:
            raise ValueError(f"unreadable has {len(odd)} fields, not 4")
        out["unreadable"] = [integer(odd[0], "unreadable lines", 0, MAX_COUNT),
                             integer(odd[1], "unreadable status lines", 0, MAX_COUNT),
                             text(odd[2], "unreadable sample"),
                             integer(odd[3], "unreadable minute", 0, MAX_TIME)]
    return out


def counters(data: dict[str, Any]) -> dict[str, Any]:
    """The Prometheus exporter's delivery counters: where reading stopped and the totals."""
    out: dict[str, Any] = dict(data)
    _source(data, out)
    if "totals" in data:
        out["totals"] = {text(k, "totals name", 40): integer(n, f"total {k[:40]}", 0, MAX_INT)
                         for k, n in mapping(data["totals"], "totals").items()}
    return out


# -- Zabbix spool ---------------------------------------------------------------------------

def spool(data: dict[str, Any]) -> dict[str, Any]:
    """The spool's frame; its entries are checked one by one (:func:`spool_entry`), so one bad
    entry costs only itself."""
    return {"values": array(data.get("values", []), "values")}


def spool_entry(entry: object) -> dict[str, Any]:
    d = mapping(entry, "value")
    return {"host": text(d.get("host"), "host", 1024), "key": text(d.get("key"), "key", 2048),
            "value": text(d.get("value"), "value", 16 * 1024 * 1024, one_line=False),
            "clock": integer(d.get("clock"), "clock", 0, 2 ** 32),
            "ns": integer(d.get("ns"), "ns", 0, 999_999_999)}


# -- the shared queue listing (listing.py) ---------------------------------------------------

MAX_BOUNDS = 64                # histogram buckets: postfix_exporter's have 8 and 7


def _optional(value: object, check: Any) -> Any:
    return None if value is None else check(value)


def _bounds(value: object, what: str) -> tuple[float, ...]:
    """Histogram upper bounds: finite, increasing, at most MAX_BOUNDS."""
    bounds = tuple(number(b, f"{what} bound", 0.0, 1e18) for b in array(value, what))
    if not 0 < len(bounds) <= MAX_BOUNDS:
        raise ValueError(f"{what} has {len(bounds)} bounds, not 1 to {MAX_BOUNDS}")
    if any(a >= b for a, b in zip(bounds, bounds[1:])):
        raise ValueError(f"{what} are not increasing")
    return bounds


def _buckets(value: object, what: str, n: int) -> list[int]:
    row = array(value, what)
    if len(row) != n:
        raise ValueError(f"{what} has {len(row)} buckets, not {n}")
    return [integer(c, f"{what} count", 0, MAX_COUNT) for c in row]


def _histograms(value: object, queues: dict[str, list[Any]]) -> dict[str, Any]:
    """Per queue: age bucket counts, size bucket counts (each with a last, open bucket) and
    the sum of the ages; each row must count exactly the queue's messages (a row that does
    not would expose a histogram that contradicts the queue depth)."""
    d = mapping(value, "histograms")
    age_bounds = _bounds(d.get("age_bounds"), "age bounds")
    size_bounds = _bounds(d.get("size_bounds"), "size bounds")
    rows = mapping(d.get("queues"), "histogram queues")
    out: dict[str, list[Any]] = {}
    for q, stats in queues.items():
        row = array(rows.get(q), f"histogram of {q}")
        if len(row) != 3:
            raise ValueError(f"histogram of {q} has {len(row)} fields, not 3")
        ages = _buckets(row[0], f"age histogram of {q}", len(age_bounds) + 1)
        sizes = _buckets(row[1], f"size histogram of {q}", len(size_bounds) + 1)
        # a message that arrived after the listing began has a negative age (as in
        # postfix_exporter, which observes now - arrival): the sum may be below 0
        age_sum = number(row[2], f"age sum of {q}", -float(MAX_COUNT) * MAX_TIME,
                         float(MAX_COUNT) * MAX_TIME)
        if not sum(ages) == sum(sizes) == stats[0]:
            raise ValueError(f"histograms of {q} count {sum(ages)} and {sum(sizes)} messages, "
                             f"the queue {stats[0]}")
        out[q] = [ages, sizes, age_sum]
    return {"age_bounds": list(age_bounds), "size_bounds": list(size_bounds), "queues": out}


def listing(data: dict[str, Any], queues: tuple[str, ...], age_row: int) -> dict[str, Any]:
    """The parsed snapshot of a queue listing (listing.to_data): who listed it and when, the
    per-queue totals ``[messages, recipients, bytes, oldest arrival or null, forced expiry]``,
    the deferred counters (``age_row`` qshape buckets per domain), and, None for a listing
    stored without them, postfix_exporter's histograms. Bounded by construction: no
    per-message data."""
    d = data
    if d.get("source") not in ("json", "text"):
        raise ValueError(f"listing source {str(d.get('source'))[:20]!r} is not json or text")
    cut = d.get("cut")
    if not isinstance(cut, bool):
        raise ValueError("listing cut flag is not a boolean")
    totals: dict[str, list[Any]] = {}
    rows = mapping(d.get("queues"), "queues")
    for q in queues:
        row = array(rows.get(q), f"queue {q}")
        if len(row) != 5:
            raise ValueError(f"queue {q} has {len(row)} fields, not 5")
        totals[q] = [integer(row[0], f"{q} messages", 0, MAX_COUNT),
                     integer(row[1], f"{q} recipients", 0, MAX_COUNT),
                     integer(row[2], f"{q} bytes", 0, MAX_INT),
                     _optional(row[3], lambda v, q=q: number(v, f"{q} oldest arrival",
                                                             -MAX_TIME)),
                     integer(row[4], f"{q} forced expiries", 0, MAX_COUNT)]
    ages = {text(k, "deferred domain", one_line=False): _buckets(v, f"ages of {k[:40]}", age_row)
            for k, v in mapping(d.get("deferred_domain_ages"), "deferred domain ages").items()}
    return {
        "uid": integer(d.get("uid"), "listing uid", 0, 2 ** 32),
        "postqueue": text(d.get("postqueue"), "listing postqueue", 4096),
        "config_dir": _optional(d.get("config_dir"), lambda v: text(v, "listing config dir",
                                                                     4096)),
        "now": number(d.get("now"), "listing time"),
        "source": d["source"], "cut": cut,
        "elapsed": _optional(d.get("elapsed"), lambda v: number(v, "listing duration")),
        "long_lines": integer(d.get("long_lines"), "long lines", 0, MAX_COUNT),
        "lines": integer(d.get("lines"), "listing lines", 0, MAX_COUNT),
        "malformed": integer(d.get("malformed"), "malformed lines", 0, MAX_COUNT),
        "malformed_samples": [text(s, "malformed sample", one_line=False)
                              for s in array(d.get("malformed_samples"), "malformed samples")][:5],
        "warnings": [text(s, "listing warning", one_line=False)
                     for s in array(d.get("warnings"), "listing warnings")][:10],
        "expected_messages": _optional(d.get("expected_messages"),
                                       lambda v: integer(v, "expected messages", 0, MAX_COUNT)),
        "queues": totals,
        "deferred_domains": _counter(d.get("deferred_domains"), "deferred domain"),
        "deferred_domain_ages": ages,
        "deferred_classes": _counter(d.get("deferred_classes"), "deferred class"),
        "deferred_class_domains": {
            text(c, "deferred class", 200): _counter(v, f"domains of {c[:40]}")
            for c, v in mapping(d.get("deferred_class_domains"), "class domains").items()},
        "deferred_reason_texts": _counter(d.get("deferred_reason_texts"), "reason text"),
        "histograms": _optional(d.get("histograms"), lambda v: _histograms(v, totals)),
    }
