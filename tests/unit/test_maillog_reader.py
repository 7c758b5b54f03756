"""The rotation-aware reader and the windowed state: every rotation mode, partial lines, the
first run's window, no line lost or counted twice."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import time
from pathlib import Path

import pytest

from postfix_queue_monitor import deliveries as D
from postfix_queue_monitor.errors import MonitorError
from postfix_queue_monitor.state import StateDir

T0 = time.mktime((2026, 11, 29, 15, 0, 0, 0, 0, -1))


class Log:
    """A mail log being written: each line is one recipient's status at a given time."""

    def __init__(self, path: Path):
        self.path = path
        self.n = 0

    @staticmethod
    def line(ts: float, st: str = "sent", n: int = 0) -> bytes:
        stamp = time.strftime("%b %e %H:%M:%S", time.localtime(ts)).encode()
        return (stamp + b" vm postfix/smtp[1]: ABC%d: to=<u%d@d.example>, relay=x[1.2.3.4]:25, "
                b"delay=1, delays=1/0/0/0, dsn=2.0.0, status=%s (text %d)\n"
                % (n, n, st.encode(), n))

    def write(self, count: int, ts: float, st: str = "sent", path: Path | None = None) -> None:
        with open(path or self.path, "ab") as fh:
            for _ in range(count):
                self.n += 1
                fh.write(self.line(ts, st, self.n))


@pytest.fixture
def log(tmp_path) -> Log:
    return Log(tmp_path / "mail.log")


def measure(log: Log, now: float, window: float = 3600, **kw) -> D.DeliveryStats:
    return D.measure_deliveries(str(log.path), False, None, window, str(log.path.parent / "st"),
                                now, 5, **kw)


def test_incremental_reads_only_new_lines(log):
    log.write(5, T0 - 60)
    st = measure(log, T0)
    assert (st.sent, st.lines_read, st.first_run) == (5, 5, True)
    st = measure(log, T0 + 1)
    assert (st.sent, st.lines_read, st.first_run) == (5, 0, False)
    log.write(3, T0 + 10, "bounced")
    st = measure(log, T0 + 20)
    assert (st.sent, st.bounced, st.lines_read) == (5, 3, 3)
    assert st.bounce_rate == pytest.approx(100 * 3 / 8, abs=1e-3)


def test_window_slides_counts_age_out(log):
    log.write(5, T0 - 60)
    assert measure(log, T0).sent == 5
    log.write(2, T0 + 1800)
    assert measure(log, T0 + 1800).sent == 7
    assert measure(log, T0 + 3600 + 120).sent == 2     # the first five left the window
    assert measure(log, T0 + 3 * 3600).sent == 0


def test_half_written_last_line_completed_later(log):
    log.write(2, T0 - 30)
    full = Log.line(T0 - 20, "bounced", 99)
    with open(log.path, "ab") as fh:
        fh.write(full[:40])
    st = measure(log, T0)
    assert (st.sent, st.bounced) == (2, 0)
    with open(log.path, "ab") as fh:
        fh.write(full[40:])
    st = measure(log, T0 + 5)
    assert (st.sent, st.bounced, st.lines_read) == (2, 1, 1)


def test_first_run_reads_only_the_window_by_binary_search(log):
    # ~16 MB of lines a day old, then 4 lines inside the window
    old = b"".join(Log.line(T0 - 86400 + i, "sent", i) for i in range(2000))
    with open(log.path, "wb") as fh:
        for _ in range(80):
            fh.write(old)
    log.write(4, T0 - 120, "deferred")
    size = log.path.stat().st_size
    st = measure(log, T0)
    assert st.deferred == 4 and st.sent == 0
    assert st.lines_read < 2000, st.lines_read       # a probe block, not the file
    assert size > 10_000_000


def rotate_rename(log: Log, to: str) -> Path:
    target = log.path.with_name(to)
    os.rename(log.path, target)
    return target


def test_rename_rotation_with_late_writes_to_old_file(log):
    log.write(3, T0 - 60)
    assert measure(log, T0).sent == 3
    log.write(2, T0 + 10)
    old = rotate_rename(log, "mail.log.1")
    log.write(1, T0 + 20, "bounced", path=old)     # the writer still had the old file open
    log.write(4, T0 + 30)                          # the new file
    st = measure(log, T0 + 60)
    assert (st.sent, st.bounced) == (3 + 2 + 4, 1)
    assert st.lines_read == 2 + 1 + 4
    assert any("finished" in n and "mail.log.1" in n for n in st.notes), st.notes
    log.write(1, T0 + 70)
    assert measure(log, T0 + 80).sent == 10


