"""postfix_queue_report: the human diagnosis after an alert (qshape-like), no judgement.

One listing of the queue (``postqueue -j``, or ``-p`` before Postfix 3.1, via
:func:`queue.read_queue`) printed as:

- messages, recipients, bytes and the oldest message's age per queue (and ``total``);
- the deferred queue by destination domain × age bucket, with qshape's columns;
- the deferral reasons by class: recipients, temporary/permanent, the top domain, an example
  text and a suggested action (advice only: nothing is ever run, least of all ``postsuper``).

``--json`` prints the same as one object (docs/reference.md). On failure: one line on stdout
that says what to fix and exit 3 (2 for a bad command line); never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from . import __version__, diagnosis, listing, reasons
from .cli import (
    add_listing_option,
    entry_point,
    fmt_age,
    instance_options,
    parse_timeout,
    whole_number,
)
from .deadline import Deadline
from .errors import MonitorError
from .queue import AGE_BUCKETS_MIN, ALL_QUEUES, QueueSnapshot

PROG = "postfix_queue_report"
EXIT_USAGE = 2
EXIT_FAILURE = 3
DEFAULT_TIMEOUT = 30.0
DEFAULT_TOP = 20
DOMAIN_WIDTH = 40
BUCKET_LABELS: tuple[str, ...] = (*(str(m) for m in AGE_BUCKETS_MIN), f"{AGE_BUCKETS_MIN[-1]}+")

Clock = Callable[[], float]


class _Parser(argparse.ArgumentParser):
    """argparse that prints its complaint as one line on stdout."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: {message} (see {self.prog} --help)")
        sys.exit(EXIT_USAGE)


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="What is in the Postfix queue and why: sizes per queue, "
                "the deferred queue by domain and age (like qshape), deferral reasons with "
                "suggested actions. Judges nothing.")
    instance_options(p)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    p.add_argument("--top", metavar="N", type=whole_number(1), default=DEFAULT_TOP,
                   help=f"destination domains to show (default {DEFAULT_TOP})")
    p.add_argument("-t", "--timeout", metavar="SECONDS", type=parse_timeout,
                   default=DEFAULT_TIMEOUT,
                   help=f"limit for postqueue (default {DEFAULT_TIMEOUT:g}); then it is killed")
    p.add_argument("--state-dir", metavar="DIR", default=None,
                   help="where a shared listing is kept (default: a per-user directory)")
    add_listing_option(p)
    p.add_argument("-V", "--version", action="version", version=f"%(prog)s {__version__}")
    return p


# -- the document ---------------------------------------------------------------------------

def build(snap: QueueSnapshot, top: int = DEFAULT_TOP) -> dict[str, Any]:
    """Everything the report shows, as plain data (the ``--json`` object)."""
    queues = {}
    for q in ALL_QUEUES:
        st = snap.stats(q)
        queues[q] = {"messages": st.messages, "recipients": st.recipients, "bytes": st.bytes,
                     "oldest_age": round(st.oldest_age(snap.now), 3),
                     "forced_expire": st.forced_expire}
    deferred_total = sum(snap.deferred_domains.values())
    total_ages = [0] * len(BUCKET_LABELS)
    for ages in snap.deferred_domain_ages.values():
        for i, n in enumerate(ages):
            total_ages[i] += n
    top_domains = [{"domain": d, "recipients": n, "ages": list(snap.deferred_domain_ages[d])}
                   for d, n in snap.deferred_domains.most_common(top)]
    examples = diagnosis.class_examples(snap)
    perm = diagnosis.class_permanent(snap)
    details = []
    for cls, n in snap.deferred_classes.most_common():
        permanent = min(n, perm.get(cls, (0, 0))[1])
        doms = snap.deferred_class_domains.get(cls)
        example = examples.get(cls)
        details.append({
            "class": cls, "recipients": n, "percent": round(100 * n / deferred_total, 1)
            if deferred_total else 0.0,
            "temporary": n - permanent, "permanent": permanent,
            "top_domains": [{"domain": d, "recipients": c} for d, c in doms.most_common(3)]
            if doms else [],
            "example": example[0] if example else None,
            "action": reasons.action(cls, permanent > 0),
        })
    return {
        "time": snap.now,
        "source": "postqueue -j" if snap.source == "json" else "postqueue -p",
        "queues": queues,
        "deferred_recipients": deferred_total,
        "deferred_reasons": {c: snap.deferred_classes.get(c, 0) for c in reasons.CLASSES},
        "deferred_reason_details": details,
        "top_domains": top_domains,
        "domains": len(snap.deferred_domains),
        "age_buckets_min": list(AGE_BUCKETS_MIN),
        "deferred_ages": total_ages,
        "lines": snap.lines,
        "malformed": snap.malformed,
        # a listing cut by the deadline: every figure is a lower bound of the true one
        "complete": not snap.cut,
        "cut_after_s": round(snap.elapsed or 0, 1) if snap.cut else None,
        "reused_age_s": None if snap.reused_age is None else round(snap.reused_age, 1),
        "notes": diagnosis.parse_notes(snap),
    }


