"""Stand-in postqueue programs for in-process tests: real processes that print captured output
(real postqueue stderr wording, as captured) — the integration tests use the real one."""

from __future__ import annotations

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
