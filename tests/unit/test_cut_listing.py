"""A listing cut by the deadline: lower bounds judged, never UNKNOWN where the read part proves
the state; bounded lines; the postqueue child dies with the check. Stand-in postqueues that list
slowly and then hang, as showq does on a storm-sized queue."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import nagiosplugin
import pytest

from fakes import fake_postqueue, slow_postqueue
from labproc import alive, wait_until
from postfix_queue_monitor import bounds, queue
from postfix_queue_monitor.errors import MonitorError
from postfix_queue_monitor.plugins import growth, oldest, queue_size
from postfix_queue_monitor.queue import parse_json_lines, read_queue

NOW = 1795966800.0   # 4102 s after the stand-in's arrival time
CHECK = os.path.join(os.path.dirname(sys.executable), "check_postfix_queue")


def run(main, argv, capsys, clock=NOW):
    started = time.monotonic()
    with pytest.raises(SystemExit) as exc:
        main(argv, clock=lambda: clock)
    elapsed = time.monotonic() - started
    out, err = capsys.readouterr()
    assert err == ""
    return exc.value.code, out, elapsed


@pytest.mark.parametrize("spec, lower, expect", [
    ("2000", 3000, True), ("2000", 1500, None), ("10:", 5, None), ("10:", 12, False),
    ("~:", 0, False), ("@1000:5000", 1500, None), ("@1000:5000", 6000, False),
    ("@1000:", 1500, True), ("@1000:", 10, None), ("10:20", 25, True), ("10:20", 15, None),
])
def test_what_a_lower_bound_proves(spec, lower, expect):
    assert bounds.proves(nagiosplugin.Range(spec), lower) is expect
    # cross-check against nagiosplugin's own match on values at and above the bound
    seen = {not nagiosplugin.Range(spec).match(x) for x in (lower, lower + 1, lower * 10 + 7,
                                                            1e12)}
    if expect is not None:
        assert seen == {expect}


def test_storm_critical_from_the_lower_bound_within_t(tmp_path, capsys):
    pidfile = tmp_path / "pid"
    pq = slow_postqueue(tmp_path, 3000, pidfile=pidfile)
    code, out, elapsed = run(queue_size.main, ["--postqueue", pq, "-c", "2000", "-t", "2"],
                             capsys)
    first = out.splitlines()[0]
    assert code == 2, out
    assert first.startswith("POSTFIX QUEUE CRITICAL - at least 3,000 messages queued (> 2000; "
                            "listing cut after 1.6 s)"), first
    assert "|" not in out           # lower bounds are no perfdata
    assert elapsed < 3.0
    child = int(pidfile.read_text())
    wait_until(lambda: not alive(child), 2.0, "the postqueue stand-in cut at -t to be gone")


def test_warning_proven_when_only_the_warning_end_is_passed(tmp_path, capsys):
    pq = slow_postqueue(tmp_path, 1500)
    code, out, _ = run(queue_size.main, ["--postqueue", pq, "-w", "1000", "-c", "2000", "-t",
                                         "1"], capsys)
    assert code == 1 and "WARNING - at least 1,500 messages queued (> 1000; listing cut" in out


@pytest.mark.parametrize("rng", ["2000", "@1000:5000", "2000:"])
def test_unknown_where_the_read_part_proves_nothing(tmp_path, capsys, rng):
    pq = slow_postqueue(tmp_path, 1500)
    code, out, _ = run(queue_size.main, ["--postqueue", pq, "-c", rng, "-t", "1"], capsys)
    first = out.splitlines()[0]
    assert code == 3, out
    assert first.startswith("POSTFIX QUEUE UNKNOWN - queue listing cut after 0.8 s (postqueue "
                            "killed at the deadline) at 1,500 messages: at least 1,500 messages "
                            f"queued decides nothing against -c {rng}"), first


def test_proven_critical_beats_an_undecided_queue(tmp_path, capsys):
    pq = slow_postqueue(tmp_path, 3000)
    code, out, _ = run(queue_size.main, ["--postqueue", pq, "--queue", "deferred", "--queue",
                                         "active", "-c", "2000", "-t", "1"], capsys)
    assert code == 2 and out.startswith("POSTFIX QUEUE CRITICAL - at least 3,000 deferred "
                                        "(> 2000; listing cut"), out


def test_lower_end_range_proven_ok_says_at_least(tmp_path, capsys):
    pq = slow_postqueue(tmp_path, 50)
    code, out, _ = run(queue_size.main, ["--postqueue", pq, "-c", "10:", "-t", "1", "-v"],
                       capsys)
    assert code == 0 and out.startswith("POSTFIX QUEUE OK - at least 50 messages queued "
                                        "(listing cut after 0.8 s)"), out
    assert "every count, size and age is a lower bound, no perfdata" in out


def test_oldest_age_is_a_lower_bound(tmp_path, capsys):
    pq = slow_postqueue(tmp_path, 10)
    code, out, _ = run(oldest.main, ["--postqueue", pq, "-w", "30m", "-c", "1h", "-t", "1"],
                       capsys)
    assert code == 2 and out.startswith("POSTFIX OLDEST CRITICAL - oldest deferred message is "
                                        "at least 1h 8m old (> 1h; listing cut"), out
    code, out, _ = run(oldest.main, ["--postqueue", pq, "-c", "2h", "-t", "1"], capsys)
    assert code == 3 and "decides nothing against -c 7200" in out


def test_growth_never_stores_a_cut_count(tmp_path, capsys):
    state = str(tmp_path / "state")
    small = tmp_path / "small"
    small.mkdir()
    complete = slow_postqueue(small, 100, hang=False)
    code, out, _ = run(growth.main, ["--postqueue", complete, "--state-dir", state, "-c", "500"],
                       capsys, clock=NOW - 3600)
    assert code == 0 and "waiting for baseline" in out
    cut = slow_postqueue(tmp_path, 2000)
    code, out, _ = run(growth.main, ["--postqueue", cut, "--state-dir", state, "-c", "500",
                                     "-t", "1"], capsys)
    assert code == 2 and out.startswith("POSTFIX GROWTH CRITICAL - deferred queue at least "
                                        "+1900/h (> 500; listing cut"), out
    # undecided: the rate read so far is below the range's end
    code, out, _ = run(growth.main, ["--postqueue", cut, "--state-dir", state, "-c", "5000",
                                     "-t", "1"], capsys)
    assert code == 3 and "decides nothing against -c ~:5000" in out
    # the next complete run still compares with the complete sample of an hour ago
    code, out, _ = run(growth.main, ["--postqueue", complete, "--state-dir", state, "-c", "500"],
                       capsys)
    assert code == 0 and "deferred queue 0/h, 100 deferred" in out, out


def test_growth_on_a_cut_listing_without_baseline_is_unknown(tmp_path, capsys):
    cut = slow_postqueue(tmp_path, 2000)
    state = str(tmp_path / "state")
    code, out, _ = run(growth.main, ["--postqueue", cut, "--state-dir", state, "-c", "500",
                                     "-t", "1"], capsys)
    assert code == 3 and "no complete sample to compare with" in out
    assert not [f for f in os.listdir(state) if f.startswith("growth") and
                not f.endswith(".lock")]


def test_a_hung_postqueue_that_listed_nothing_stays_the_old_unknown(tmp_path, capsys):
    pq = slow_postqueue(tmp_path, 0)
    code, out, elapsed = run(queue_size.main, ["--postqueue", pq, "-c", "10", "-t", "1"], capsys)
    assert code == 3 and "did not finish within" in out and "before listing anything" in out
    assert elapsed < 2.0


def test_a_huge_line_is_skipped_and_counted(tmp_path):
    pq = slow_postqueue(tmp_path, 20, hang=False, long_line=300 * 1024 * 1024)
    snap = read_queue(pq, None, 20.0, NOW)
    assert not snap.cut and snap.stats("total").messages == 20 and snap.long_lines == 1


def test_a_huge_line_costs_bounded_memory_and_answers_within_t(tmp_path):
    """A 2 GB line under -t 4: the check answers in time, RSS stays small (measured in a child
    process, whose peak RSS is its own)."""
    pq = slow_postqueue(tmp_path, 0, hang=False, long_line=2 * 1024 ** 3)
    code = ("import resource, subprocess, sys\n"
            f"p = subprocess.run([{CHECK!r}, '--postqueue', {pq!r}, '-t', '4'], "
            "capture_output=True, text=True)\n"
            "print(p.returncode, p.stdout.splitlines()[0])\n"
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n")
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=30).stdout.splitlines()
    elapsed = time.monotonic() - started
    assert elapsed < 5.5, out
    assert out[0].startswith("3 POSTFIX QUEUE UNKNOWN"), out
    assert "1 line(s) longer than 64 KiB" in out[0], out
    assert int(out[1]) < 80 * 1024, out          # KiB: the check never held the line


def test_postqueue_dies_when_the_checks_process_group_is_killed(tmp_path):
    """NRPE/Icinga kill the plugin's process group with SIGKILL on their own timeout: the
    listing child must not live on with PPID 1."""
    pidfile = tmp_path / "pid"
    pq = slow_postqueue(tmp_path, 10, pidfile=pidfile)
    check = subprocess.Popen([CHECK, "--postqueue", pq, "-t", "60"], start_new_session=True,
                             stdout=subprocess.DEVNULL)
    give_up = time.monotonic() + 10
    while not (pidfile.exists() and pidfile.read_text()) and time.monotonic() < give_up:
        time.sleep(0.02)
    child = int(pidfile.read_text())
    os.killpg(check.pid, signal.SIGKILL)
    check.wait()
    wait_until(lambda: not alive(child), 2.0, "the postqueue stand-in to die with its check")




def _distinct_long_texts(n: int) -> list[bytes]:
    """``postqueue -j`` lines whose delay reasons are all different and ~650 characters long
    (nothing for the memo to share: each is classified on its own, ~0.15 ms here)."""
    words = " ".join(f"word{j}" for j in range(70))
    return [json.dumps({
        "queue_name": "deferred", "queue_id": f"Q{i:07d}", "arrival_time": int(NOW) - 600,
        "message_size": 1000, "forced_expire": False, "sender": "s@example.org",
        "recipients": [{"address": f"u{i}@example.net", "delay_reason":
                        "host mx.example.net[192.0.2.1] said: 550-5.1.1 The email account that "
                        f"you tried to reach does not exist. 550-5.1.1 Reference R{i:08d} "
                        f"{words} (in reply to RCPT TO command)"}]}).encode() + b"\n"
            for i in range(n)]


@pytest.mark.parametrize("fast", [False, True])
def test_classifying_stops_at_the_deadline_and_cuts_the_snapshot(fast):
    """Classifying every distinct text is the one cost a listing's length does not bound: past
    the deadline (``stop``) the rest are dropped and the snapshot is cut, not classified on."""
    lines = _distinct_long_texts(300)
    whole = parse_json_lines(lines, NOW, fast=fast)
    assert not whole.cut and whole.deferred_classes == {"recipient_unknown": 300}
    calls = 0

    def stop() -> bool:
        nonlocal calls
        calls += 1
        return calls > 120
    snap = parse_json_lines(lines, NOW, fast=fast, stop=stop)
    if fast:        # the fast path classifies as it reads: the deadline ends the reading there
        assert not snap.cut and snap.deferred_classes == whole.deferred_classes
        return
    assert snap.cut
    assert snap.stats("deferred").messages == 300            # read whole, classified in part
    assert snap.deferred_classes == {"recipient_unknown": 120}


@pytest.mark.parametrize("fast", [False, True], ids=["json", "fast-path"])
def test_a_listing_of_distinct_long_texts_is_judged_within_t_not_timed_out(tmp_path, capsys,
                                                                           monkeypatch, fast):
    """40,000 distinct 650-character reasons listed at once take ~6 s to classify: the check
    answers from what it classified by its deadline (CRITICAL, lower bounds), not with
    nagiosplugin's bare 'Timeout: check execution aborted' (what it did before). The fast path
    (the default without orjson, as in the Debian package) classifies while it reads: there
    the deadline cuts the reading."""
    if fast:
        monkeypatch.setattr(queue, "_loads", json.loads)
    listing = tmp_path / "listing.jsonl"
    listing.write_bytes(b"".join(_distinct_long_texts(40_000)))
    pq = tmp_path / "postqueue"
    pq.write_text(f"#!/bin/sh\nexec cat {listing}\n")
    pq.chmod(0o755)
    code, out, elapsed = run(queue_size.main, ["--postqueue", str(pq), "-c", "20", "-t", "2"],
                             capsys)
    assert code == 2, out
    assert out.startswith("POSTFIX QUEUE CRITICAL - at least "), out
    assert elapsed < 2.0, elapsed


# -- a complete listing whose classifying was cut: postqueue's own verdict still counts --------

#: what a postqueue that failed after listing said (exit code, stderr's last line)
FAILED_AFTER_LISTING = (75, "postqueue: fatal: malformed showq server response")


def _classifying_out_of_time(monkeypatch) -> None:
    """read_queue's -j listings are read whole, but the time to classify their reason texts is
    up at once (fold's ``stop``): the snapshot is cut although postqueue finished by itself."""
    real = queue.parse_json_lines
    monkeypatch.setattr(queue, "parse_json_lines", lambda lines, now, hist, stop: real(
        lines, now, hist, fast=False, stop=lambda: True))


@pytest.mark.parametrize("classifying_cut", [False, True], ids=["classified", "cut"])
def test_postqueue_failing_after_its_listing_is_reported_even_when_classifying_is_cut(
        tmp_path, monkeypatch, classifying_cut):
    """A postqueue that exited non-zero after a complete listing is the same one-line error
    whether or not classifying its texts ran out of time (it was returned as a cut snapshot,
    its exit code and stderr never looked at)."""
    listing = tmp_path / "listing.jsonl"
    listing.write_bytes(b"".join(_distinct_long_texts(5)))
    rc, fatal = FAILED_AFTER_LISTING
    pq = fake_postqueue(tmp_path, j=listing, rc=rc, stderr=fatal)
    if classifying_cut:
        _classifying_out_of_time(monkeypatch)
    with pytest.raises(MonitorError) as exc:
        read_queue(pq, None, 5.0, NOW, allow_cut=True)
    assert str(exc.value) == f"postqueue exited {rc}: {fatal}"


def test_a_failing_postqueue_with_classifying_cut_makes_the_check_unknown(tmp_path, monkeypatch,
                                                                          capsys):
    listing = tmp_path / "listing.jsonl"
    listing.write_bytes(b"".join(_distinct_long_texts(5)))
    rc, fatal = FAILED_AFTER_LISTING
    pq = fake_postqueue(tmp_path, j=listing, rc=rc, stderr=fatal)
    _classifying_out_of_time(monkeypatch)
    code, out, _ = run(queue_size.main, ["--postqueue", pq, "-c", "2"], capsys)
    assert (code, out) == (3, f"POSTFIX QUEUE UNKNOWN - postqueue exited {rc}: {fatal}\n")


def test_postfix_down_warning_kept_when_classifying_is_cut(tmp_path, monkeypatch, capsys):
    """Root's postqueue reads the queue directly when Postfix is down (exit 0, a warning):
    said on the first line as for a classified listing, the figures as lower bounds."""
    listing = tmp_path / "listing.jsonl"
    listing.write_bytes(b"".join(_distinct_long_texts(5)))
    pq = fake_postqueue(tmp_path, j=listing, stderr=(
        "postqueue: warning: Mail system is down -- accessing queue directly (Connect to the "
        "Postfix showq service: Connection refused)"))
    _classifying_out_of_time(monkeypatch)
    snap = read_queue(pq, None, 5.0, NOW, allow_cut=True)
    assert snap.cut and snap.stats("deferred").messages == 5
    assert snap.warnings == ["postqueue: mail system is down, the queue was read directly "
                             "(start Postfix)"]
    code, out, _ = run(queue_size.main, ["--postqueue", pq, "-c", "2"], capsys)
    assert code == 2
    assert out.startswith("POSTFIX QUEUE CRITICAL - at least 5 messages queued (> 2; listing cut "
                          "after "), out
    assert out.splitlines()[0].endswith("(postqueue: mail system is down, the queue was read "
                                        "directly (start Postfix))"), out