# -- text -----------------------------------------------------------------------------------

def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], align: str = "") -> list[str]:
    """Aligned columns; ``align`` has one ``l`` or ``r`` per column (default: the first column
    left, the rest right)."""
    align = align or "l" + "r" * (len(header) - 1)
    cells = [[str(c) for c in header], *[[str(c) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    out = []
    for r in cells:
        parts = [c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(r, widths, align)]
        out.append("  ".join(parts).rstrip())
    return out


def _domain(name: str) -> str:
    return name if len(name) <= DOMAIN_WIDTH else name[:DOMAIN_WIDTH - 1] + "…"


def _age(seconds: float, messages: int) -> str:
    return fmt_age(seconds) if messages else "-"


def render(doc: dict[str, Any]) -> str:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(doc["time"]))
    out = [f"Postfix queue report, {stamp} ({doc['source']})", ""]
    if not doc.get("complete", True):
        total = doc["queues"]["total"]["messages"]
        out[-1:] = [f"INCOMPLETE: the listing was cut after {doc['cut_after_s']} s at {total:,} "
                    f"messages (postqueue killed at -t): every figure below is a lower bound; "
                    f"raise -t for the whole queue", ""]
    rows: list[tuple[Any, ...]] = [
        (q, v["messages"], v["recipients"], v["bytes"], _age(v["oldest_age"], v["messages"]))
        for q, v in doc["queues"].items()]
    out += _table(("queue", "messages", "recipients", "bytes", "oldest"), rows)
    out.append("")

    deferred = doc["deferred_recipients"]
    if not deferred:
        out.append("Deferred queue: empty.")
    else:
        out.append("Deferred queue by destination domain and age (recipients; ages in minutes, "
                   "as qshape)")
        rows = [("TOTAL", deferred, *doc["deferred_ages"])]
        rows += [(_domain(d["domain"]), d["recipients"], *d["ages"]) for d in doc["top_domains"]]
        out += _table(("domain", "total", *BUCKET_LABELS), rows)
        rest = doc["domains"] - len(doc["top_domains"])
        if rest > 0:
            shown = sum(d["recipients"] for d in doc["top_domains"])
            out.append(f"... and {rest} more domain(s) with {deferred - shown} recipient(s) "
                       f"(--top to show more)")
        out.append("")
        out.append("Deferral reasons (recipients)")
        rows = []
        for d in doc["deferred_reason_details"]:
            top = d["top_domains"][0] if d["top_domains"] else None
            rows.append((d["class"], d["recipients"], f"{d['percent']:.0f}%", d["temporary"],
                         d["permanent"], f"{_domain(top['domain'])} {top['recipients']}"
                         if top else "-"))
        table = _table(("class", "recipients", "share", "temporary", "permanent", "top domain"),
                       rows, "lrrrrl")
        out.append(table[0])
        for line, d in zip(table[1:], doc["deferred_reason_details"]):
            out.append(line)
            if d["example"]:
                out.append(f"    example: {diagnosis.shorten(d['example'], 200)}")
            out.append(f"    action:  {d['action']}")
    if doc["notes"]:
        out.append("")
        out.append("Notes")
        out += [f"  {n}" for n in doc["notes"]]
    return "\n".join(out) + "\n"


# -- main -----------------------------------------------------------------------------------

def _fail(message: str) -> int:
    print(" ".join(message.split()))
    return EXIT_FAILURE


@entry_point
def main(argv: Sequence[str] | None = None, *, clock: Clock = time.time) -> int:
    """Run the report; returns the exit code (0, 2 bad command line, 3 failure)."""
    try:
        args = parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:        # --help/--version (0) or a usage error (2)
        return int(exc.code or 0)
    try:
        snap = listing.for_run(args, Deadline(args.timeout), clock(), clock)
        doc = build(snap, args.top)
        text = json.dumps(doc, ensure_ascii=False) + "\n" if args.json else render(doc)
    except MonitorError as exc:
        return _fail(str(exc))
    except Exception as exc:  # noqa: BLE001 - a report must never end in a traceback
        return _fail(f"{PROG}: internal error: {type(exc).__name__}: {exc} (please report it)")
    sys.stdout.write(text)                # postfix_queue_report | head: see entry_point
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
