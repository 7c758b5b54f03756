"""Delivery outcomes as Prometheus counters: recipients sent, bounced, expired and deferred by
every delivery agent, summed since the first run and kept in the state dir.

Each run reads only what the log (or the journal) gained since the position this file stores
(its own position, not the bounce check's windowed one), adds it to the stored totals and
writes totals and position back together, under the state lock. The log readers are the bounce
check's: a renamed log is finished from the stored offset before the new one is read, a
copytruncated one is recognised by its first bytes, so a rotation neither resets the totals nor
counts a line twice. The first run starts at the end of the log: the totals start at 0 and
count what is logged from then on (Prometheus' ``increase()`` needs no history).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

from .. import state_schema
from ..deadline import Deadline
from ..deliveries import name_problem, resolve_source, stats_of
from ..errors import MonitorError
from ..maillog import Clock, FileReader, JournalReader, LineFeeder, Position, Tally, minute
from ..metrics import DELIVERY_COUNTS
from ..state import StateDir, instance_key

STATE_KIND = "delivery-counters"
#: Postfix lines in a format not understood keep the counters "failed" this long after they
#: were read (the alert on a partial collection waits 15 minutes), as the bounce check keeps
#: them for its window
UNREADABLE_KEPT = 3600.0


def state_name(source: str, syslog_name: Optional[str]) -> str:
    """One counter file per log (or journal) × syslog name."""
    key = instance_key(f"{source}|{syslog_name or 'postfix*'}")
    return f"counters-{key}.json"


def _totals(data: dict[str, Any] | None) -> dict[str, int]:
    if data is None:
        return dict.fromkeys(DELIVERY_COUNTS, 0)
    raw = data.get("totals")
    if not isinstance(raw, dict) or not all(
            type(raw.get(k)) is int and raw[k] >= 0 for k in DELIVERY_COUNTS):
        raise MonitorError("delivery counter state holds malformed totals: delete the state "
                           "file or pass another --state-dir (the counters restart at 0)")
    return {k: raw[k] for k in DELIVERY_COUNTS}


def _format_problem(tally: Tally, data: dict[str, Any] | None, state: dict[str, Any],
                    source: str, now: float) -> Optional[str]:
    """New Postfix lines whose format no style reads (the bounce check's UNKNOWN): the counters
    missed what they hold. They stay in the state for UNREADABLE_KEPT, added to later runs'."""
    if data and data.get("unreadable") is not None:
        old = Tally.load({"unreadable": data["unreadable"]}).odd
        if old[3] >= now - UNREADABLE_KEPT:
            new = tally.odd
            tally.odd = [old[0] + new[0], old[1] + new[1], old[2] or new[2], max(old[3], new[3])]
    if not tally.odd[0]:
        return None
    state["unreadable"] = tally.odd
    return stats_of(tally, 0, 0.0, source).format_problem()


def read_totals(log_file: Optional[str], journal: bool, syslog_name: Optional[str],
                state_dir: Optional[str], now: float, deadline: Deadline, *,
                journal_files: Sequence[str] = (),
                journalctl: str = "journalctl") -> dict[str, int]:
    """The totals after adding what is new in the log: {sent, bounced, expired, deferred}."""
    use_journal, source = resolve_source(log_file, journal, journal_files)
    with StateDir(state_dir).locked(state_name(source, syslog_name),
                                    deadline.lock_timeout(0.5)) as sf:
        data = sf.read(STATE_KIND, state_schema.counters, "the delivery counters and the log "
                       "position (the counters restart at 0)")
        totals = _totals(data)
        # first run: a floor past now, so the lines read to find the end count nowhere
        tally = Tally(since=minute(now) + 60 if data is None else 0)
        feeder = LineFeeder(tally, Clock(now), syslog_name,
                            name_seen=data.get("name_seen") if data else None)
        state: dict[str, Any] = {"source": source}
        if use_journal:
            cursor = data.get("cursor") if data else None
            if not isinstance(cursor, (str, type(None))):
                raise MonitorError("delivery counter state holds a malformed journal cursor: "
                                   "delete the state file or pass another --state-dir")
            # Without a cursor (nothing read yet) or with one the journal refuses, read from
            # the previous run's time: what came since, neither a window twice nor a gap.
            since = data["updated"] if data and isinstance(data.get("updated"), (int, float)) \
                else now
            state["cursor"] = JournalReader(feeder, syslog_name, deadline.child_timeout(),
                                            journal_files, journalctl).read(cursor, since)
        else:
            reader = FileReader(source, feeder)
            stored = data.get("position") if data else None
            if stored:
                try:
                    pos = Position.load(stored)
                except MonitorError:
                    raise MonitorError("delivery counter state holds a malformed log position: "
                                       "delete the state file or pass another --state-dir") \
                        from None
                pos = reader.incremental(pos, now)
            else:
                pos = reader.first_run(now)
            state["position"] = pos.dump()
        for bucket in tally.buckets.values():
            for i, name in enumerate(("sent", "bounced", "expired", "deferred")):
                totals[name] += bucket[i]
        state["totals"] = totals
        state["updated"] = now
        # both, always: each keeps its part of the state (a name problem alone would drop
        # the unreadable lines kept so far); the name problem is the one said
        unreadable = _format_problem(tally, data, state, source, now)
        problem = name_problem(syslog_name, source, feeder, data, state) or unreadable
        sf.write(STATE_KIND, state)
    if problem:
        raise MonitorError(problem)
    return totals
