"""Same input, two copies of the package: are the snapshots identical (values and order)?

    python benchmarks/compare_parsers.py SCRATCH_DIR FILE...

Used to check a proposed queue.py (a scratch copy) against the worktree's before timing it.
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
    # a field only one version has (e.g. a buffer that is empty after parsing) is left out
    state = {k: (list(v.items()) if hasattr(v, "items") else v) for k, v in vars(snap).items()
             if v or k in ("lines", "malformed", "now", "source")}
    state["queues"] = {q: vars(s) for q, s in snap.queues.items()}
    state["deferred_class_domains"] = {c: list(d.items())
                                       for c, d in snap.deferred_class_domains.items()}
    return state, diagnosis.cause(snap), diagnosis.details(snap), took, queue.__file__


def main() -> int:
    scratch, files = sys.argv[1], sys.argv[2:]
    now = time.time()
    bad = 0
    for path in files:
        a = snapshot(None, path, now)
        b = snapshot(scratch, path, now)
        same = a[:3] == b[:3]
        bad += not same
        print(f"{path}: {'identical' if same else 'DIFFERENT'}; {a[3]:.2f} s ({a[4]}) vs "
              f"{b[3]:.2f} s ({b[4]}); cause {b[1]!r}")
        if not same:
            for k in sorted(set(a[0]) | set(b[0])):
                if a[0].get(k) != b[0].get(k):
                    print(f"  differs: {k}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
