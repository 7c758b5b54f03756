"""Timing one program run: wall time, the CPU time of its process tree, peak RSS, and the CPU
the lab's Postfix daemons (showq) spent meanwhile.

Every run is a fresh process (``os.wait4`` gives its own rusage: user+sys of the child and the
children it reaped, and the largest RSS among them). Tools are run alternately (A B C A B C …)
so that a burst of load from the other engineers' test suites hits all of them alike.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
from labproc import processes  # noqa: E402

#: GNU time reports the tool's own peak RSS. Our own wait4 cannot: a child forked from this
#: Python process keeps the parent's RSS high-water mark across exec (36 MB for everything).
TIME = "/usr/bin/time"
RSS_FILE = f"/tmp/pqm-bench-rss.{os.getpid()}"


@dataclass
class Run:
    wall: float        # s
    cpu: float         # user+sys s of the tool's process tree
    rss_kb: int        # peak RSS of the largest process in the tree (KiB), from GNU time
    rc: int
    daemon_cpu: float = 0.0   # user+sys s of the Postfix daemons (showq …) during the run


@dataclass
class Series:
    name: str
    argv: list[str]
    runs: list[Run] = field(default_factory=list)
    first_line: str = ""
    env: dict[str, str] | None = None      # None: ours
    prepare: Callable[[], None] | None = None   # run before each run, outside the timing
    #: read stdout through a pipe on every run: GNU grep stops at the first match when its
    #: output is /dev/null (grep -c on 1 GB: 3 ms instead of 0.4 s)
    pipe_stdout: bool = False

    def med(self, attr: str) -> float:
        return statistics.median(getattr(r, attr) for r in self.runs)

    def lo(self, attr: str) -> float:
        return min(getattr(r, attr) for r in self.runs)

    def hi(self, attr: str) -> float:
        return max(getattr(r, attr) for r in self.runs)


def postfix_cpu(master_pid: int | None) -> float:
    """CPU seconds of a Postfix master and all its children, alive or reaped (a reaped child's
    CPU is in its parent's reaped_cpu)."""
    if not master_pid:
        return 0.0
    return sum(p.cpu + p.reaped_cpu for p in processes() if master_pid in (p.pid, p.ppid))


def run_once(argv: Sequence[str], env: dict[str, str] | None = None,
             stdin_path: str | None = None, master_pid: int | None = None,
             capture: bool = False) -> tuple[Run, str]:
    """One run; stdout to /dev/null (or captured, first line only kept)."""
    d0 = postfix_cpu(master_pid)
    stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL  # noqa: SIM115
    out = subprocess.PIPE if capture else subprocess.DEVNULL
    prefix: list[str] = []
    if os.path.exists(TIME):
        prefix = [TIME, "-f", "%M", "-o", RSS_FILE, "--"]
    try:
        t0 = time.perf_counter()
        proc = subprocess.Popen(prefix + list(argv), stdin=stdin, stdout=out,  # noqa: S603
                                stderr=subprocess.DEVNULL, env=env)
        text = ""
        if capture:
            assert proc.stdout is not None
            text = proc.stdout.read().decode("utf-8", "replace")
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
    finally:
        if stdin_path:
            stdin.close()
    d1 = postfix_cpu(master_pid)
    rss = -1
    if prefix:
        try:
            rss = int(open(RSS_FILE).read().split()[-1])
        except (OSError, ValueError, IndexError):
            rss = -1
    return Run(wall, ru.ru_utime + ru.ru_stime, rss, proc.returncode, d1 - d0), text


def alternate(series: list[Series], runs: int, env: dict[str, str] | None = None,
              master_pid: int | None = None, stdin_paths: dict[str, str] | None = None,
              warmup: int = 1, progress: Callable[[str], None] | None = None) -> list[Series]:
    """Runs every series ``runs`` times, interleaved; ``warmup`` unrecorded rounds first
    (page cache, showq already forked), the first line of each tool's output kept."""
    stdin_paths = stdin_paths or {}
    progress = progress or (lambda text: print(text, flush=True))
    for rnd in range(warmup + runs):
        for s in series:
            if s.prepare:
                s.prepare()
            r, text = run_once(s.argv, s.env or env, stdin_paths.get(s.name), master_pid,
                               capture=s.pipe_stdout or not s.first_line)
            if not s.first_line:
                s.first_line = text.splitlines()[0][:160] if text.strip() else "(no output)"
            if rnd >= warmup:
                s.runs.append(r)
        progress(f"    round {rnd + 1}/{warmup + runs}: " + ", ".join(
            f"{s.name} {s.runs[-1].wall:.3f}s" for s in series if s.runs))
    return series


def load_note() -> str:
    """The machine's load, for the page: load averages and the busiest other processes."""
    try:
        la = open("/proc/loadavg").read().split()[:3]
    except OSError:
        la = ["?"] * 3
    return f"load average {' '.join(la)} on {os.cpu_count()} CPUs"
