"""The Zabbix JSON document: every metric of the registry at its JSONPath, in one object.

The sender pushes it as the value of one trapper master item (``postfix.metrics``); the agent
returns it through ``UserParameter=postfix.metrics``; the templates' dependent items pick their
values out with the registry's JSONPath. The numbers come from the same code as the Nagios
checks' perfdata (``metrics.queue_values``, ``growth.measure_growth`` and
``deliveries.measure_deliveries``).

Growth and delivery numbers are optional: until the growth has a baseline, or when the mail
log cannot be read (the reason goes to ``$.meta.error``), the document carries no value there
and the template's items discard the missing value instead of going unsupported.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import __version__, deliveries, growth, listing, metrics
from ..deadline import Deadline
from ..errors import MonitorError
from ..metrics import Metric
from ..queue import QueueSnapshot
from ..state import StateDir

#: Values about the collection itself: Zabbix only (no Nagios label), not in docs/reference.md's key
#: table, so they live here rather than in the shared registry.
META: tuple[Metric, ...] = (
    Metric("meta.collect_seconds", "postfix.monitor.collect_time", "$.meta.collect_seconds",
           "Monitor: collection time", "s", "float"),
    Metric("meta.version", "postfix.monitor.version", "$.meta.version",
           "Monitor: version", "", "char"),
    Metric("meta.listing", "postfix.monitor.listing", "$.meta.listing",
           "Monitor: queue listing used", "", "unsigned"),
    Metric("meta.malformed", "postfix.monitor.malformed", "$.meta.malformed_lines",
           "Monitor: malformed listing lines", "", "unsigned"),
    Metric("meta.error", "postfix.monitor.error", "$.meta.error",
           "Monitor: partial measuring error", "", "char"),
    Metric("meta.growth_ready", "postfix.queue.deferred.growth.ready", "$.deferred.baseline",
           "Deferred growth: baseline", "", "unsigned"),
    Metric("meta.cut_messages", "postfix.queue.size.lower_bound", "$.meta.cut.messages",
           "Queue total: at least (listing cut)", "", "unsigned"),
)

#: Everything the document can carry, in template order.
ALL: tuple[Metric, ...] = (*metrics.REGISTRY, *META)
BY_ID: dict[str, Metric] = {m.id: m for m in ALL}

#: Metrics that may be absent from a document (no baseline yet, no delivery measurement):
#: their items discard a missing value rather than becoming unsupported.
OPTIONAL: frozenset[str] = frozenset(
    [m.id for m in metrics.REGISTRY if m.id == "deferred.growth" or m.id.startswith("delivery.")]
    + [m.id for m in metrics.REGISTRY if m.id.startswith(("queue.", "deferred.reason."))]
    + ["meta.cut_messages", "meta.growth_ready", "meta.listing", "meta.malformed"])
#: A listing cut by the deadline gives lower bounds only: none of its queue values goes out as
#: if it were the whole (a false dip in every graph just when the queue is largest). The total
#: read so far goes to ``meta.cut_messages`` alone, whose trigger fires when even that is above
#: {$POSTFIX.QUEUE.SIZE.CRIT}; ``meta.error`` says the listing was cut.

#: ``$.meta.listing`` values (the template's value map says the same).
LISTING = {"json": 0, "text": 1}
DELIVERY_FIELDS = (*metrics.DELIVERY_COUNTS, "bounce_rate", "deferral_rate")
#: The values read from the mail log: as of the run, not of the (maybe reused) listing.
LOG_VALUES: frozenset[str] = frozenset(m.id for m in metrics.REGISTRY
                                       if m.id.startswith("delivery."))
#: The values whose items have no discard-on-fail step: every document sent carries them.
REQUIRED: frozenset[str] = frozenset(m.id for m in ALL if m.id not in OPTIONAL)
#: A listing and a run this close together are one moment: one document.
SAME_MOMENT_S = 1.0


@dataclass
class Measurement:
    """One collection: the values by metric id and when they were taken (``clock``: the
    listing's time, for the queue values and growth; ``log_clock``: the run's, for the values
    read from the mail log)."""

    clock: float
    values: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    log_clock: float | None = None

    def document(self) -> dict[str, Any]:
        return build(self.values, self.errors)

    def text(self) -> str:
        return _text(self.document())

    def stamped(self) -> list[tuple[float, str]]:
        """The document(s) for the master item, each with the time its values describe. A
        listing reused from another run (``--listing-max-age``) is older than this run's log
        values: then the queue values go at the listing's time and the log values in a second
        document at the run's (a value carries one clock, and its dependent items take it)."""
        log = {k: v for k, v in self.values.items() if k in LOG_VALUES}
        if self.log_clock is None or not log or self.log_clock - self.clock < SAME_MOMENT_S:
            return [(self.clock, self.text())]
        required = {k: v for k, v in self.values.items() if k in REQUIRED}
        queue = {k: v for k, v in self.values.items() if k not in LOG_VALUES}
        return [(self.clock, _text(build(queue, self.errors))),
                (self.log_clock, _text(build({**log, **required}, self.errors)))]


