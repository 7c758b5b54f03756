"""check_postfix_deferred_growth: how fast the deferred queue grows, in messages per hour.

growth = (deferred_now − deferred_ref) / (t_now − t_ref) × 3600, where ref is the oldest stored
sample inside the window, or, when none is inside it, the newest older one (CONTRACT.md).
Samples live per Postfix instance in the state dir; times keep sub-second resolution.
"""

from __future__ import annotations

import argparse
from collections import namedtuple
from collections.abc import Iterator, Sequence

import nagiosplugin

from ..cli import (
    ErrorContext,
    check_parser,
    fmt_number,
    judged_context,
    parse_duration,
    run,
    violation,
)
from ..errors import MonitorError
from ..state import StateDir, instance_key
from .common import Clock, QueueResource, QueueSummary, worst

NAME = "POSTFIX GROWTH"
KIND = "growth"
MAX_SAMPLES = 5000
Sample = tuple[float, int]


#: rate: messages per hour (None: no baseline yet); ref: the reference sample; note: why there
#: is no rate, or what was repaired. (collections' namedtuple: no dataclasses/typing import.)
Growth = namedtuple("Growth", "rate ref note", defaults=("",))


def compute_growth(samples: list[Sample], now: float, deferred: int, window: float) -> Growth:
    """The growth against the reference sample of the contract's window rule (pure).

    Samples from the future (the clock went backwards) cannot be a reference: they are ignored
    here and dropped by ``prune``.
    """
    past = [s for s in samples if s[0] < now]
    dropped = len(samples) - len(past)
    if not past:
        note = ("clock went backwards: new baseline" if dropped else "waiting for baseline")
        return Growth(None, None, note)
    start = now - window
    inside = [s for s in past if s[0] >= start]
    ref = min(inside) if inside else max(past)
    rate = (deferred - ref[1]) / (now - ref[0]) * 3600.0
    note = f"clock went backwards: {dropped} newer sample(s) dropped" if dropped else ""
    return Growth(rate, ref, note)


def prune(samples: list[Sample], now: float, window: float) -> list[Sample]:
    """Keep what a later run may need: samples inside the window plus the newest older one."""
    past = sorted(s for s in samples if s[0] <= now)
    start = now - window
    older = [s for s in past if s[0] < start]
    kept = ([older[-1]] if older else []) + [s for s in past if s[0] >= start]
    return kept[-MAX_SAMPLES:]


def _valid(sample: object) -> bool:
    return (isinstance(sample, list) and len(sample) == 2
            and isinstance(sample[0], (int, float)) and isinstance(sample[1], int))


def measure_growth(state_dir: str | None, config_dir: str | None, deferred: int, now: float,
                   window: float, lock_deadline: float = 3.0, record: bool = True) -> Growth:
    """Record this run's sample and return the growth (shared with the Zabbix sender).

    ``record=False`` (a cut listing, whose count is only a lower bound): the growth is computed
    against the stored samples, a lower bound itself, and nothing is stored."""
    name = f"growth-{instance_key(config_dir)}.json"
    with StateDir(state_dir).locked(name, lock_deadline) as sf:
        data = sf.read(KIND) or {}
        samples = [(float(s[0]), int(s[1])) for s in data.get("samples", []) if _valid(s)]
        growth = compute_growth(samples, now, deferred, window)
        if not record:
            return growth
        sf.write(KIND, {"samples": [list(s) for s in prune([*samples, (now, deferred)], now,
                                                             window)]})
    return growth


def parser() -> argparse.ArgumentParser:
    p = check_parser("check_postfix_deferred_growth",
                     "Growth of the Postfix deferred queue in messages per hour. A bare -w/-c N "
                     "means 'above N' (~:N): a shrinking queue is never a problem by itself.",
                     plain_is_upper=True, state=True)
    p.add_argument("--window", metavar="DURATION", type=parse_duration, default=900.0,
                   help="compare against the oldest sample this far back (default 15m)")
    return p


class DeferredGrowth(QueueResource):
    growth: Growth | None = None

    def measure(self) -> Iterator[nagiosplugin.Metric]:
        snap = self.read()
        deferred = snap.stats("deferred").messages
        self.growth = measure_growth(self.args.state_dir, self.args.config_dir, deferred,
                                     snap.now, self.args.window,
                                     lock_deadline=max(0.5, self.args.timeout / 3),
                                     record=not snap.cut)
        if snap.cut and self.growth.rate is None:
            raise MonitorError(f"queue listing cut after {snap.elapsed or 0:.1f} s at "
                               f"{deferred:,} deferred and no complete sample to compare with "
                               f"({self.growth.note}): growth not judged (raise -t, or share "
                               f"one listing with --listing-max-age)")
        if self.growth.rate is not None:
            yield nagiosplugin.Metric("deferred_growth_per_hour", round(self.growth.rate, 2),
                                      context="deferred_growth_per_hour")
        yield nagiosplugin.Metric("queue_deferred", deferred, min=0, context="queue_deferred")


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
        rng = r.context.critical if r.state == nagiosplugin.Critical else r.context.warning
        deferred = results["queue_deferred"].metric.value
        why = violation(r.metric.value, rng)
        if self.cut():
            return (f"{self.bound_text(r.metric)} ({why}; {self.cut_note()}), at least "
                    f"{deferred:,} deferred")
        return f"deferred queue {_signed(r.metric.value)}/h ({why}), {deferred} deferred"

    def bound_text(self, metric: nagiosplugin.Metric) -> str:
        return f"deferred queue at least {_signed(metric.value)}/h"


def _signed(rate: float) -> str:
    return ("+" if rate > 0 else "") + fmt_number(round(rate, 1))


def main(argv: Sequence[str] | None = None, *, clock: Clock | None = None) -> None:
    args = parser().parse_args(argv)
    resource = DeferredGrowth(args, **({"clock": clock} if clock else {}))
    contexts = [judged_context("deferred_growth_per_hour", args, True),
                judged_context("queue_deferred", args, False)]
    check = nagiosplugin.Check(resource, *contexts, ErrorContext(), Summary(resource))
    check.name = NAME
    run(check, args)


main = nagiosplugin.guarded(verbose=0)(main)
