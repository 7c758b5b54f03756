"""Stand-in postqueue programs for in-process tests: real processes that print captured output
(real postqueue stderr wording, as captured) — the integration tests use the real one."""

from __future__ import annotations

import json
import shlex
from pathlib import Path


def fake_postqueue(tmp: Path, *, j: Path | None = None, p: Path | None = None, rc: int = 0,
                   stderr: str = "", j_invalid: bool = False, sleep: float | None = None,
                   pidfile: Path | None = None) -> str:
    """Write an executable that answers -j with ``j`` and -p with ``p``; returns its path."""
    lines = ["#!/bin/sh"]
    if pidfile:
        lines.append(f"echo $$ > {shlex.quote(str(pidfile))}")
    lines.append('for a in "$@"; do last="$a"; done')
    if j_invalid:
        lines.append('if [ "$last" = "-j" ]; then echo "postqueue: invalid option -- \'j\'" >&2; '
                     'echo "postqueue: fatal: usage: postqueue -f | postqueue -p | postqueue -s '
                     'site" >&2; exit 64; fi')
    if sleep:
        lines.append(f"sleep {sleep}")
    if j is not None:
        lines.append(f'if [ "$last" = "-j" ]; then cat {shlex.quote(str(j))}; fi')
    if p is not None:
        lines.append(f'if [ "$last" = "-p" ]; then cat {shlex.quote(str(p))}; fi')
    if stderr:
        lines.append(f"printf '%s\\n' {shlex.quote(stderr)} >&2")
    lines.append(f"exit {rc}")
    path = tmp / "postqueue"
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o755)
    return str(path)


def age_growth_samples(state_dir: str | Path, seconds: float) -> None:
    """Move every growth sample (and rate) of a state dir ``seconds`` into the past, as if
    the runs so far had happened that much earlier: a growth rate needs samples at least a
    minute apart (a quarter of a shorter window), and a test should not sleep for it. The
    file is rewritten in place, so its owner and mode stay (a daemon user's state dir)."""
    import json  # noqa: PLC0415

    for path in Path(state_dir).glob("growth-*.json"):
        doc = json.loads(path.read_text())
        data = doc["data"]
        data["samples"] = [[t - seconds, n] for t, n in data.get("samples", [])]
        data["windows"] = {w: t - seconds for w, t in data.get("windows", {}).items()}
        data["rates"] = {w: [t - seconds, r] for w, (t, r) in data.get("rates", {}).items()}
        with open(path, "r+") as fh:
            fh.write(json.dumps(doc))
            fh.truncate()


def slow_postqueue(tmp: Path, count: int, *, hang: bool = True, seconds: float = 0.0,
                   queue: str = "deferred", arrival: float = 1795962698.0,
                   runs: Path | None = None, pidfile: Path | None = None,
                   long_line: int = 0, name: str = "postqueue",
                   domain: str = "dest.example") -> str:
    """A postqueue that lists slowly: ``count`` messages of ``queue`` spread over ``seconds``,
    then hangs (``hang``, as showq on a storm-sized queue does) or exits 0. ``long_line``: print
    a line of that many bytes first. Each run appends its PID to ``runs``; the listing process
    itself sleeps (no child of its own), so its PID is the whole listing. Every recipient is
    at ``domain``, deferred by a connection timeout."""
    line = json.dumps({"queue_name": queue, "queue_id": "QID", "arrival_time": arrival,
                       "message_size": 1000, "forced_expire": False, "sender": "s@src.example",
                       "recipients": [{"address": f"u@{domain}", "delay_reason":
                                       f"connect to {domain}[192.0.2.1]:25: Connection "
                                       "timed out"}]}).replace("QID", "%X") + "\n"
    script = f"""#!/usr/bin/python3
import os, sys, time
runs, pidfile = {str(runs) if runs else None!r}, {str(pidfile) if pidfile else None!r}
if runs:
    with open(runs, "a") as fh:
        fh.write(f"{{os.getpid()}}\\n")
if pidfile:
    with open(pidfile, "w") as fh:
        fh.write(str(os.getpid()))
out = sys.stdout.buffer
if {long_line}:
    chunk = b"x" * 1048576
    left = {long_line}
    while left > 0:
        out.write(chunk[:left])
        left -= len(chunk)
    out.write(b"\\n")
line = {line!r}
step = {seconds} / {max(count, 1)}
for i in range({count}):
    out.write((line % i).encode())
    if step and i % 100 == 99:
        out.flush()
        time.sleep(step * 100)
out.flush()
if {hang}:
    time.sleep(3600)
"""
    path = tmp / name
    path.write_text(script)
    path.chmod(0o755)
    return str(path)