@pytest.mark.parametrize("name", ["mail.log.1.gz", "mail.log-20261129.gz"])
def test_rename_then_compress(log, name):
    log.write(3, T0 - 60)
    assert measure(log, T0).sent == 3
    log.write(2, T0 + 10, "deferred")
    with open(log.path, "rb") as src, gzip.open(log.path.with_name(name), "wb") as dst:
        shutil.copyfileobj(src, dst)
    log.path.unlink()
    log.write(4, T0 + 30)
    st = measure(log, T0 + 60)
    assert (st.sent, st.deferred, st.lines_read) == (7, 2, 6)


def test_delaycompress_two_rotations(log):
    log.write(3, T0 - 60)
    assert measure(log, T0).sent == 3
    log.write(1, T0 + 10)
    rotate_rename(log, "mail.log.1")               # first rotation: plain .1
    log.write(2, T0 + 20)
    assert measure(log, T0 + 30).sent == 6
    log.write(1, T0 + 40)
    # second rotation: .1 -> .2.gz, mail.log -> .1, new mail.log
    with open(log.path.with_name("mail.log.1"), "rb") as s, \
            gzip.open(log.path.with_name("mail.log.2.gz"), "wb") as d:
        shutil.copyfileobj(s, d)
    rotate_rename(log, "mail.log.1")
    log.write(5, T0 + 50)
    st = measure(log, T0 + 60)
    assert (st.sent, st.lines_read) == (12, 6)


def test_two_rotations_between_runs(log):
    log.write(3, T0 - 60)
    assert measure(log, T0).sent == 3
    log.write(1, T0 + 10)
    first = rotate_rename(log, "mail.log-20261129")
    os.utime(first, (T0 + 10, T0 + 10))
    log.write(2, T0 + 20)
    second = rotate_rename(log, "mail.log-20261130")
    os.utime(second, (T0 + 20, T0 + 20))
    log.write(4, T0 + 30)
    st = measure(log, T0 + 60)
    assert (st.sent, st.lines_read) == (10, 7)


@pytest.mark.parametrize("compress", [False, True])
def test_copytruncate(log, compress):
    log.write(3, T0 - 60)
    assert measure(log, T0).sent == 3
    log.write(2, T0 + 10, "bounced")
    name = "mail.log.1.gz" if compress else "mail.log.1"
    opener = gzip.open if compress else open
    with open(log.path, "rb") as s, opener(log.path.with_name(name), "wb") as d:
        shutil.copyfileobj(s, d)
    ino = log.path.stat().st_ino
    with open(log.path, "r+b") as fh:
        fh.truncate(0)
    assert log.path.stat().st_ino == ino
    log.write(1, T0 + 30)
    st = measure(log, T0 + 60)
    assert (st.sent, st.bounced, st.lines_read) == (4, 2, 3)
    assert any("copytruncate" in n for n in st.notes)


def test_copytruncate_grown_past_old_offset_detected_by_fingerprint(log):
    log.write(3, T0 - 60)
    assert measure(log, T0).sent == 3
    shutil.copy(log.path, log.path.with_name("mail.log.1"))
    with open(log.path, "r+b") as fh:
        fh.truncate(0)
    log.write(6, T0 + 30, "deferred")              # bigger than before: size alone would lie
    st = measure(log, T0 + 60)
    assert (st.sent, st.deferred) == (3, 6)


def test_rotated_old_file_gone_counts_new_and_says_so(log):
    log.write(3, T0 - 60)
    assert measure(log, T0).sent == 3
    log.path.unlink()
    log.write(2, T0 + 30)
    st = measure(log, T0 + 60)
    assert st.sent == 5
    assert any("not found" in n for n in st.notes)


def test_first_run_after_recent_rotation_reads_tail_of_rotated_file(log):
    log.write(2, T0 - 7200, path=log.path.with_name("mail.log.1"))
    log.write(3, T0 - 1200, path=log.path.with_name("mail.log.1"))
    log.write(4, T0 - 60)
    st = measure(log, T0)
    assert st.sent == 7


