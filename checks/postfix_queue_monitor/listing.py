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

Every shared listing also counts its messages into postfix_exporter's age and size buckets
(:data:`HISTOGRAMS`, a few hundred bytes per listing, 0.3-0.4 s of parsing per million messages
against showq's ~20 s), so that whichever poller lists first, the Prometheus exporter can reuse
it too. Ages are counted as of the listing's own time (``now``): a reused listing states every
age (histogram, sum, oldest) as of when it was taken, never shifted by its reuse age, which the
consumers stamp instead (the Zabbix clock, the exporter's listing timestamp).
"""

from __future__ import annotations

import os
import time
from collections import Counter

from .deadline import Deadline
from .errors import MonitorError
from .proc import postfix_program
from .queue import (
    AGE_BUCKETS_MIN,
    QUEUES,
    HistogramStats,
    QueueSnapshot,
    QueueStats,
    read_queue,
)

# typing is imported for type checkers only: at run time it cost ~3 ms of every check's start-up
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

KIND = "listing"
#: postfix_exporter's showq histogram buckets (showq/showq.go), upper bounds in seconds and
#: bytes, so its dashboards' quantiles mean the same here
AGE_BUCKETS: tuple[float, ...] = (1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8)
SIZE_BUCKETS: tuple[float, ...] = (1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9)
HISTOGRAMS = (AGE_BUCKETS, SIZE_BUCKETS)
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


def validate(data: dict[str, Any]) -> dict[str, Any]:
    """The stored listing checked by type, range and consistency (state_schema.listing); a
    ValueError moves the file aside and the queue is listed afresh."""
    from . import state_schema
    return state_schema.listing(data, QUEUES, len(AGE_BUCKETS_MIN) + 1)


def from_data(data: dict[str, Any], checked: bool = False) -> QueueSnapshot:
    """A snapshot back from :func:`to_data`'s form (``checked``: already through
    :func:`validate`, else it is here: ValueError when any part is wrong)."""
    d = data if checked else validate(data)
    snap = QueueSnapshot(now=d["now"], source=d["source"])
    snap.cut, snap.elapsed, snap.long_lines = d["cut"], d["elapsed"], d["long_lines"]
    snap.lines, snap.malformed = d["lines"], d["malformed"]
    snap.malformed_samples, snap.warnings = d["malformed_samples"], d["warnings"]
    snap.expected_messages = d["expected_messages"]
    hist = d["histograms"]
    for q in QUEUES:
        st = QueueStats() if hist is None else _hist_stats(hist, q, snap.now)
        (st.messages, st.recipients, st.bytes, st.oldest_arrival,
         st.forced_expire) = d["queues"][q]
        snap.queues[q] = st
    snap.deferred_domains = Counter(d["deferred_domains"])
    snap.deferred_domain_ages = d["deferred_domain_ages"]
    snap.deferred_classes = Counter(d["deferred_classes"])
    snap.deferred_class_domains = {c: Counter(v) for c, v in d["deferred_class_domains"].items()}
    snap.deferred_reason_texts = Counter(d["deferred_reason_texts"])
    return snap


def _hist_stats(hist: dict[str, Any], queue: str, now: float) -> HistogramStats:
    st = HistogramStats(now, tuple(hist["age_bounds"]), tuple(hist["size_bounds"]))
    st.ages, st.sizes, st.age_sum = hist["queues"][queue]
    return st


# -- reading, shared -------------------------------------------------------------------------

def _ours(data: dict[str, Any], postqueue: str, config_dir: str | None) -> bool:
    return (data.get("uid") == os.geteuid() and data.get("postqueue") == postqueue
            and data.get("config_dir") == config_dir)


def _has_histograms(snap: QueueSnapshot) -> bool:
    st = snap.queues[QUEUES[0]]
    return isinstance(st, HistogramStats) and (st.age_bounds, st.size_bounds) == HISTOGRAMS


def get_listing(postqueue: str, config_dir: str | None, deadline: Deadline, now: float, *,
                state_dir: str | None = None, max_age: float | None = None,
                clock=time.time, histograms: bool = False) -> QueueSnapshot:
    """The queue listing: a fresh enough stored one, else one run of postqueue (shared).

    The run's ``deadline`` bounds both the wait for another run's listing (all but
    :data:`MARGIN_S` of what is left) and this run's own listing (its child share). Without
    ``max_age`` this is read_queue. ``histograms``: the caller needs :data:`HISTOGRAMS` (the
    Prometheus exporter); a shared listing always has them, except one stored by an older
    version, which is then listed afresh."""
    if not max_age:
        return read_queue(postqueue, config_dir, deadline.child_timeout(), now,
                          histograms=HISTOGRAMS if histograms else None, allow_cut=True)
    # state (and hashlib's OpenSSL, ~3 ms) only for a shared listing: not on every check's start
    from .state import StateDir, StateError
    wait = max(0.05, deadline.remaining() - MARGIN_S)
    state = StateDir(state_dir)
    try:
        with state.locked(file_name(config_dir), wait) as sf:
            at = clock()          # the time the lock was got: what "fresh" is measured against
            try:
                data = sf.read(KIND, validate, "the shared queue listing (listed afresh)")
                stored = (from_data(data, checked=True)
                          if data and _ours(data, postqueue, config_dir) else None)
            except StateError:
                stored = None     # moved aside: list afresh and replace it
            if stored is not None and 0 <= at - stored.now <= max_age \
                    and (_has_histograms(stored) or not histograms):
                if not stored.cut or stored.now + (stored.elapsed or 0) >= now - 0.05:
                    # a complete listing, or a cut one that ended while this run waited for it
                    # (taken as what it is: lower bounds); an older cut one is listed afresh
                    stored.reused_age = at - stored.now
                    return stored
            if deadline.remaining() < MARGIN_S:
                raise MonitorError("waited for another run's queue listing until no time was "
                                   "left to list (raise -t)")
            snap = read_queue(postqueue, config_dir, deadline.child_timeout(), at,
                              histograms=HISTOGRAMS, allow_cut=True)
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


# -- what every consumer does with it --------------------------------------------------------

def for_run(opts: Any, deadline: Deadline, now: float, clock=time.time,
            histograms: bool = False) -> QueueSnapshot:
    """The listing of a run's measuring options (``--postqueue``, ``--config-dir``,
    ``--state-dir``, ``--listing-max-age``): the one call of the checks, the report, the
    Zabbix document and the Prometheus collection."""
    return get_listing(opts.postqueue or postfix_program("postqueue"), opts.config_dir, deadline,
                       now, state_dir=opts.state_dir, max_age=opts.listing_max_age, clock=clock,
                       histograms=histograms)


def cut_error(snap: QueueSnapshot, left_out: str) -> str:
    """What a front end says of a cut listing whose values it leaves out (``left_out``):
    how far it got, and that the total is a lower bound."""
    total = snap.stats("total").messages
    return (f"queue listing cut after {total} messages ({snap.elapsed or 0:.1f} s, postqueue "
            f"killed at the deadline): {left_out}, at least {total} queued (raise -t)")
