"""prometheus_client metric families from a Collection, and the Collector that measures on
every collect (a scrape of ``serve``, a run of ``textfile``).

Names: the registry's ``prom`` families (postfix_exporter's ``postfix_showq_queue_depth`` and
ours under ``postfix_queue_*``), plus what only Prometheus has, defined here: postfix_exporter's
``postfix_showq_message_age_seconds`` / ``postfix_showq_message_size_bytes`` histograms and
``postfix_up``, the ``postfix_delivery_recipients_total`` counters, the top deferred
destinations and the collection's own health (``postfix_queue_monitor_*``).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Optional

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from .. import __version__, metrics
from ..errors import MonitorError
from ..queue import QUEUES, HistogramStats
from . import collect

UP = "postfix_up"
AGE_HISTOGRAM = "postfix_showq_message_age_seconds"
SIZE_HISTOGRAM = "postfix_showq_message_size_bytes"
DELIVERIES = "postfix_delivery_recipients"          # exposed as postfix_delivery_recipients_total
DESTINATIONS = "postfix_queue_deferred_destination_recipients"
ERRORS = "postfix_queue_monitor_errors"
DURATION = "postfix_queue_monitor_collect_duration_seconds"
LAST_RUN = "postfix_queue_monitor_last_run_timestamp_seconds"
LISTED = "postfix_queue_monitor_listing_timestamp_seconds"
MALFORMED = "postfix_queue_monitor_listing_malformed_lines"
LOWER_BOUND = "postfix_queue_messages_lower_bound"
INFO = "postfix_queue_monitor_info"

#: Help of the registry's families (one text per family; the registry names each series).
FAMILY_HELP = {
    metrics.PROM_QUEUE_DEPTH: "Number of messages in Postfix's message queue",
    metrics.PROM_QUEUE_BYTES: "Total size of the messages in each Postfix queue, in bytes",
    metrics.PROM_OLDEST_AGE: "Age of the oldest message in each Postfix queue, in seconds "
                             "(0: empty)",
    metrics.PROM_GROWTH: "Deferred queue growth over the growth window, messages per hour",
    metrics.PROM_REASON: "Deferred recipients by reason class",
}


def registry_families(values: dict[str, float]) -> list[GaugeMetricFamily]:
    """One gauge family per registry ``prom`` name, a series per metric present in values."""
    families: dict[str, GaugeMetricFamily] = {}
    for m in metrics.REGISTRY:
        if m.prom is None or values.get(m.id) is None:
            continue
        fam = families.get(m.prom)
        if fam is None:
            fam = families[m.prom] = GaugeMetricFamily(
                m.prom, FAMILY_HELP[m.prom], labels=[k for k, _ in m.prom_labels])
        fam.add_metric([v for _, v in m.prom_labels], values[m.id])
    return list(families.values())


def _buckets(bounds: tuple[float, ...], counts: list[int]) -> list[tuple[str, float]]:
    """Cumulative (le, count) pairs, +Inf last, from per-bucket counts."""
    out: list[tuple[str, float]] = []
    running = 0
    for bound, n in zip((*bounds, float("inf")), counts):
        running += n
        out.append((floatToGoString(bound), running))
    return out


def histogram_families(queues: Mapping[str, object]) -> list[HistogramMetricFamily]:
    """postfix_exporter's per-queue histograms, every queue present (zero-filled)."""
    age = HistogramMetricFamily(AGE_HISTOGRAM, "Age of messages in Postfix's message queue, "
                                "in seconds", labels=["queue"])
    size = HistogramMetricFamily(SIZE_HISTOGRAM, "Size of messages in Postfix's message queue, "
                                 "in bytes", labels=["queue"])
    for q in QUEUES:
        stats = queues[q]
        if not isinstance(stats, HistogramStats):
            raise TypeError(f"queue {q}: the listing was read without histograms")
        age.add_metric([q], _buckets(stats.age_bounds, stats.ages), stats.age_sum)
        size.add_metric([q], _buckets(stats.size_bounds, stats.sizes), float(stats.bytes))
    return [age, size]


