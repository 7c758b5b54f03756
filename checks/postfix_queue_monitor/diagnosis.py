"""From alert to cause: the short "why" appended to a non-OK first line, and the -v detail.

Built from one queue listing: the dominant deferral reason class (recipients) and the top
destination domain of the deferred queue.
"""

from __future__ import annotations

from .queue import QueueSnapshot


def cause(snap: QueueSnapshot) -> str:
    """``71% timeout, top gmail.com 300`` (empty when nothing is deferred)."""
    total = sum(snap.deferred_classes.values())
    if not total:
        return ""
    cls, n = snap.deferred_classes.most_common(1)[0]
    parts = [f"{round(100 * n / total)}% {cls}"]
    domains = snap.deferred_class_domains.get(cls)
    if domains:
        domain, dn = domains.most_common(1)[0]
        parts.append(f"top {domain} {dn}")
    return ", ".join(parts)


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


def parse_notes(snap: QueueSnapshot) -> list[str]:
    out = list(snap.warnings)
    if snap.source == "text":
        out.append("read postqueue -p (no -j before Postfix 3.1): unmarked messages counted as "
                   "deferred")
    if snap.malformed:
        out.append(f"skipped {snap.malformed} malformed line(s) of {snap.lines}:")
        out.extend(f"  {s}" for s in snap.malformed_samples)
    return out
