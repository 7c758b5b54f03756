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


def _classes(value: object, what: str) -> dict[str, int]:
    return {text(k, what, 200): integer(n, f"{what} count", 0, MAX_COUNT)
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
                                _classes(row[4], f"bucket {minute} bounce class"),
                                _classes(row[5], f"bucket {minute} deferral class")]
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
