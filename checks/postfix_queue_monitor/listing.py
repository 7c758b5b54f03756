"""One queue listing for every poller: ``--listing-max-age`` and single flight.

A host's pollers (four checks, the report, the Zabbix sender) each used to run their own
``postqueue -j``; with a big queue every one is a full showq scan. With ``--listing-max-age S``
a complete listing of the same Postfix instance, taken by the same user (the state dir is the
user's own: state.py refuses another's), not older than S, is reused. It is stored as the parsed
snapshot (never the raw text), 0600 in the 0700 state dir, written atomically by state.py.

Single flight: the listing file's lock is held while listing, so pollers starting together
queue on it; the first lists, the others wake to a fresh listing and reuse it, each waiting no
longer than its own deadline allows. A listing cut by the deadline is stored flagged ``cut`` and
is never reused as complete: only a run that was waiting for that very scan takes it, as the
lower bounds it is; any later run lists afresh.
"""

from __future__ import annotations

import os
import time
from collections import Counter

from .deadline import Deadline
from .errors import MonitorError
from .queue import AGE_BUCKETS_MIN, QUEUES, HistogramStats, QueueSnapshot, QueueStats, read_queue

# typing is imported for type checkers only: at run time it cost ~3 ms of every check's start-up
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .queue import Histograms

KIND = "listing"
#: time kept back from the lock wait for judging and printing after the listing arrives
MARGIN_S = 0.5


def file_name(config_dir: str | None) -> str:
    from .state import instance_key
    return f"listing-{instance_key(config_dir)}.json"


# -- the stored form -------------------------------------------------------------------------

def to_data(snap: QueueSnapshot, postqueue: str, config_dir: str | None) -> dict[str, Any]:
    """The snapshot as plain JSON data (folded: nothing pending)."""
    snap.fold()
    return {
        "uid": os.geteuid(), "postqueue": postqueue, "config_dir": config_dir,
        "now": snap.now, "source": snap.source, "cut": snap.cut, "elapsed": snap.elapsed,
        "long_lines": snap.long_lines, "lines": snap.lines, "malformed": snap.malformed,
        "malformed_samples": snap.malformed_samples, "warnings": snap.warnings,
        "expected_messages": snap.expected_messages,
        "queues": {q: [s.messages, s.recipients, s.bytes, s.oldest_arrival, s.forced_expire]
                   for q, s in snap.queues.items()},
        "deferred_domains": dict(snap.deferred_domains),
        "deferred_domain_ages": snap.deferred_domain_ages,
        "deferred_classes": dict(snap.deferred_classes),
        "deferred_class_domains": {c: dict(d) for c, d in snap.deferred_class_domains.items()},
        "deferred_reason_texts": dict(snap.deferred_reason_texts),
        "histograms": _hist_data(snap),
    }


def _hist_data(snap: QueueSnapshot) -> dict[str, Any] | None:
    """The per-queue age and size buckets of a listing read with histograms (else None)."""
    stats = [st for st in (snap.queues[q] for q in QUEUES) if isinstance(st, HistogramStats)]
    if len(stats) != len(QUEUES):
        return None
    return {"age_bounds": list(stats[0].age_bounds), "size_bounds": list(stats[0].size_bounds),
            "queues": {q: [st.ages, st.sizes, st.age_sum] for q, st in zip(QUEUES, stats)}}


def _hist_stats(hist: dict[str, Any], queue: str, now: float) -> HistogramStats:
    ages, sizes, age_sum = hist["queues"][queue]
    age_bounds = tuple(float(_num(b, (int, float))) for b in hist["age_bounds"])
    size_bounds = tuple(float(_num(b, (int, float))) for b in hist["size_bounds"])
    st = HistogramStats(now, age_bounds, size_bounds)
    if len(ages) != len(age_bounds) + 1 or len(sizes) != len(size_bounds) + 1:
        raise ValueError("histogram row")
    st.ages, st.sizes = [_num(n) for n in ages], [_num(n) for n in sizes]
    st.age_sum = float(_num(age_sum, (int, float)))
    return st


def _counter(obj: object) -> Counter[str]:
    if not isinstance(obj, dict) or not all(
            isinstance(k, str) and type(v) is int and v >= 0 for k, v in obj.items()):
        raise ValueError("counter")
    return Counter(obj)


def _num(obj: Any, kind: tuple[type, ...] = (int,)) -> Any:
    if type(obj) not in kind or obj < 0:
        raise ValueError("number")
    return obj


