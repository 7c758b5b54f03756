"""State files under faults (issue 16, items 1, 2, 4, 5, 12 and issue 15.1): wrongly typed files,
write errors on real read-only and full file systems, overlapping growth runs, windows shared by
consumers, odd files where a state file belongs."""

from __future__ import annotations

import json
import multiprocessing
import os
import stat
import time
from pathlib import Path

import pytest

from fakes import fake_postqueue
from postfix_queue_monitor import growth as G
from postfix_queue_monitor.plugins import bounce
from postfix_queue_monitor.plugins import growth as growth_check
from postfix_queue_monitor.state import StateDir, StateError
from postfix_queue_monitor.zabbix.cli import main as zabbix_main

NOW = 1795966800.0


def run(main, argv, capsys, clock=NOW) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exc:
        main(argv, clock=lambda: clock)
    out, err = capsys.readouterr()
    assert err == ""
    return exc.value.code, out


@pytest.fixture
def pq50(tmp_path, fixtures) -> str:
    d = tmp_path / "pq50"
    d.mkdir()
    return fake_postqueue(d, j=fixtures / "deferred-50-four-reasons.jsonl")


@pytest.fixture
def pq10(tmp_path, fixtures) -> str:
    d = tmp_path / "pq10"
    d.mkdir()
    return fake_postqueue(d, j=fixtures / "deferred-10-first-of-50.jsonl")


def _doc(kind: str, data: object) -> str:
    return json.dumps({"kind": kind, "version": 1, "data": data})


# -- 1. wrongly typed state files: UNKNOWN once, saying what was lost, then afresh ---------------

@pytest.mark.parametrize("data,why", [
    ({"samples": 5}, "samples is int, not a list"),
    ({"samples": [[1, "x"]]}, "sample 0 count is str, not an integer"),
    ({"samples": [[1e400, 3]]}, "sample 0 time"),
    ({"samples": [[1, -3]]}, "sample 0 count -3 is out of range"),
    ({"samples": [], "windows": {"x": 1}}, "window 'x' is not a number"),
])
def test_wrongly_typed_growth_state_is_unknown_once(tmp_path, pq50, capsys, data, why) -> None:
    """Before: {"samples": 5} gave 'TypeError: 'int' object is not iterable' on every run."""
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / "growth-default.json").write_text(_doc("growth", data))
    code, out = run(growth_check.main, ["--postqueue", pq50, "--state-dir", str(state)], capsys)
    assert code == 3 and len(out.splitlines()) == 1
    assert "growth-default.json is corrupt" in out and why in out
    assert "the growth samples lost, the next run starts afresh" in out
    code, out = run(growth_check.main, ["--postqueue", pq50, "--state-dir", str(state)], capsys)
    assert code == 0 and "waiting for baseline" in out


def test_deeply_nested_state_is_corrupt_not_a_recursion_error(tmp_path, pq50, capsys) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / "growth-default.json").write_text(
        '{"kind":"growth","version":1,"data":{"samples":' + "[" * 200_000 + "]" * 200_000 + "}}")
    code, out = run(growth_check.main, ["--postqueue", pq50, "--state-dir", str(state)], capsys)
    assert code == 3 and "is corrupt (nested too deeply)" in out


def test_zabbix_json_still_sends_the_queue_with_a_bad_growth_state(tmp_path, pq50,
                                                                   capsys) -> None:
    """Before: `postfix_queue_zabbix json` died on the same file: no queue value at all."""
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / "growth-default.json").write_text(_doc("growth", {"samples": 5}))
    log = tmp_path / "mail.log"
    log.write_text("")
    code = zabbix_main(["json", "--postqueue", pq50, "--state-dir", str(state),
                        "--log-file", str(log)])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc["queue"]["deferred"]["messages"] == 50
    assert "growth: state file" in doc["meta"]["error"] and "is corrupt" in doc["meta"]["error"]