def _text(doc: dict[str, Any]) -> str:
    return json.dumps(doc, separators=(",", ":"), sort_keys=False)


def build(values: dict[str, Any], errors: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """The document: each metric present in ``values`` at its registry path."""
    unknown = set(values) - set(BY_ID)
    if unknown:
        raise ValueError(f"not in the registry: {sorted(unknown)}")
    doc: dict[str, Any] = {}
    for m in ALL:
        if m.id == "meta.error":
            metrics.set_path(doc, m.path, "; ".join(errors))
        elif m.id in values and values[m.id] is not None:
            metrics.set_path(doc, m.path, values[m.id])
    return doc


def snapshot_values(snap: QueueSnapshot) -> dict[str, Any]:
    values: dict[str, Any] = dict(metrics.queue_values(snap))
    values["meta.listing"] = LISTING.get(snap.source, 0)
    values["meta.malformed"] = snap.malformed
    return values


def delivery_values(stats: deliveries.DeliveryStats) -> dict[str, Any]:
    """Registry values of the delivery counts and rates."""
    out: dict[str, Any] = {}
    for name in DELIVERY_FIELDS:
        value = getattr(stats, name)
        mid = f"delivery.count.{name}" if name in metrics.DELIVERY_COUNTS else f"delivery.{name}"
        out[mid] = round(float(value), 4) if "rate" in name else int(value)
    return out


# -- the shared measurements ------------------------------------------------------------------

def delivery_stats(opts: argparse.Namespace, state_dir: str, now: float,
                   deadline: Deadline) -> deliveries.DeliveryStats:
    """The delivery counts (the same state file as check_postfix_bounce_rate for the same log,
    syslog name and window)."""
    return deliveries.measure_deliveries(
        log_file=opts.log_file, journal=opts.journal, syslog_name=opts.syslog_name,
        state_dir=state_dir, window=opts.bounce_window, now=now,
        timeout=deadline.child_timeout())


def _growth(result: Measurement, state_dir: str, opts: argparse.Namespace,
            snap: QueueSnapshot, deadline: Deadline, clock: Callable[[], float]) -> None:
    try:
        rate = growth.exposed_rate(state_dir, opts.config_dir, snap.stats("deferred").messages,
                                   snap.now, clock, opts.growth_window, deadline)
    except MonitorError as exc:
        rate = None
        result.errors.append(f"growth: {exc}")
    result.values["meta.growth_ready"] = 0 if rate is None else 1
    if rate is not None:
        result.values["deferred.growth"] = rate


def measure(opts: argparse.Namespace, clock=time.time,
            deadline: Deadline | None = None) -> Measurement:
    """Collect everything the checks measure. The queue listing is required (its failure is a
    MonitorError); a failing growth or delivery measurement is recorded in ``$.meta.error``
    and its values are left out. ``deadline``: the run's, when it measures more than once."""
    started = time.monotonic()
    deadline = deadline or Deadline(opts.timeout)
    now = clock()
    snap = listing.for_run(opts, deadline, now, clock)
    # stamped with the listing's time: a listing reused from another poller (up to
    # --listing-max-age old) is history at that time, not a fresh value at this run's; the
    # log's values are this run's (Measurement.stamped)
    if snap.cut:
        result = Measurement(clock=snap.now, values={"meta.cut_messages":
                                                      snap.stats("total").messages},
                             log_clock=now)
        result.errors.append(listing.cut_error(snap, "queue values left out"))
    else:
        result = Measurement(clock=snap.now, values=snapshot_values(snap), log_clock=now)
    result.errors.extend(snap.warnings)
    state_dir = StateDir(opts.state_dir).path
    if not snap.cut:                     # a lower bound is never a growth sample
        _growth(result, state_dir, opts, snap, deadline, clock)
    stats: deliveries.DeliveryStats | None
    try:
        stats = delivery_stats(opts, state_dir, now, deadline)
    except MonitorError as exc:
        stats = None
        result.errors.append(f"deliveries: {exc}")
    if stats is not None:
        result.values.update(delivery_values(stats))
        if stats.stopped_at_deadline:     # the counts are of the part read: say so
            result.errors.append("deliveries: log read in part, stopped at the deadline (-t): "
                                 "the counts are of the part read, the rest is read next run")
    result.values["meta.version"] = __version__
    result.values["meta.collect_seconds"] = round(time.monotonic() - started, 4)
    return result
