"""What the three queue checks share: the listing as a Resource, and the Summary skeleton."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import nagiosplugin

from .. import bounds, diagnosis, listing
from ..cli import GuardedResource, error_hint, violation
from ..deadline import Deadline
from ..queue import QUEUES, QueueSnapshot

Clock = Callable[[], float]


def add_queue_option(parser: argparse.ArgumentParser, default_help: str) -> None:
    parser.add_argument("--queue", metavar="NAME", action="append", choices=(*QUEUES, "total"),
                        help=f"queue(s) to judge, repeatable ({default_help})")


class QueueResource(GuardedResource):
    """Lists the queue once; subclasses turn the snapshot into metrics."""

    def __init__(self, args: argparse.Namespace, clock: Clock = time.time):
        self.args = args
        self.clock = clock
        self.snapshot: QueueSnapshot | None = None
        #: the run's one time budget: the listing and then the growth lock share what is left
        self.deadline = Deadline(args.timeout)

    def read(self) -> QueueSnapshot:
        self.snapshot = listing.for_run(self.args, self.deadline, self.clock(), self.clock)
        return self.snapshot


class QueueSummary(nagiosplugin.Summary):
    """First line: what is wrong and why; -v: reasons, domains, parse notes."""

    def __init__(self, resource: QueueResource):
        self.resource = resource

    def problem(self, results: nagiosplugin.Results) -> str:
        hint = error_hint(results)
        if hint is not None:
            return hint
        if self.cut() and results.most_significant_state == nagiosplugin.Unknown:
            return self.undecided(results)
        text = self.describe_problem(results)
        snap = self.resource.snapshot
        why = diagnosis.cause(snap) if snap and self.about_deferred(results) else ""
        return self.with_warning(f"{text}: {why}" if why else text)

    def with_warning(self, text: str) -> str:
        """The listing's first warning (postqueue read the queue directly: Postfix is down) on
        the first line of every state: on a problem it matters most."""
        snap = self.resource.snapshot
        if snap is not None and snap.warnings:
            return f"{text} ({snap.warnings[0]})"
        return text

    def describe_problem(self, results: nagiosplugin.Results) -> str:  # pragma: no cover
        raise NotImplementedError

    # -- a listing cut by the deadline: lower bounds ------------------------------------------
    def cut(self) -> bool:
        snap = self.resource.snapshot
        return snap is not None and snap.cut

    def cut_note(self) -> str:
        snap = self.resource.snapshot
        assert snap is not None
        return f"listing cut after {snap.elapsed or 0:.1f} s"

    def bound_text(self, metric: nagiosplugin.Metric) -> str:  # pragma: no cover
        """The metric as a lower bound, as the first line says it ("at least 412,000 …")."""
        raise NotImplementedError

    def bound_problem(self, r: nagiosplugin.Result, fmt: Callable[[float], str] | None = None
                      ) -> str:
        """A cut listing's proven problem: ``at least 412,000 messages queued (> 2000; listing
        cut after 8.0 s)``."""
        return f"{self.bound_text(r.metric)} ({broken(r, fmt)}; {self.cut_note()})"

    def undecided(self, results: nagiosplugin.Results) -> str:
        """Why a cut listing gives UNKNOWN: how far it got, and what it could not decide."""
        snap = self.resource.snapshot
        assert snap is not None
        parts = [f"{self.bound_text(r.metric)} decides nothing against {r.context.ranges()}"
                 for r in bounds.undecided(results)]
        return (f"queue listing cut after {snap.elapsed or 0:.1f} s (postqueue killed at the "
                f"deadline) at {bounds.with_commas(snap.stats('total').messages)} messages: "
                f"{', '.join(parts)} (raise -t, or let the pollers share one listing with "
                f"--listing-max-age)")

    def about_deferred(self, results: nagiosplugin.Results) -> bool:
        """Whether the problem concerns deferred mail: the cause names deferral reasons, which
        say nothing about, say, a full hold queue."""
        return True

    def ok(self, results: nagiosplugin.Results) -> str:
        return self.with_warning(self.describe_ok(results))

    def describe_ok(self, results: nagiosplugin.Results) -> str:  # pragma: no cover
        raise NotImplementedError

    def verbose(self, results: nagiosplugin.Results) -> list[str]:
        snap = self.resource.snapshot
        if snap is None:
            return []
        lines = diagnosis.listing_notes(snap) + diagnosis.details(snap)
        if self.resource.args.verbose >= 2:     # -vv: an example text and what to do
            lines += diagnosis.advice(snap)
        return lines


def broken(r: nagiosplugin.Result, fmt: Callable[[float], str] | None = None) -> str:
    """How ``r``'s value breaks the range of its state (critical, else warning): ``> 2000``."""
    rng = r.context.critical if r.state == nagiosplugin.Critical else r.context.warning
    return violation(r.metric.value, rng, fmt)


def worst(results: nagiosplugin.Results) -> list[nagiosplugin.Result]:
    """Non-OK results, worst first (a cut listing's undecided values are not problems)."""
    bad = [r for r in results
           if r.state != nagiosplugin.Ok and not isinstance(r, bounds.Undecided)]
    return sorted(bad, key=lambda r: -r.state.code)
