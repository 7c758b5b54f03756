"""check_postfix_oldest_message: age of the oldest message, from its true arrival time.

Age = now − ``arrival_time`` (the queue file's T record), never a file's mtime: a deferred
file's mtime is its next retry, in the future.
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
    fmt_age,
    judged_context,
    run,
)
from ..queue import QUEUES
from .common import Clock, QueueResource, QueueSummary, add_queue_option, broken, worst

CHECK = check_registry.BY_KEY["oldest"]
#: The metric -w/-c judge: the oldest age over the judged queues.
JUDGED = "queue.oldest_age"


def parser() -> argparse.ArgumentParser:
    p = check_parser(CHECK.program, CHECK.description, durations=True, timeout=CHECK.timeout)
    add_queue_option(p, "default: every queue but hold")
    return p


def judged_queues(args: argparse.Namespace) -> list[str]:
    chosen = args.queue or list(metrics.DEFAULT_OLDEST_QUEUES)
    if "total" in chosen:
        chosen = list(QUEUES)
    return list(dict.fromkeys(chosen))


class OldestAge(QueueResource):
    def __init__(self, args: argparse.Namespace, **kw):
        super().__init__(args, **kw)
        self.judged = judged_queues(args)

    def measure(self) -> Iterator[nagiosplugin.Metric]:
        snap = self.read()
        values = metrics.queue_values(snap)
        values["queue.oldest_age"] = round(snap.oldest_age(self.judged), 3)   # judged queues
        for m in metrics.for_check(CHECK.key):
            yield nagiosplugin.Metric(m.label, values[m.id], m.uom, min=m.min, context=m.label)

    def oldest_queue(self) -> str | None:
        snap = self.snapshot
        if snap is None:
            return None
        ages = {q: snap.stats(q).oldest_age(snap.now) for q in self.judged
                if snap.stats(q).messages}
        return max(ages, key=ages.__getitem__) if ages else None


class Summary(QueueSummary):
    resource: OldestAge

    def describe_ok(self, results: nagiosplugin.Results) -> str:
        queue = self.resource.oldest_queue()
        if queue is None:
            return f"no message in {', '.join(self.resource.judged)}"
        age = results["oldest_age"].metric.value
        if self.cut():
            return f"oldest {queue} message is at least {fmt_age(age)} old ({self.cut_note()})"
        return f"oldest {queue} message is {fmt_age(age)} old"

    def about_deferred(self, results: nagiosplugin.Results) -> bool:
        return self.resource.oldest_queue() == "deferred"

    def describe_problem(self, results: nagiosplugin.Results) -> str:
        r = worst(results)[0]
        if self.cut():
            return self.bound_problem(r, fmt_age)
        queue = self.resource.oldest_queue() or "queued"
        return f"oldest {queue} message is {fmt_age(r.metric.value)} old ({broken(r, fmt_age)})"

    def bound_text(self, metric: nagiosplugin.Metric) -> str:
        queue = self.resource.oldest_queue() or "queued"
        return f"oldest {queue} message is at least {fmt_age(metric.value)} old"


def main(argv: Sequence[str] | None = None, *, clock: Clock | None = None) -> None:
    args = parser().parse_args(argv)
    resource = OldestAge(args, **({"clock": clock} if clock else {}))
    contexts = [judged_context(m.label, args, m.id == JUDGED) for m in metrics.for_check(CHECK.key)]
    check = nagiosplugin.Check(resource, *contexts, ErrorContext(), Summary(resource))
    check.name = CHECK.status
    run(check, args)


main = entry_point(nagiosplugin.guarded(verbose=0)(main))
