"""The in-process contenders on the synthetic stream, each run as its own process.

    python benchmarks/stream_tools.py naive FILE      json.loads every line, nothing else
    python benchmarks/stream_tools.py naive-orjson FILE  the same with orjson.loads
    python benchmarks/stream_tools.py ours FILE       queue.parse_json_lines + diagnosis.cause
                                                      + diagnosis.details (what a check with its
                                                      thresholds crossed computes)
    python benchmarks/stream_tools.py profile FILE N  cProfile of "ours" on the first N lines

The package imported is whatever is first on sys.path: the worktree's, or a scratch copy put
first with PYTHONPATH (to measure a proposed change without touching queue.py).
"""

from __future__ import annotations

import itertools
import json
import sys
import time


def naive(path: str, loads=json.loads) -> None:
    """Decode every line and nothing else: the floor a parser is measured against."""
    n = 0
    with open(path, "rb") as f:
        for line in f:
            loads(line)
            n += 1
    print(n)


def ours(path: str, limit: int | None = None) -> None:
    from postfix_queue_monitor import diagnosis, queue
    with open(path, "rb") as f:
        lines = itertools.islice(f, limit) if limit else f
        snap = queue.parse_json_lines(lines, time.time())
    print(snap.lines, snap.stats("total").messages, snap.malformed, diagnosis.cause(snap),
          *diagnosis.details(snap), sep="\n")


def profile(path: str, limit: int) -> None:
    import cProfile
    import pstats
    prof = cProfile.Profile()
    prof.runcall(ours, path, limit)
    stats = pstats.Stats(prof, stream=sys.stdout)
    stats.sort_stats("tottime").print_stats(12)


if __name__ == "__main__":
    what, path = sys.argv[1], sys.argv[2]
    if what == "naive":
        naive(path)
    elif what == "naive-orjson":
        from orjson import loads
        naive(path, loads)
    elif what == "ours":
        ours(path)
    elif what == "profile":
        profile(path, int(sys.argv[3]))
    else:
        sys.exit(f"unknown tool {what}")