def test_position_and_counts_in_one_state_file(log):
    log.write(3, T0 - 60)
    measure(log, T0)
    files = [p for p in (log.path.parent / "st").iterdir() if p.name.endswith(".json")]
    assert len(files) == 1 and oct(files[0].stat().st_mode & 0o777) == "0o600"
    doc = json.loads(files[0].read_text())
    assert doc["kind"] == D.STATE_KIND
    assert doc["data"]["position"]["offset"] == log.path.stat().st_size
    assert sum(b[0] for b in doc["data"]["buckets"].values()) == 3


def test_failed_run_commits_nothing(log, monkeypatch):
    log.write(3, T0 - 60)
    measure(log, T0)
    log.write(2, T0 + 10)

    def boom(*a, **k):
        raise MonitorError("computing failed")
    monkeypatch.setattr(D, "stats_of", boom)
    with pytest.raises(MonitorError):
        measure(log, T0 + 20)
    monkeypatch.undo()
    st = measure(log, T0 + 30)
    assert (st.sent, st.lines_read) == (5, 2)       # the two lines were not lost


def test_corrupt_state_is_unknown_then_fresh(log):
    log.write(3, T0 - 60)
    measure(log, T0)
    sf = next(p for p in (log.path.parent / "st").iterdir() if p.name.endswith(".json"))
    sf.write_text("{broken")
    with pytest.raises(MonitorError, match="corrupt.*moved it to"):
        measure(log, T0 + 1)
    assert measure(log, T0 + 2).sent == 3           # fresh baseline: the window again


def test_locked_state_is_unknown(log):
    log.write(1, T0 - 60)
    name = D.state_name(str(log.path), None, 3600)
    with StateDir(str(log.path.parent / "st")).locked(name, 1):
        with pytest.raises(MonitorError, match="locked by another run"):
            D.measure_deliveries(str(log.path), False, None, 3600, str(log.path.parent / "st"),
                                 T0, 1)


def test_missing_log_is_unknown_with_fix(tmp_path):
    with pytest.raises(MonitorError, match=r"does not exist \(pass --log-file"):
        D.measure_deliveries(str(tmp_path / "nope.log"), False, None, 3600, str(tmp_path), T0, 5)


def test_syslog_name_filters_instances(log):
    with open(log.path, "ab") as fh:
        fh.write(Log.line(T0 - 60).replace(b"postfix/smtp", b"postfix-out/smtp"))
        fh.write(Log.line(T0 - 60).replace(b"postfix/smtp", b"postfix/relay/smtp"))
    st = D.measure_deliveries(str(log.path), False, "postfix", 3600, str(log.path.parent / "a"),
                              T0, 5)
    assert st.sent == 1
    st = D.measure_deliveries(str(log.path), False, None, 3600, str(log.path.parent / "b"),
                              T0, 5)
    assert st.sent == 2


def _measure_in_child(args):
    path, state, now = args
    st = D.measure_deliveries(path, False, None, 3600, state, now, 20)
    return st.sent, st.lines_read


def test_concurrent_runs_never_count_twice(log):
    """Eight runs at once on the same log and state: the lock serialises read-and-update, so
    exactly one reads the lines and every run reports the same window."""
    import multiprocessing
    log.write(50, T0 - 60)
    state = str(log.path.parent / "st")
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(8) as pool:
        results = pool.map(_measure_in_child, [(str(log.path), state, T0 + i) for i in range(8)])
    assert all(sent == 50 for sent, _ in results), results
    assert sum(read for _, read in results) == 50, results


def test_first_run_on_empty_current_file_reads_rotated_tail(log):
    log.write(3, T0 - 600, path=log.path.with_name("mail.log.1"))
    log.path.touch()
    assert measure(log, T0).sent == 3


def test_rfc3339_log_first_run_window_and_incremental(log):
    def rfc(ts: float, n: int, st: str = "sent") -> bytes:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S.123456+00:00", time.gmtime(ts)).encode()
        return Log.line(ts, st, n).split(b" vm ", 1)[1].join([stamp + b" vm ", b""])
    with open(log.path, "wb") as fh:
        for i in range(30000):
            fh.write(rfc(T0 - 86400 + i, i, "bounced"))
        for i in range(5):
            fh.write(rfc(T0 - 300 + i, i))
    st = measure(log, T0)
    assert (st.sent, st.bounced) == (5, 0) and st.lines_read < 3000
    with open(log.path, "ab") as fh:
        fh.write(rfc(T0 + 5, 99, "deferred"))
    st = measure(log, T0 + 10)
    assert (st.sent, st.deferred, st.lines_read) == (5, 1, 1)