def from_data(data: dict[str, Any]) -> QueueSnapshot:
    """A snapshot back from :func:`to_data`'s form; ValueError/TypeError/KeyError when any part
    has the wrong type or range (the file is then ignored and the queue listed afresh)."""
    snap = QueueSnapshot(now=float(_num(data["now"], (int, float))), source=data["source"])
    if snap.source not in ("json", "text"):
        raise ValueError("source")
    snap.cut = data["cut"] is True
    snap.elapsed = _num(data["elapsed"], (int, float)) if data["elapsed"] is not None else None
    snap.long_lines = _num(data["long_lines"])
    snap.lines = _num(data["lines"])
    snap.malformed = _num(data["malformed"])
    snap.malformed_samples = [str(s) for s in data["malformed_samples"]][:5]
    snap.warnings = [str(s) for s in data["warnings"]][:10]
    expected = data["expected_messages"]
    snap.expected_messages = None if expected is None else _num(expected)
    hist = data.get("histograms")
    for q in QUEUES:
        messages, recipients, size, oldest, forced = data["queues"][q]
        st = QueueStats() if hist is None else _hist_stats(hist, q, snap.now)
        st.messages, st.recipients, st.bytes = _num(messages), _num(recipients), _num(size)
        st.forced_expire = _num(forced)
        st.oldest_arrival = None if oldest is None else float(_num(oldest, (int, float)))
        snap.queues[q] = st
    snap.deferred_domains = _counter(data["deferred_domains"])
    ages = data["deferred_domain_ages"]
    if not isinstance(ages, dict):
        raise ValueError("ages")
    for domain, row in ages.items():
        if not isinstance(row, list) or len(row) != len(AGE_BUCKETS_MIN) + 1:
            raise ValueError("age row")
        snap.deferred_domain_ages[str(domain)] = [_num(n) for n in row]
    snap.deferred_classes = _counter(data["deferred_classes"])
    snap.deferred_class_domains = {str(c): _counter(d)
                                   for c, d in data["deferred_class_domains"].items()}
    snap.deferred_reason_texts = _counter(data["deferred_reason_texts"])
    return snap


# -- reading, shared -------------------------------------------------------------------------

def _ours(data: dict[str, Any], postqueue: str, config_dir: str | None) -> bool:
    return (data.get("uid") == os.geteuid() and data.get("postqueue") == postqueue
            and data.get("config_dir") == config_dir)


def _has_histograms(snap: QueueSnapshot, histograms: Histograms) -> bool:
    if histograms is None:
        return True
    st = snap.queues[QUEUES[0]]
    return isinstance(st, HistogramStats) and (st.age_bounds, st.size_bounds) == histograms


def get_listing(postqueue: str, config_dir: str | None, deadline: Deadline, now: float, *,
                state_dir: str | None = None, max_age: float | None = None,
                clock=time.time, histograms: Histograms = None) -> QueueSnapshot:
    """The queue listing: a fresh enough stored one, else one run of postqueue (shared).

    The run's ``deadline`` bounds both the wait for another run's listing (all but
    :data:`MARGIN_S` of what is left) and this run's own listing (its child share). Without
    ``max_age`` this is read_queue. ``histograms`` (the Prometheus front end's buckets): a
    stored listing without those is listed afresh, and the new one, stored with them, serves
    every poller."""
    if not max_age:
        return read_queue(postqueue, config_dir, deadline.child_timeout(), now,
                          histograms=histograms, allow_cut=True)
    # state (and hashlib's OpenSSL, ~3 ms) only for a shared listing: not on every check's start
    from .state import StateDir, StateError
    wait = max(0.05, deadline.remaining() - MARGIN_S)
    state = StateDir(state_dir)
    try:
        with state.locked(file_name(config_dir), wait) as sf:
            at = clock()          # the time the lock was got: what "fresh" is measured against
            try:
                data = sf.read(KIND)
                stored = from_data(data) if data and _ours(data, postqueue, config_dir) else None
            except (StateError, ValueError, TypeError, KeyError, AttributeError):
                stored = None     # unreadable: list afresh and replace it
            if stored is not None and 0 <= at - stored.now <= max_age \
                    and _has_histograms(stored, histograms):
                if not stored.cut or stored.now + (stored.elapsed or 0) >= now - 0.05:
                    # a complete listing, or a cut one that ended while this run waited for it
                    # (taken as what it is: lower bounds); an older cut one is listed afresh
                    stored.reused_age = at - stored.now
                    return stored
            if deadline.remaining() < MARGIN_S:
                raise MonitorError("waited for another run's queue listing until no time was "
                                   "left to list (raise -t)")
            snap = read_queue(postqueue, config_dir, deadline.child_timeout(), at,
                              histograms=histograms, allow_cut=True)
            try:
                sf.write(KIND, to_data(snap, postqueue, config_dir))
            except (OSError, StateError) as exc:     # state.py says a failed write as such
                snap.warnings.append(f"listing not stored for other pollers: {exc}")
            return snap
    except StateError as exc:
        if "locked by another run" in str(exc):
            raise MonitorError(f"another run has been listing the queue for over {wait:.1f} s "
                               f"(--listing-max-age waits for it within -t): raise -t") from None
        raise
