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

from .. import growth, metrics
from ..deadline import Deadline
from ..errors import MonitorError
from ..listing import get_listing
from ..queue import QueueSnapshot, default_postqueue
from ..state import StateDir
from . import counters

#: postfix_exporter's showq histogram buckets (showq/showq.go), so its dashboards' quantiles
#: mean the same here.
AGE_BUCKETS: tuple[float, ...] = (1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8)
SIZE_BUCKETS: tuple[float, ...] = (1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9)


class ListingCut(MonitorError):
    """The listing did not finish within the timeout: only a lower bound of the queue."""

    def __init__(self, message: str, messages: int):
        super().__init__(message)
        self.messages = messages


@dataclass
class Collection:
    """What one scrape (or one textfile run) measured."""

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
    snap = get_listing(opts.postqueue or default_postqueue(), opts.config_dir, deadline, now,
                       state_dir=opts.state_dir, max_age=opts.listing_max_age, clock=clock,
                       histograms=(AGE_BUCKETS, SIZE_BUCKETS))
    if snap.cut:
        total = snap.stats("total").messages
        raise ListingCut(f"queue listing cut after {total} messages ({snap.elapsed or 0:.1f} s, "
                         f"postqueue killed at the deadline): at least {total} queued, no queue "
                         f"value exposed (raise --timeout)", total)
    result = Collection(now, snap, metrics.queue_values(snap))
    result.errors.extend(snap.warnings)
    state_dir = StateDir(opts.state_dir).path
    try:
        rate = growth.exposed_rate(state_dir, opts.config_dir, snap.stats("deferred").messages,
                                   clock, opts.growth_window, deadline)
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
