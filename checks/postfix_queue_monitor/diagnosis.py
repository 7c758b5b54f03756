"""From alert to cause: the short "why" appended to a non-OK first line, and the -v detail.

Built from one queue listing (the dominant deferral reason class, counted in recipients, and
the top destination domain of that class) or, for the bounce-rate check, from counts of
classified bounced/expired texts (:func:`log_cause`). Everything here is one line or a few
short lines: the first line of a check must stay short (NRPE v2 packets carry 1,023 bytes).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from . import reasons
from .queue import QueueSnapshot

#: a second class is named when the first one covers less than this share
SECOND_CLASS_BELOW = 0.6
#: ... and only when the second one covers at least this share
SECOND_CLASS_MIN = 0.15
EXAMPLE_CHARS = 160


def _pct(n: int, total: int) -> int:
    return round(100 * n / total) if total else 0


def _classes_part(classes: Mapping[str, int], total: int) -> list[str]:
    ranked = Counter({c: n for c, n in classes.items() if n > 0}).most_common()
    if not ranked:
        return []
    parts = [f"{_pct(ranked[0][1], total)}% {ranked[0][0]}"]
    if (len(ranked) > 1 and ranked[0][1] < SECOND_CLASS_BELOW * total
            and ranked[1][1] >= SECOND_CLASS_MIN * total):
        parts.append(f"{_pct(ranked[1][1], total)}% {ranked[1][0]}")
    return parts


def _top(counter: Mapping[str, int] | None) -> tuple[str, int] | None:
    if not counter:
        return None
    ranked = Counter({k: v for k, v in counter.items() if v > 0}).most_common(1)
    return ranked[0] if ranked else None


def cause(snap: QueueSnapshot) -> str:
    """``71% timeout, top gmail.com 300`` (empty when nothing is deferred).

    The share is of deferred recipients; the domain is the top one of the dominant class. When
    no class dominates (under 60 %), the runner-up is named too: ``45% timeout, 30% refused,
    top gmail.com 300``.
    """
    total = sum(snap.deferred_classes.values())
    if not total:
        return ""
    parts = _classes_part(snap.deferred_classes, total)
    cls = snap.deferred_classes.most_common(1)[0][0]
    top = _top(snap.deferred_class_domains.get(cls))
    if top:
        parts.append(f"top {top[0]} {top[1]}")
    return ", ".join(parts)


def log_cause(class_counter: Mapping[str, int], domain_counter: Mapping[str, int]) -> str:
    """The top bounce reasons for the bounce-rate check's first line.

    ``class_counter`` counts classified bounced/expired texts (recipients) by class,
    ``domain_counter`` the same recipients by domain: ``62% recipient_unknown, 20% policy, top
    example.com 40``. Empty when nothing was counted.
    """
    total = sum(n for n in class_counter.values() if n > 0)
    if not total:
        return ""
    parts = _classes_part(class_counter, total)
    top = _top(domain_counter)
    if top:
        parts.append(f"top {top[0]} {top[1]}")
    return ", ".join(parts)


def class_examples(snap: QueueSnapshot) -> dict[str, tuple[str, int]]:
    """For each deferral class: its most frequent reason text and that text's recipients."""
    best: dict[str, tuple[str, int]] = {}
    for text, n in snap.deferred_reason_texts.items():
        cls = reasons.classify(text)
        if cls not in best or n > best[cls][1]:
            best[cls] = (text, n)
    return best


def class_permanent(snap: QueueSnapshot) -> dict[str, tuple[int, int]]:
    """For each class: (temporary, permanent) recipients among the kept reason texts."""
    out: dict[str, list[int]] = {}
    for text, n in snap.deferred_reason_texts.items():
        slot = out.setdefault(reasons.classify(text), [0, 0])
        slot[1 if reasons.is_permanent(text) else 0] += n
    return {c: (t, p) for c, (t, p) in out.items()}


def shorten(text: str, limit: int = EXAMPLE_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def details(snap: QueueSnapshot, top: int = 5) -> list[str]:
    """-v lines: deferral classes and top destination domains, then parsing notes."""
    out: list[str] = []
    total = sum(snap.deferred_classes.values())
    if total:
        classes = ", ".join(f"{c} {n}" for c, n in snap.deferred_classes.most_common(top))
        out.append(f"deferred recipients by reason: {classes}")
        domains = ", ".join(f"{d} {n}" for d, n in snap.deferred_domains.most_common(top))
        out.append(f"top deferred domains: {domains}")
    out.extend(parse_notes(snap))
    return out


def advice(snap: QueueSnapshot, classes: int = 3) -> list[str]:
    """For the top deferral classes: an example text and the suggested action (two lines
    each, indented; for a -vv level or the report). Advice only: nothing is run."""
    out: list[str] = []
    examples = class_examples(snap)
    perm = class_permanent(snap)
    for cls, _ in snap.deferred_classes.most_common(classes):
        example = examples.get(cls)
        if example:
            out.append(f"  {cls}: e.g. {shorten(example[0])}")
        out.append(f"  {cls}: {reasons.action(cls, perm.get(cls, (0, 0))[1] > 0)}")
    return out


def listing_notes(snap: QueueSnapshot) -> list[str]:
    """How the listing was had: cut by the deadline, reused from another run (for ``-v``)."""
    out = []
    if snap.cut:
        out.append(f"listing cut after {snap.elapsed or 0:.1f} s at "
                   f"{snap.stats('total').messages:,} messages (postqueue killed at the "
                   f"deadline): every count, size and age is a lower bound, no perfdata")
    if snap.reused_age is not None:
        out.append(f"listing reused: taken {snap.reused_age:.1f} s ago by another run "
                   f"(--listing-max-age)")
    return out


def parse_notes(snap: QueueSnapshot) -> list[str]:
    out = list(snap.warnings)
    if snap.long_lines:
        out.append(f"skipped {snap.long_lines} line(s) longer than 64 KiB")
    if snap.source == "text":
        out.append("read postqueue -p (no -j before Postfix 3.1): unmarked messages counted as "
                   "deferred")
    listed = snap.stats("total").messages
    if snap.expected_messages is not None and snap.expected_messages != listed:
        out.append(f"postqueue -p's summary says {snap.expected_messages} request(s), "
                   f"{listed} were read (the queue moved while it was listed)")
    if snap.malformed:
        out.append(f"skipped {snap.malformed} malformed line(s) of {snap.lines}:")
        out.extend(f"  {s}" for s in snap.malformed_samples)
    return out
