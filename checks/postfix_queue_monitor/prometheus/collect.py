"""One measurement for Prometheus: the queue listing (with postfix_exporter's histograms; shared
with the other pollers under ``--listing-max-age``), the deferred growth, and the delivery
counters, within one deadline.

The listing is required: its failure is a MonitorError (the exposition then says
``postfix_up 0``); a listing cut at the deadline is a ListingCut, whose lower bound is
exposed alone. Growth and counters are optional: their failure is recorded in ``errors``
and their series are left out, as in the Zabbix document.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from typing import Optional

from .. import growth, listing, metrics
from ..deadline import Deadline
from ..errors import MonitorError
from ..listing import AGE_BUCKETS, SIZE_BUCKETS
from ..queue import QueueSnapshot
from ..state import StateDir
from . import counters

__all__ = ["AGE_BUCKETS", "SIZE_BUCKETS", "Collection", "ListingCut", "measure"]


class ListingCut(MonitorError):
    """The listing did not finish within the timeout: only a lower bound of the queue."""

    def __init__(self, message: str, messages: int):
        super().__init__(message)
        self.messages = messages


@dataclass
class Collection:
    """What one scrape (or one textfile run) measured: ``now`` when it ran, ``snap.now`` when
    its listing was taken (earlier when it reused another poller's: every queue value,
    histogram and age is as of then)."""

    now: float
    snap: QueueSnapshot
    values: dict[str, float]                       # by registry id
    totals: Optional[dict[str, int]] = None        # delivery counters; None: not measured
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0


def measure(opts: argparse.Namespace, clock=time.time) -> Collection:
    """Measure everything within ``opts.timeout`` seconds."""
    started = time.monotonic()
    deadline = Deadline(opts.timeout)
    now = clock()
    snap = listing.for_run(opts, deadline, now, clock, histograms=True)
    if snap.cut:
        raise ListingCut(listing.cut_error(snap, "no queue value exposed"),
                         snap.stats("total").messages)
    result = Collection(now, snap, metrics.queue_values(snap))
    result.errors.extend(snap.warnings)
    state_dir = StateDir(opts.state_dir).path
    try:
        rate = growth.exposed_rate(state_dir, opts.config_dir, snap.stats("deferred").messages,
                                   snap.now, clock, opts.growth_window, deadline)
        if rate is not None:
            result.values["deferred.growth"] = rate
    except MonitorError as exc:
        result.errors.append(f"growth: {exc}")
    if opts.deliveries:
        try:
            result.totals = counters.read_totals(opts.log_file, opts.journal, opts.syslog_name,
                                                 state_dir, now, deadline)
        except MonitorError as exc:
            result.errors.append(f"deliveries: {exc}")
    result.seconds = time.monotonic() - started
    return result
