"""benchmarks/harness.py's daemon CPU comes from labproc.processes(), the labs' one reader of
/proc: a master's own CPU, its live children's and the children it has reaped; and the
generated RESULTS.md closes with the hand-written NOTES.md."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from labproc import processes, stop_group

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import harness  # noqa: E402

BURN = "import time\nwhile time.process_time() < {}: pass\n"
#: a stand-in for a Postfix master: one child that burned 0.1 s and was reaped, one that
#: burned 0.05 s and stays
MASTER = f"""
import subprocess, sys, time
subprocess.run([sys.executable, "-S", "-c", {BURN.format(0.1)!r}], check=True)
p = subprocess.Popen([sys.executable, "-S", "-c", {BURN.format(0.05) + 'print(1, flush=True)'
                                             + chr(10) + 'time.sleep(60)'!r}],
                     stdout=subprocess.PIPE)
p.stdout.readline()
print("ready", flush=True)
sys.stdin.read()                        # until the test closes it: then end the child, reaped
p.kill()
p.wait()
"""


def test_postfix_cpu_counts_the_master_its_children_and_the_reaped_ones():
    master = subprocess.Popen([sys.executable, "-S", "-c", MASTER], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, start_new_session=True)
    try:
        assert master.stdout is not None
        assert master.stdout.readline().strip() == b"ready"
        procs = {p.pid: p for p in processes()}
        me = procs[master.pid]
        assert me.reaped_cpu >= 0.09            # the reaped child's 0.1 s (in clock ticks)
        live = [p for p in procs.values() if p.ppid == master.pid]
        assert len(live) == 1 and live[0].cpu >= 0.04
        total = harness.postfix_cpu(master.pid)
        assert total >= me.cpu + me.reaped_cpu + live[0].cpu - 0.02
        assert total >= 0.13
        assert harness.postfix_cpu(None) == 0.0
    finally:
        assert master.stdin is not None
        master.stdin.close()
        try:
            master.wait(10)
        finally:
            stop_group(master)              # only if it did not end by itself


def test_results_page_ends_with_the_hand_written_notes():
    """benchmarks/RESULTS.md is generated and closes with NOTES.md as it was then (run.py's
    closing()); NOTES.md edited by hand since (a re-run spliced in, a review's correction)
    must be copied there too, or the page keeps the old analysis."""
    bench = Path(__file__).resolve().parents[2] / "benchmarks"
    notes = (bench / "NOTES.md").read_text(encoding="utf-8")
    assert notes.startswith("## Reading these figures")
    assert (bench / "RESULTS.md").read_text(encoding="utf-8").endswith(notes)
