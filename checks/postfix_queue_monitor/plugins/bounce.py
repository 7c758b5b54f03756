"""check_postfix_bounce_rate: the share of recipients that bounced (or expired) over a sliding
window, from the mail log or the journal, judged in percent."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Optional

import nagiosplugin

from .. import check_registry, deliveries, metrics
from ..cli import (
    ErrorContext,
    GuardedResource,
    check_parser,
    entry_point,
    error_hint,
    fmt_age,
    fmt_number,
    parse_duration,
    run,
    violation,
    whole_number,
)
from ..deadline import Deadline

CHECK = check_registry.BY_KEY["bounce"]
Clock = Callable[[], float]


def parser() -> argparse.ArgumentParser:
    # queue=False: --postqueue, --config-dir, --listing-max-age accepted (one command line
    # serves every check) but out of --help: this check reads the log, never the queue
    p = check_parser(CHECK.program, CHECK.description, queue=False, state=True,
                     timeout=CHECK.timeout)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--log-file", metavar="PATH", default=None,
                     help="the mail log (default: the first of "
                          + ", ".join(deliveries.DEFAULT_LOGS) + " that exists, else the journal)")
    src.add_argument("--journal", action="store_true", help="read journald instead of a log file")
    p.add_argument("--syslog-name", metavar="NAME", default=None,
                   help="only this Postfix instance's lines (NAME/...); default: every name "
                        "starting with postfix")
    p.add_argument("--window", metavar="DURATION", type=parse_duration, default=CHECK.window,
                   help=f"sliding window (default {check_registry.duration_text(CHECK.window)}; "
                        "one-minute resolution)")
    p.add_argument("--min-deliveries", metavar="N", type=whole_number(0),
                   default=CHECK.min_deliveries,
                   help="below this many sent+bounced+expired recipients in the window: OK, "
                        f"too few to judge (default {CHECK.min_deliveries})")
    return p


class BounceRate(GuardedResource):
    def __init__(self, args: argparse.Namespace, clock: Clock = time.time):
        self.args = args
        self.clock = clock
        self.stats: Optional[deliveries.DeliveryStats] = None

    def measure(self) -> Iterator[nagiosplugin.Metric]:
        a = self.args
        # leave a second for nagiosplugin's own alarm to name the hung part
        budget = max(0.5, Deadline(a.timeout).child_timeout())
        s = self.stats = deliveries.measure_deliveries(
            a.log_file, a.journal, a.syslog_name, a.window, a.state_dir, self.clock(), budget)
        values = {"bounce_rate": s.bounce_rate, "deferral_rate": s.deferral_rate,
                  "delivery_sent": s.sent, "delivery_bounced": s.bounced,
                  "delivery_expired": s.expired, "delivery_deferred": s.deferred}
        for m in metrics.for_check(CHECK.key):
            yield nagiosplugin.Metric(m.label, values[m.label], m.uom, min=m.min, max=m.max,
                                      context=m.label)

    def judged(self) -> bool:
        return self.stats is not None and self.stats.deliveries >= self.args.min_deliveries


class RateContext(nagiosplugin.ScalarContext):
    """bounce_rate: judged by -w/-c only with enough deliveries in the window."""

    def __init__(self, name: str, args: argparse.Namespace, resource: BounceRate):
        super().__init__(name, args.warning, args.critical)
        self.resource = resource

    def evaluate(self, metric: nagiosplugin.Metric, resource: object) -> nagiosplugin.Result:
        s = self.resource.stats
        if s is not None and s.unreadable_status and (self.warning or self.critical):
            undecided = self._undecided(s)
            if undecided:
                return self.result_cls(nagiosplugin.Unknown, undecided, metric)
        if not self.resource.judged():
            return self.result_cls(nagiosplugin.Ok, None, metric)
        return super().evaluate(metric, resource)

    def _state(self, rate: float, deliveries: int) -> nagiosplugin.state.ServiceState:
        if deliveries < self.resource.args.min_deliveries:
            return nagiosplugin.Ok
        # the library's own judgement of a value (ScalarContext's, which evaluate() overrides)
        return nagiosplugin.ScalarContext.evaluate(
            self, nagiosplugin.Metric(self.name, rate), None).state

    def _undecided(self, s: deliveries.DeliveryStats) -> str | None:
        """Status lines whose timestamp is not understood may each be sent, bounced or
        deferred: their true bounce rate lies between all of them sent and all bounced. When
        the state is not the same over that whole span, the lines read cannot decide it
        (UNKNOWN, naming the lines), however small their share."""
        lost, bad, n = s.unreadable_status, s.bounced + s.expired, s.deliveries
        lo, hi = 100.0 * bad / (n + lost), 100.0 * (bad + lost) / (n + lost)
        points = [lo, hi] + [e for r in (self.warning, self.critical) if r
                             for e in (r.start, r.end) if lo < e < hi]
        states = {self._state(x, n + lost) for x in points}
        if n < self.resource.args.min_deliveries <= n + lost:
            states.add(nagiosplugin.Ok)              # too few to judge, or not
        if len(states) == 1:
            return None
        return (f"{lost} delivery status line(s) with a timestamp format this check cannot "
                f"read could change the result (bounce rate between {_pct(round(lo, 1))} and "
                f"{_pct(round(hi, 1))}), e.g. '{s.unreadable_sample[:60]}…': see "
                f"docs/log-formats.md")


def _pct(value: float) -> str:
    return f"{value:.1f}%" if value != int(value) else f"{int(value)}%"


class Summary(nagiosplugin.Summary):
    def __init__(self, resource: BounceRate):
        self.resource = resource

    @staticmethod
    def _part(s: deliveries.DeliveryStats) -> str:
        """Counts of a log read in part are of the window so far, not of all of it: the first
        line says so (the rest is read next run)."""
        return ("; log read in part, stopped at the deadline (-t): the rest next run"
                if s.stopped_at_deadline else "")

    def _counts(self, s: deliveries.DeliveryStats) -> str:
        return (f"{s.bounced + s.expired} of {s.deliveries} recipients in "
                f"{fmt_age(s.window)}{self._part(s)}")

    def ok(self, results: nagiosplugin.Results) -> str:
        s = self.resource.stats
        assert s is not None
        if not self.resource.judged():
            return (f"too few deliveries to judge ({s.deliveries} < "
                    f"{self.resource.args.min_deliveries} in {fmt_age(s.window)}; "
                    f"{s.deferred} deferred{self._part(s)})")
        return (f"bounce rate {_pct(s.bounce_rate)} ({self._counts(s)}), deferral rate "
                f"{_pct(s.deferral_rate)}")

    def problem(self, results: nagiosplugin.Results) -> str:
        hint = error_hint(results)
        if hint is not None:
            return hint
        if results["bounce_rate"].state == nagiosplugin.Unknown:   # RateContext._undecided
            return str(results["bounce_rate"].hint)
        s = self.resource.stats
        assert s is not None
        r = results["bounce_rate"]
        rng = r.context.critical if r.state == nagiosplugin.Critical else r.context.warning
        text = (f"bounce rate {_pct(s.bounce_rate)} ({violation(s.bounce_rate, rng, fmt_number)}"
                f"; {self._counts(s)})")
        return f"{text}: {cause(s)}"

    def verbose(self, results: nagiosplugin.Results) -> list[str]:
        s = self.resource.stats
        if s is None:
            return []
        out = [f"window {fmt_age(s.window)} from {s.source}: sent {s.sent}, bounced {s.bounced}, "
               f"expired {s.expired}, deferred {s.deferred}; {s.lines_read} new line(s) read"
               + (" (first run: the window only)" if s.first_run else "")]
        if s.bounce_classes:
            out.append("bounces by reason: " + ", ".join(
                f"{c} {n}" for c, n in s.bounce_classes.most_common()))
            for c, _ in s.bounce_classes.most_common(3):
                if c in s.bounce_texts:
                    out.append(f"  {c}: {s.bounce_texts[c]}")
        if s.deferral_classes:
            out.append("deferrals by reason: " + ", ".join(
                f"{c} {n}" for c, n in s.deferral_classes.most_common()))
        out.extend(s.notes)
        note = s.format_note()
        if note:
            out.append(note)
        if s.unmatched:
            out.append(f"{s.unmatched} Postfix line(s) matched no pattern, e.g.:")
            out.extend(f"  {line}" for line in s.unmatched_samples)
        return out


def cause(s: deliveries.DeliveryStats) -> str:
    """``top reason recipient_unknown (12 of 15)`` or ``4 expired in the queue``."""
    top = s.top_bounce_class()
    bad = s.bounced + s.expired
    if top and top[1] >= s.expired:
        return f"top reason {top[0]} ({top[1]} of {bad})"
    if s.expired:
        return f"{s.expired} of {bad} expired in the queue (maximal_queue_lifetime)"
    return "no bounce reason logged"


def main(argv: Sequence[str] | None = None, *, clock: Clock | None = None) -> None:
    args = parser().parse_args(argv)
    resource = BounceRate(args, **({"clock": clock} if clock else {}))
    contexts: list[nagiosplugin.Context] = []
    for m in metrics.for_check(CHECK.key):
        if m.label == "bounce_rate":
            contexts.append(RateContext(m.label, args, resource))
        else:
            contexts.append(nagiosplugin.ScalarContext(m.label))
    check = nagiosplugin.Check(resource, *contexts, ErrorContext(), Summary(resource))
    check.name = CHECK.status
    run(check, args)


main = entry_point(nagiosplugin.guarded(verbose=0)(main))
