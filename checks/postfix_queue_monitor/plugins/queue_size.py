"""check_postfix_queue: messages (and bytes) per queue, judged on the chosen queue counts."""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence

import nagiosplugin

from .. import check_registry, metrics
from ..bounds import with_commas
from ..cli import (
    ErrorContext,
    check_parser,
    entry_point,
    fmt_number,
    judged_context,
    run,
)
from ..queue import QUEUES
from .common import Clock, QueueResource, QueueSummary, add_queue_option, broken, worst

CHECK = check_registry.BY_KEY["queue"]


def parser() -> argparse.ArgumentParser:
    p = check_parser(CHECK.program, CHECK.description, timeout=CHECK.timeout)
    add_queue_option(p, "default: total")
    return p


def judged_queues(args: argparse.Namespace) -> list[str]:
    return list(dict.fromkeys(args.queue or ["total"]))


class QueueSize(QueueResource):
    def measure(self) -> Iterator[nagiosplugin.Metric]:
        values = metrics.queue_values(self.read())
        for m in metrics.for_check(CHECK.key):
            yield nagiosplugin.Metric(m.label, values[m.id], m.uom, min=m.min, context=m.label)


class Summary(QueueSummary):
    def describe_ok(self, results: nagiosplugin.Results) -> str:
        snap = self.resource.snapshot
        assert snap is not None
        total = snap.stats("total").messages
        if snap.cut:
            return f"at least {with_commas(total)} messages queued ({self.cut_note()})"
        if not total:
            return "queue empty"
        parts = ", ".join(f"{snap.queues[q].messages} {q}" for q in QUEUES
                          if snap.queues[q].messages)
        return f"{total} messages queued ({parts})"

    def about_deferred(self, results: nagiosplugin.Results) -> bool:
        return any(r.metric.name in ("queue_deferred", "queue_total") for r in worst(results))

    def describe_problem(self, results: nagiosplugin.Results) -> str:
        out = []
        for r in worst(results):
            if self.cut():
                out.append(self.bound_problem(r))
                continue
            q = r.metric.name.removeprefix("queue_")
            what = "queued" if q == "total" else q
            out.append(f"{fmt_number(r.metric.value)} {what} ({broken(r)})")
        return ", ".join(out)

    def bound_text(self, metric: nagiosplugin.Metric) -> str:
        q = metric.name.removeprefix("queue_")
        what = "messages queued" if q == "total" else q
        return f"at least {with_commas(metric.value)} {what}"


def main(argv: Sequence[str] | None = None, *, clock: Clock | None = None) -> None:
    args = parser().parse_args(argv)
    resource = QueueSize(args, **({"clock": clock} if clock else {}))
    judged = set(judged_queues(args))
    contexts = [judged_context(m.label, args, m.label.removeprefix("queue_") in judged)
                for m in metrics.for_check(CHECK.key)]
    check = nagiosplugin.Check(resource, *contexts, ErrorContext(), Summary(resource))
    check.name = CHECK.status
    run(check, args)


main = entry_point(nagiosplugin.guarded(verbose=0)(main))