def _bounce_state(tmp_path: Path, capsys) -> tuple[list[str], Path]:
    log = tmp_path / "mail.log"
    log.write_text("")
    state = tmp_path / "bstate"
    argv = ["--log-file", str(log), "--state-dir", str(state)]
    run(bounce.main, argv, capsys)
    return argv, next(p for p in state.iterdir() if p.name.startswith("bounce-")
                      and p.name.endswith(".json"))


@pytest.mark.parametrize("change,why", [
    (lambda d: d["position"].update(offset=-1), "position offset -1 is out of range"),
    (lambda d: d["position"].update(fp_len=10 ** 12), "position fingerprint length"),
    (lambda d: d.update(buckets={"1795966800": [1, 2, 3]}), "has 3 fields, not 6"),
    (lambda d: d.update(buckets={"1795966800": [1, 2, 3, "4", {}, {}]}), "count is str"),
    (lambda d: d.update(texts={"b:x": "y"}), "text b:x is str, not a list"),
    # found by make fuzz: a sample with a line break made the UNKNOWN two lines
    (lambda d: d.update(unreadable=[1, 1, "a\nb", 1795963200]), "sample holds a line break"),
    # and a key with a line break, quoted in the reason
    (lambda d: d.update(texts={"\n": ["", 0.5]}), "text \\n minute is float"),
])
def test_wrongly_typed_bounce_state_is_unknown_once(tmp_path, capsys, change, why) -> None:
    """Before: a position offset of -1 gave 'OSError: [Errno 22]' on every run."""
    argv, path = _bounce_state(tmp_path, capsys)
    doc = json.loads(path.read_text())
    change(doc["data"])
    path.write_text(json.dumps(doc))
    code, out = run(bounce.main, argv, capsys)
    assert code == 3 and len(out.splitlines()) == 1 and why in out, out
    assert "the log position and the window's delivery counts lost" in out
    code, out = run(bounce.main, argv, capsys)
    assert code == 0, out


# -- 2. write errors: one line naming the file and the fix -----------------------------------

def test_read_only_state_dir_is_unknown_with_the_fix(ro_dir, pq50, capsys) -> None:
    """Before: 'UNKNOWN: PermissionError: … .tmp' (no check name, no fix)."""
    code, out = run(growth_check.main, ["--postqueue", pq50, "--state-dir", ro_dir], capsys)
    assert code == 3 and len(out.splitlines()) == 1
    assert out.startswith("POSTFIX GROWTH UNKNOWN - cannot open lock file ")
    assert "growth-default.json.lock: Read-only file system" in out
    assert "pass --state-dir DIR on a writable one" in out


def test_full_disk_is_unknown_with_the_fix(full_dir, pq50, capsys) -> None:
    """Before: 'OSError: [Errno 28] No space left on device' raw."""
    code, out = run(growth_check.main, ["--postqueue", pq50, "--state-dir", full_dir], capsys)
    assert code == 3 and len(out.splitlines()) == 1
    assert f"cannot write state file {full_dir}/growth-default.json: No space left" in out
    assert "free space on the file system" in out
    assert not [n for n in os.listdir(full_dir) if n.endswith(".tmp")]


def test_zabbix_json_goes_out_with_meta_error_on_a_read_only_state_dir(ro_dir, pq50, tmp_path,
                                                                     capsys) -> None:
    log = tmp_path / "mail.log"
    log.write_text("")
    code = zabbix_main(["json", "--postqueue", pq50, "--state-dir", ro_dir,
                        "--log-file", str(log)])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc["queue"]["total"]["messages"] == 50
    assert "growth: cannot open lock file" in doc["meta"]["error"]
    assert "deliveries: cannot open lock file" in doc["meta"]["error"]
    assert "Read-only file system" in doc["meta"]["error"]


# -- 12. odd things where a state file or its dir belongs -------------------------------------

