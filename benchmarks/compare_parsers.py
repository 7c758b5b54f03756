"""Same input, two copies of the package: are the snapshots identical (values and order)?

    python benchmarks/compare_parsers.py [--base DIR] SCRATCH_DIR FILE...

e.g. ``compare_parsers.py /tmp/scratch/checks benchmarks/edge-cases.jsonl
benchmarks/data/stream-1000k.jsonl`` (edge-cases.jsonl: malformed lines, a bare local part, a
trailing dot, an unknown queue, a boolean arrival time, forced expiry).

Used to check a proposed queue.py (a scratch copy: the directory that holds
postfix_queue_monitor/) against the worktree's (or --base's) before timing it. Fields only one
of the two versions has (a new memo, a buffer) are not compared.
"""

from __future__ import annotations

import importlib
import sys
import time


def snapshot(pkg_dir: str | None, path: str, now: float):
    for name in [m for m in sys.modules if m.startswith("postfix_queue_monitor")]:
        del sys.modules[name]
    if pkg_dir:
        sys.path.insert(0, pkg_dir)
    try:
        queue = importlib.import_module("postfix_queue_monitor.queue")
        diagnosis = importlib.import_module("postfix_queue_monitor.diagnosis")
        with open(path, "rb") as f:
            t = time.perf_counter()
            snap = queue.parse_json_lines(f, now)
            took = time.perf_counter() - t
    finally:
        if pkg_dir:
            sys.path.remove(pkg_dir)
    state = {k: (list(v.items()) if hasattr(v, "items") else v) for k, v in vars(snap).items()}
    state["queues"] = {q: vars(s) for q, s in snap.queues.items()}
    state["deferred_class_domains"] = {c: list(d.items())
                                       for c, d in snap.deferred_class_domains.items()}
    return state, diagnosis.cause(snap), diagnosis.details(snap), took, queue.__file__


def main() -> int:
    argv = sys.argv[1:]
    base = None
    if argv[:1] == ["--base"]:
        base, argv = argv[1], argv[2:]
    scratch, files = argv[0], argv[1:]
    now = time.time()
    bad = 0
    for path in files:
        a = snapshot(base, path, now)
        b = snapshot(scratch, path, now)
        common = set(a[0]) & set(b[0])
        same = ({k: a[0][k] for k in common}, *a[1:3]) == ({k: b[0][k] for k in common}, *b[1:3])
        bad += not same
        print(f"{path}: {'identical' if same else 'DIFFERENT'}; {a[3]:.2f} s ({a[4]}) vs "
              f"{b[3]:.2f} s ({b[4]}); cause {b[1]!r}")
        if not same:
            for k in sorted(common):
                if a[0][k] != b[0][k]:
                    print(f"  differs: {k}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
