"""Line length and odd files (issue 16, items 3 and 11): NUL holes, endless lines, /dev/zero and
FIFOs as the log, over-long journal entries. Answers within -t + 1 s, memory bounded, the log
position moves past what was skipped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_maillog_reader import T0, Log

from postfix_queue_monitor import deliveries as D
from postfix_queue_monitor.deadline import Deadline
from postfix_queue_monitor.linebound import MAX_LINE
from postfix_queue_monitor.maillog.feeder import LineFeeder
from postfix_queue_monitor.maillog.journal import JournalReader
from postfix_queue_monitor.maillog.reader import FileReader
from postfix_queue_monitor.maillog.tally import Tally
from postfix_queue_monitor.maillog.timestamps import Clock
from postfix_queue_monitor.proc import Child

BIN = Path(sys.executable).parent
MB = 1024 * 1024


@pytest.fixture
def log(tmp_path: Path) -> Log:
    return Log(tmp_path / "mail.log")


def measure(log: Log, now: float, timeout: float = 5) -> D.DeliveryStats:
    return D.measure_deliveries(str(log.path), False, None, 3600, str(log.path.parent / "st"),
                                now, timeout)


def _position(log: Log) -> int:
    (path,) = [p for p in (log.path.parent / "st").iterdir()
               if p.name.startswith("bounce-") and p.name.endswith(".json")]
    return json.loads(path.read_text())["data"]["position"]["offset"]


def _hole(path: Path, size: int) -> None:
    """A NUL hole as a crash leaves it: sparse, so the test writes nothing to disk."""
    with open(path, "ab") as fh:
        fh.truncate(fh.tell() + size)


def test_child_lines_pass_the_head_of_long_ones() -> None:
    script = ("import sys; w = sys.stdout.write; w('short 1\\n'); w('x' * 70000 + '\\n'); "
              "w('short 2\\n'); w('z' * 200000)")
    heads: list[bytes] = []
    with Child([sys.executable, "-c", script], 10) as child:
        got = list(child.lines(on_long=heads.append))
        child.finish()
    assert got == [b"short 1\n", b"short 2\n"] and child.long_lines == 2
    assert [h[:1] for h in heads] == [b"x", b"z"] and all(len(h) <= MAX_LINE for h in heads)


def test_nul_hole_is_crossed_and_the_next_line_counts(log: Log) -> None:
    """Before: a 200 MB NUL hole made every later run time out; the position never moved."""
    log.write(2, T0 - 60)
    measure(log, T0)
    _hole(log.path, 200 * MB)
    log.write(3, T0 + 10)                   # written right after the hole: its line intact
    size = log.path.stat().st_size
    started = time.monotonic()
    st = measure(log, T0 + 20, timeout=2)
    assert time.monotonic() - started < 3
    assert st.sent == 5 and _position(log) == size


def test_endless_line_is_skipped_counted_and_passed(log: Log) -> None:
    log.write(1, T0 - 60)
    measure(log, T0)
    with open(log.path, "ab") as fh:
        fh.write(b"garbage " * (20 * MB // 8) + b"\n")
    log.write(2, T0 + 10)
    st = measure(log, T0 + 20, timeout=2)
    assert st.sent == 3 and _position(log) == log.path.stat().st_size
    assert any("skipped 1 line(s) longer than 64 KiB (first begins 'garbage" in n
               for n in st.notes), st.notes
    # lines just under the bound, inside one read block, are kept
    with open(log.path, "ab") as fh:
        fh.write(b"a" * (MAX_LINE - 10) + b"\n" + b"b" * (MAX_LINE + 10) + b"\n")
    log.write(1, T0 + 30)
    st = measure(log, T0 + 40)
    assert st.sent == 4 and any("skipped 1 line(s)" in n for n in st.notes)


def test_reading_stops_at_the_deadline_and_goes_on_next_run(log: Log) -> None:
    log.write(1, T0 - 60)
    measure(log, T0)
    log.write(4, T0 + 10)
    feeder = LineFeeder(Tally(), Clock(T0 + 20), None)
    reader = FileReader(str(log.path), feeder, Deadline(0.0))
    before = _position(log)
    with open(log.path, "rb") as fh:
        assert reader._read_from(fh, before, final=False) == before
    assert reader.notes() == [f"stopped reading {log.path} at the deadline (offset {before}): "
                              f"the rest is read next run"]
    assert measure(log, T0 + 30).sent == 5


def _check(*args: str, timeout: float = 30) -> tuple[subprocess.CompletedProcess, float, int]:
    """Run check_postfix_bounce_rate; its wall time and peak memory (KiB), measured by a
    wrapper process so nothing else the test process ran counts."""
    wrapper = ("import resource, subprocess, sys, time; t = time.monotonic(); "
               "p = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
               "print(time.monotonic() - t, "
               "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
               "print(p.returncode); print(p.stdout, end='')")
    out = subprocess.run([sys.executable, "-c", wrapper, str(BIN / "check_postfix_bounce_rate"),
                          *args], capture_output=True, text=True, timeout=timeout)
    first, rc, rest = out.stdout.split("\n", 2)
    took, rss = first.split()
    return (subprocess.CompletedProcess(args, int(rc), rest, out.stderr), float(took),
            int(rss))


def test_3gb_nul_hole_answers_within_t_in_bounded_memory(tmp_path: Path) -> None:
    """Before: 3.95 s and 3.2 GB with -t 2 (the hole read into memory whole)."""
    log = Log(tmp_path / "mail.log")
    log.write(2, time.time() - 60)
    state = str(tmp_path / "st")
    first, _, _ = _check("--log-file", str(log.path), "--state-dir", state, "-t", "2")
    assert first.returncode == 0, first.stdout
    _hole(log.path, 3 * 1024 * MB)
    log.write(1, time.time())
    res, took, rss = _check("--log-file", str(log.path), "--state-dir", state, "-t", "2")
    assert res.returncode in (0, 1, 2), res.stdout          # a result, not UNKNOWN
    assert took < 3.0, took
    assert rss < 80 * 1024, f"{rss} KiB"
    assert _position(log) > 1024 * MB                       # moved into the hole at least


@pytest.mark.parametrize("kind", ["fifo", "/dev/zero"])
def test_fifo_or_device_as_log_is_unknown_naming_it(tmp_path: Path, kind: str) -> None:
    """Before: a FIFO gave 'UNKNOWN: Timeout: check execution aborted after 2s' (no check name,
    no cause); /dev/zero was read until the kernel killed the check (24 GB)."""
    path = kind
    if kind == "fifo":
        path = str(tmp_path / "mail.log")
        os.mkfifo(path)
    res, took, rss = _check("--log-file", path, "--state-dir", str(tmp_path / "st"), "-t", "2")
    assert res.returncode == 3 and took < 3.0 and rss < 80 * 1024
    assert res.stdout.startswith(f"POSTFIX BOUNCE RATE UNKNOWN - log file {path} is a ")
    assert "not a regular file" in res.stdout and "--journal" in res.stdout


def test_long_journal_entries_skipped_and_the_cursor_moves_past(tmp_path: Path) -> None:
    ok = json.dumps({"__CURSOR": "c1", "__REALTIME_TIMESTAMP": str(int(T0 * 1e6)),
                     "SYSLOG_IDENTIFIER": "postfix/smtp",
                     "MESSAGE": "ABC1: to=<u@d.example>, relay=x, delay=1, delays=1/0/0/0, "
                                "dsn=2.0.0, status=sent (ok)"})
    long = json.dumps({"__CURSOR": "c2", "__REALTIME_TIMESTAMP": str(int(T0 * 1e6)),
                       "SYSLOG_IDENTIFIER": "postfix/smtp", "MESSAGE": "x" * (2 * MAX_LINE)})
    (tmp_path / "entries").write_text(ok + "\n" + long + "\n")
    fake = tmp_path / "journalctl"
    fake.write_text("#!/bin/sh\ncase \"$*\" in *SYSLOG_IDENTIFIER*=*) cat "
                    f"{tmp_path}/entries ;; *) echo postfix/smtp ;; esac\n")
    fake.chmod(0o755)
    tally = Tally()
    reader = JournalReader(LineFeeder(tally, Clock(T0 + 60), None), None, 5,
                           journalctl=str(fake))
    cursor = reader.read(None, T0 - 3600)
    assert cursor == "c2" and reader.long_entries == 1
    assert sum(b[0] for b in tally.buckets.values()) == 1
    assert "skipped 1 journal entries longer than 64 KiB" in tally.notes
