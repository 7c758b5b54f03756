"""What a lower bound proves against a Nagios range: the judging of a cut queue listing.

When the deadline cuts a listing, every count, byte total and oldest age read so far is a lower
bound ``v`` of the true value ``x`` (x ≥ v). A range proves a state only when every x ≥ v gives
the same answer: ``-c 2000`` with 412,000 read is violated whatever the rest holds; ``-c 2000``
with 1,500 read, ``@10:20`` or ``10:`` below 10 could go either way, and stay UNKNOWN.

nagiosplugin's Range decides each value (``match``); it has no notion of a half-line of values,
so the interval test below is ours. The overall state of a cut run is the worst *proven* state
when that is WARNING or CRITICAL (the true state is at least that), OK when every range is
proven OK, else UNKNOWN: see :class:`LowerBoundResults`.
"""

from __future__ import annotations

import math

import nagiosplugin
from nagiosplugin.state import Critical, Ok, Unknown, Warn


def proves(rng: nagiosplugin.Range, lower: float) -> bool | None:
    """For every x ≥ ``lower``: True when all violate ``rng``, False when none does, None when
    it depends on the unread rest."""
    start, end = rng.start, rng.end
    if not rng.invert:                      # OK inside start..end
        if lower > end:
            return True
        if start <= lower and end == math.inf:
            return False
        return None
    if lower > end:                         # @start:end: alert inside start..end
        return False
    if end == math.inf and lower >= start:
        return True
    return None


class Undecided(nagiosplugin.Result):
    """A cut listing's value that proves nothing against its ranges (state UNKNOWN)."""


def evaluate(ctx: nagiosplugin.ScalarContext, metric: nagiosplugin.Metric) -> nagiosplugin.Result:
    """ScalarContext.evaluate for a lower bound: a state only where every larger value agrees."""
    crit = proves(ctx.critical, metric.value)
    if crit:
        return nagiosplugin.Result(Critical, ctx.critical.violation, metric)
    warn = proves(ctx.warning, metric.value)
    if warn:
        # at least WARNING whatever the rest holds (it may yet be CRITICAL: the line says
        # "at least", and the state is the proven one)
        return nagiosplugin.Result(Warn, ctx.warning.violation, metric)
    if crit is False and warn is False:
        return nagiosplugin.Result(Ok, None, metric)
    return Undecided(Unknown, "the unread rest of the listing decides", metric)


class LowerBoundResults(nagiosplugin.Results):
    """Results whose worst state lets a proven WARNING/CRITICAL win over an undecided value.

    nagiosplugin takes the highest state code, where UNKNOWN (3) beats CRITICAL (2): one queue
    proven CRITICAL and another undecided would print UNKNOWN, although CRITICAL is proven. An
    UNKNOWN that is not :class:`Undecided` (a measuring error) still wins."""

    @property
    def most_significant_state(self) -> nagiosplugin.state.ServiceState:
        decided = [r.state for r in self if not isinstance(r, Undecided)]
        top = max(decided, default=Ok)
        if top == Unknown or top in (Warn, Critical) or len(decided) == len(self):
            return top
        return Unknown


def undecided(results: nagiosplugin.Results) -> list[nagiosplugin.Result]:
    return [r for r in results if isinstance(r, Undecided)]


def with_commas(value: float) -> str:
    """412000 → ``412,000`` (a lower bound's figure, as a reader scans it)."""
    return f"{value:,.0f}" if value == int(value) else f"{value:,.1f}"
