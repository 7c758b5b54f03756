"""check_postfix_deferred_growth: how fast the deferred queue grows, in messages per hour.

The measurement (samples, window rule, state) is ``postfix_queue_monitor.growth``, shared with
the Zabbix sender; this module is the Nagios front end: options, perfdata and status line.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence

import nagiosplugin

from .. import check_registry, metrics
from ..cli import (
    ErrorContext,
    check_parser,
    entry_point,
    fmt_number,
    judged_context,
    parse_duration,
    run,
)
from ..errors import MonitorError
from ..growth import Growth, measure_growth
from .common import Clock, QueueResource, QueueSummary, broken, worst

CHECK = check_registry.BY_KEY["growth"]
#: The metric -w/-c judge.
JUDGED = "deferred.growth"


def parser() -> argparse.ArgumentParser:
    p = check_parser(CHECK.program, CHECK.description, plain_is_upper=True, state=True,
                     timeout=CHECK.timeout)
    p.add_argument("--window", metavar="DURATION", type=parse_duration, default=CHECK.window,
                   help="compare against the oldest sample this far back (default "
                        f"{check_registry.duration_text(CHECK.window)})")
    return p


class DeferredGrowth(QueueResource):
    growth: Growth | None = None

    def measure(self) -> Iterator[nagiosplugin.Metric]:
        snap = self.read()
        deferred = snap.stats("deferred").messages
        self.growth = measure_growth(self.args.state_dir, self.args.config_dir, deferred,
                                     snap.now, self.clock, self.args.window,
                                     lock_deadline=self.deadline.lock_timeout(1 / 3),
                                     record=not snap.cut)
        if snap.cut and self.growth.rate is None:
            raise MonitorError(f"queue listing cut after {snap.elapsed or 0:.1f} s at "
                               f"{deferred:,} deferred and no complete sample to compare with "
                               f"({self.growth.note}): growth not judged (raise -t, or share "
                               f"one listing with --listing-max-age)")
        values = {"queue.size.deferred": deferred, JUDGED: None if self.growth.rate is None
                  else round(self.growth.rate, 2)}
        for m in metrics.for_check(CHECK.key):
            if values[m.id] is not None:           # no rate before the baseline
                yield nagiosplugin.Metric(m.label, values[m.id], m.uom, min=m.min,
                                          context=m.label)


class Summary(QueueSummary):
    resource: DeferredGrowth

    def describe_ok(self, results: nagiosplugin.Results) -> str:
        g = self.resource.growth
        deferred = results["queue_deferred"].metric.value
        if self.cut() and g is not None and g.rate is not None:
            return (f"deferred queue at least {_signed(g.rate)}/h, at least {deferred:,} "
                    f"deferred ({self.cut_note()})")
        if g is None or g.rate is None:
            return f"{deferred} deferred, {g.note if g else 'waiting for baseline'}"
        text = f"deferred queue {_signed(g.rate)}/h, {deferred} deferred"
        return f"{text} ({g.note})" if g.note else text

    def describe_problem(self, results: nagiosplugin.Results) -> str:
        r = worst(results)[0]
        deferred = results["queue_deferred"].metric.value
        if self.cut():
            return f"{self.bound_problem(r)}, at least {deferred:,} deferred"
        return f"deferred queue {_signed(r.metric.value)}/h ({broken(r)}), {deferred} deferred"

    def bound_text(self, metric: nagiosplugin.Metric) -> str:
        return f"deferred queue at least {_signed(metric.value)}/h"


def _signed(rate: float) -> str:
    return ("+" if rate > 0 else "") + fmt_number(round(rate, 1))


def main(argv: Sequence[str] | None = None, *, clock: Clock | None = None) -> None:
    args = parser().parse_args(argv)
    resource = DeferredGrowth(args, **({"clock": clock} if clock else {}))
    contexts = [judged_context(m.label, args, m.id == JUDGED) for m in metrics.for_check(CHECK.key)]
    check = nagiosplugin.Check(resource, *contexts, ErrorContext(), Summary(resource))
    check.name = CHECK.status
    run(check, args)


main = entry_point(nagiosplugin.guarded(verbose=0)(main))
