"""What the three queue checks share: the listing as a Resource, and the Summary skeleton."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import nagiosplugin

from .. import diagnosis
from ..cli import GuardedResource, error_hint
from ..deadline import Deadline
from ..queue import QUEUES, QueueSnapshot, default_postqueue, read_queue

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

    def read(self) -> QueueSnapshot:
        deadline = Deadline(self.args.timeout)
        self.snapshot = read_queue(self.args.postqueue or default_postqueue(),
                                   self.args.config_dir, deadline.child_timeout(), self.clock())
        return self.snapshot


class QueueSummary(nagiosplugin.Summary):
    """First line: what is wrong and why; -v: reasons, domains, parse notes."""

    def __init__(self, resource: QueueResource):
        self.resource = resource

    def problem(self, results: nagiosplugin.Results) -> str:
        hint = error_hint(results)
        if hint is not None:
            return hint
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
        lines = diagnosis.details(snap)
        if self.resource.args.verbose >= 2:     # -vv: an example text and what to do
            lines += diagnosis.advice(snap)
        return lines


def worst(results: nagiosplugin.Results) -> list[nagiosplugin.Result]:
    """Non-OK results, worst first."""
    bad = [r for r in results if r.state != nagiosplugin.Ok]
    return sorted(bad, key=lambda r: -r.state.code)