def test_fifo_as_state_file_does_not_hang(tmp_path) -> None:
    d = StateDir(str(tmp_path / "s"))
    d.ensure()
    os.mkfifo(d.file("x.json"))
    started = time.monotonic()
    with d.locked("x.json", 1) as sf, pytest.raises(StateError, match="not a regular file"):
        sf.read("k")
    assert time.monotonic() - started < 1
    with d.locked("x.json", 1) as sf:
        assert sf.read("k") is None


def test_symlink_message_says_moved_not_removed(tmp_path) -> None:
    d = StateDir(str(tmp_path / "s"))
    d.ensure()
    os.symlink(tmp_path / "elsewhere", d.file("x.json"))
    with d.locked("x.json", 1) as sf, pytest.raises(StateError) as exc:
        sf.read("k")
    assert "removed" not in str(exc.value) and "moved it to " in str(exc.value)
    assert any(n.startswith("x.json.corrupt-") for n in os.listdir(d.path))


def test_parent_dirs_not_world_writable_under_umask_000(tmp_path) -> None:
    old = os.umask(0)
    try:
        StateDir(str(tmp_path / "a" / "b" / "state")).ensure()
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "a").st_mode) == 0o755
    assert stat.S_IMODE(os.stat(tmp_path / "a" / "b").st_mode) == 0o755
    assert stat.S_IMODE(os.stat(tmp_path / "a" / "b" / "state").st_mode) == 0o700


# -- 4, 5. growth runs that overlap or come too close ----------------------------------------

def _one_growth_run(path: str, n: int, barrier, out) -> None:
    barrier.wait()
    g = G.measure_growth(path, None, n, time.time(), time.time, 900.0, lock_deadline=30)
    out.put(g.note)