def families(c: Optional[collect.Collection], problem: Optional[str], path: str,
             top: int, lower_bound: Optional[int] = None) -> list[Metric]:
    """Everything one collect exposes; ``c`` None (with ``problem``): only the health series,
    and the lower bound of a cut listing."""
    up = GaugeMetricFamily(UP, "Whether scraping Postfix's metrics was successful.",
                           labels=["path"])
    up.add_metric([path], 0 if c is None else 1)
    info = GaugeMetricFamily(INFO, "postfix-queue-monitor's version", labels=["version"])
    info.add_metric([__version__], 1)
    errors = GaugeMetricFamily(ERRORS, "Parts of the last collection that failed (0: none; "
                               "the reason is in the exporter's log or the command's output)")
    errors.add_metric([], 1 if c is None else len(c.errors))
    out: list[Metric] = [up, info, errors]
    if lower_bound is not None:
        bound = GaugeMetricFamily(LOWER_BOUND, "At least this many messages queued: the listing "
                                  "was cut at the timeout (no other queue series then)")
        bound.add_metric([], lower_bound)
        out.append(bound)
    if c is None:
        return out
    out += registry_families(c.values)
    out += histogram_families(c.snap.queues)
    if top > 0:
        dest = GaugeMetricFamily(DESTINATIONS, f"Deferred recipients of the {top} destination "
                                 f"domains with the most", labels=["domain"])
        for domain, n in c.snap.deferred_domains.most_common(top):
            dest.add_metric([domain], n)
        out.append(dest)
    if c.totals is not None:
        total = CounterMetricFamily(DELIVERIES, "Recipients by delivery outcome over every "
                                    "delivery agent, since the counters' first run",
                                    labels=["status"])
        for status in metrics.DELIVERY_COUNTS:
            total.add_metric([status], c.totals[status])
        out.append(total)
    malformed = GaugeMetricFamily(MALFORMED, "Queue listing lines that did not parse")
    malformed.add_metric([], c.snap.malformed)
    duration = GaugeMetricFamily(DURATION, "Time the last collection took, in seconds")
    duration.add_metric([], round(c.seconds, 4))
    last = GaugeMetricFamily(LAST_RUN, "When the last collection ran, Unix time")
    last.add_metric([], round(c.now, 3))
    listed = GaugeMetricFamily(LISTED, "When the queue listing the values come from was taken, "
                               "Unix time: by this collection, or earlier by another poller "
                               "(--listing-max-age); every queue value and age is as of then")
    listed.add_metric([], round(c.snap.now, 3))
    return [*out, malformed, duration, last, listed]


def source_path(opts: argparse.Namespace) -> str:
    """postfix_up's ``path`` label: postfix_exporter puts its showq socket there; ours is the
    postqueue command that lists the queue."""
    from ..proc import postfix_program  # noqa: PLC0415

    cmd = opts.postqueue or postfix_program("postqueue")
    return f"{cmd} -c {opts.config_dir}" if opts.config_dir else cmd


class PostfixCollector(Collector):
    """Measures on every collect; concurrent collects share one measurement (single flight),
    so two scrapes at once list the queue once."""

    def __init__(self, opts: argparse.Namespace,
                 measure: Callable[[argparse.Namespace], collect.Collection] = collect.measure,
                 log: Callable[[str], None] | None = None):
        self.opts = opts
        self.measure = measure
        self.log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self.last_problem: Optional[str] = None
        self.last: Optional[collect.Collection] = None
        self.lower_bound: Optional[int] = None
        self._lock = threading.Lock()
        self._done_at = 0.0

    def run(self) -> tuple[Optional[collect.Collection], Optional[str]]:
        asked = time.monotonic()
        with self._lock:
            if self._done_at < asked:          # nobody finished a measurement while we waited
                self.lower_bound = None
                try:
                    self.last, self.last_problem = self.measure(self.opts), None
                except MonitorError as exc:
                    self.last, self.last_problem = None, str(exc)
                    if isinstance(exc, collect.ListingCut):
                        self.lower_bound = exc.messages
                except Exception as exc:  # noqa: BLE001 - postfix_up 0 and a line, no traceback
                    self.last = None
                    self.last_problem = (f"internal error: {type(exc).__name__}: "
                                         f"{exc}".splitlines()[0][:300])
                self._done_at = time.monotonic()
                if self.last_problem:
                    self.log(f"measuring failed: {self.last_problem}")
                elif self.last is not None and self.last.errors:
                    self.log(f"partly measured: {'; '.join(self.last.errors)}")
            return self.last, self.last_problem

    def collect(self) -> Iterable[Metric]:
        c, problem = self.run()
        return iter(families(c, problem, source_path(self.opts), self.opts.top_destinations,
                             self.lower_bound))

    def describe(self) -> Iterator[Metric]:
        # nothing: registering must not measure (prometheus_client calls collect() otherwise)
        return iter(())