def test_32_concurrent_growth_runs_keep_every_sample(tmp_path) -> None:
    """Before: 15 of 32 concurrent runs said 'clock went backwards'; 5 of 33 samples kept."""
    path = str(tmp_path / "s")
    G.measure_growth(path, None, 0, time.time() - 600, time.time, 900.0)   # a baseline
    ctx = multiprocessing.get_context("fork")
    barrier, out = ctx.Barrier(32), ctx.Queue()
    procs = [ctx.Process(target=_one_growth_run, args=(path, i, barrier, out))
             for i in range(32)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert all(p.exitcode == 0 for p in procs)
    notes = [out.get(timeout=5) for _ in procs]
    assert not [n for n in notes if "backwards" in n]
    doc = json.loads((tmp_path / "s" / "growth-default.json").read_text())
    samples = doc["data"]["samples"]
    assert len(samples) == 33
    assert sorted(n for _, n in samples[1:]) == list(range(32))
    assert [t for t, _ in samples] == sorted(t for t, _ in samples)


def test_runs_a_fraction_of_a_second_apart_do_not_page(tmp_path, pq10, pq50, capsys) -> None:
    """Before: 10 then 50 deferred 0.2 s apart → CRITICAL +720000/h."""
    state = str(tmp_path / "state")
    run(growth_check.main, ["--postqueue", pq10, "--state-dir", state, "-c", "500"], capsys)
    code, out = run(growth_check.main, ["--postqueue", pq50, "--state-dir", state, "-c", "500"],
                    capsys, clock=NOW + 0.2)
    assert code == 0 and "waiting: samples only 0.2 s apart" in out
    code, out = run(growth_check.main, ["--postqueue", pq50, "--state-dir", state, "-c", "500"],
                    capsys, clock=NOW + 120)
    assert code == 2 and "+1200/h" in out            # 10 → 50 in 2 minutes: a real rate


# -- issue 15.1: a 15-minute and a 1-hour consumer on one state dir ---------------------------

def test_15m_and_1h_consumers_share_a_state_dir_and_each_gets_its_rate(tmp_path) -> None:
    """Before: the 15-minute sender pruned the samples the 1-hour check needs; its '1 h'
    growth was computed against a ~17-minute-old sample (0/h here instead of 120/h)."""
    path = str(tmp_path / "s")

    def deferred(minute: int) -> int:          # +4 a minute for half an hour, then flat
        return 100 + 4 * min(minute, 30)

    hour = G.measure_growth(path, None, deferred(0), NOW, lambda: NOW, 3600.0)
    assert hour.rate is None
    for minute in range(1, 61):               # the sender, every minute, 15 min window
        fifteen = G.measure_growth(path, None, deferred(minute), NOW + 60 * minute,
                                   lambda m=minute: NOW + 60 * m, 900.0)
    assert fifteen.rate == pytest.approx(0.0)
    hour = G.measure_growth(path, None, deferred(60), NOW + 3601, lambda: NOW + 3601, 3600.0)
    assert hour.ref == (NOW + 1 * 60, deferred(1))       # the oldest sample inside the hour
    assert hour.rate == pytest.approx((deferred(60) - deferred(1)) / 3541 * 3600)
    fifteen = G.measure_growth(path, None, deferred(60), NOW + 3630, lambda: NOW + 3630, 900.0)
    assert fifteen.rate == pytest.approx(0.0)


def test_shared_listing_on_a_full_disk_still_answers(full_dir, pq50, capsys) -> None:
    """state.py now says a failed write as a StateError: the shared listing's 'not stored'
    warning must still catch it (before: the check went UNKNOWN)."""
    from postfix_queue_monitor.plugins import queue_size

    code, out = run(queue_size.main, ["--postqueue", pq50, "--state-dir", full_dir,
                                      "--listing-max-age", "30"], capsys)
    assert code == 0 and out.startswith("POSTFIX QUEUE OK - 50 messages"), out


def test_growth_lock_wait_comes_out_of_what_the_listing_left(tmp_path, capsys, monkeypatch,
                                                           fixtures) -> None:
    """A 4.5 s listing under -t 6, the growth lock held by a hung run: the wait is the share
    of what is left (0.5 s), so the check names the lock within -t. Before: a fresh 6 s budget
    gave the lock 2 s, past -t, and nagiosplugin's bare 'Timeout: check execution aborted'.

    The listing's 4.5 s are the run's own clock jumping when the listing returns (its Deadline
    runs on a clock that is the monotonic one plus that jump), not 4.5 s of a slow postqueue:
    the run takes the lock wait's real 0.5 s, and the end is read off the run's clock, not off
    a margin against nagiosplugin's alarm. The lock, its wait and the listing child are real."""
    from postfix_queue_monitor import listing
    from postfix_queue_monitor.deadline import Deadline
    from postfix_queue_monitor.plugins import common

    jump = [0.0]
    made: list[Deadline] = []

    def run_clock() -> float:
        return time.monotonic() + jump[0]

    def deadline(seconds: float) -> Deadline:
        made.append(Deadline(seconds, run_clock))
        return made[-1]

    real_for_run = listing.for_run

    def for_run(*args, **kw):
        snap = real_for_run(*args, **kw)
        jump[0] += 4.5                      # the listing took 4.5 s of the run's budget
        return snap

    monkeypatch.setattr(common, "Deadline", deadline)
    monkeypatch.setattr(listing, "for_run", for_run)
    pq = fake_postqueue(tmp_path, j=fixtures / "deferred-50-four-reasons.jsonl")
    state = tmp_path / "state"
    with StateDir(str(state)).locked("growth-default.json", 1):
        code, out = run(growth_check.main, ["--postqueue", pq, "--state-dir", str(state),
                                            "-t", "6"], capsys)
    assert code == 3, out              # the named lock, not nagiosplugin's alarm at -t
    assert "growth-default.json is locked by another run for over 0.5 s" in out, out
    (d,) = made
    assert jump[0] == 4.5 and d.seconds == 6
    assert not d.expired(), d          # answered within -t on the run's own clock
