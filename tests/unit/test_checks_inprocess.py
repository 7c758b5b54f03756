"""Each check's main(argv) run in-process with a fixed clock against stand-in postqueues."""

from __future__ import annotations

import os
import time

import pytest

from fakes import fake_postqueue
from postfix_queue_monitor.plugins import growth, oldest, queue_size

NOW = 1795966800.0  # 2026-11-29 15:40:00 UTC
@pytest.fixture
def real50(tmp_path, fixtures):
    return fake_postqueue(tmp_path, j=fixtures / "deferred-50-four-reasons.jsonl")


QUEUE_LABELS = {f"queue_{q}{b}" for q in ("maildrop", "incoming", "active", "deferred", "hold",
                                          "total") for b in ("", "_bytes")}


def test_ok_without_thresholds_all_perfdata(real50, run_main, perfdata):
    code, out = run_main(queue_size.main, ["--postqueue", real50], NOW)
    assert code == 0
    assert out.splitlines()[0].startswith("POSTFIX QUEUE OK - 50 messages queued (50 deferred)")
    perf = perfdata(out)
    assert set(perf) == QUEUE_LABELS
    assert perf["queue_deferred"][0] == 50 and perf["queue_total_bytes"][1] == "B"
    assert perf["queue_total_bytes"][0] == 189860


@pytest.mark.parametrize("argv,code,first", [
    (["-w", "40", "-c", "100"], 1, "POSTFIX QUEUE WARNING - 50 queued (> 40): 66% greylisted, "
                                   "top d20.example 33"),
    (["-w", "10", "-c", "40"], 2, "POSTFIX QUEUE CRITICAL - 50 queued (> 40)"),
    (["-w", "60:", "--queue", "deferred"], 1, "POSTFIX QUEUE WARNING - 50 deferred (< 60)"),
    (["-c", "0", "--queue", "hold", "--queue", "active"], 0, "POSTFIX QUEUE OK"),
])
def test_queue_states(real50, argv, code, first, run_main):
    got, out = run_main(queue_size.main, ["--postqueue", real50, *argv], NOW)
    assert got == code
    assert out.splitlines()[0].startswith(first)


def test_thresholds_attach_to_judged_labels_only(real50, run_main, perfdata):
    _, out = run_main(queue_size.main, ["--postqueue", real50, "-w", "10", "-c", "20", "--queue",
                                        "deferred", "--queue", "hold"], NOW)
    perf = perfdata(out)
    assert perf["queue_deferred"][2:] == ("10", "20")
    assert perf["queue_hold"][2:] == ("10", "20")
    assert perf["queue_total"][2:] == ("", "")


def test_worst_state_wins_across_queues(tmp_path, fixtures, run_main):
    pq = fake_postqueue(tmp_path, j=fixtures / "mixed-malformed-dup-postfix311.jsonl")
    code, out = run_main(queue_size.main, ["--postqueue", pq, "--queue", "hold", "--queue",
                                           "deferred", "-w", "1", "-c", "1", "-v"], NOW)
    assert code == 2 and "2 deferred (> 1)" in out.splitlines()[0]
    assert "skipped 3 malformed line(s) of 9" in out and "not json at all" in out


def test_verbose_lists_reasons_and_domains(real50, run_main):
    _, out = run_main(queue_size.main, ["--postqueue", real50, "-v"], NOW)
    assert "deferred recipients by reason: greylisted 33, refused 17" in out
    assert "top deferred domains: d20.example 33" in out


def test_oldest_exact_age_and_suffixes(real50, fixtures, run_main, perfdata):
    first = min(int(x.split('"arrival_time": ')[1].split(",")[0])
                for x in (fixtures / "deferred-50-four-reasons.jsonl").read_text().splitlines())
    code, out = run_main(oldest.main, ["--postqueue", real50, "-w", "1h", "-c", "2h"], NOW)
    assert perfdata(out)["oldest_age"][0] == NOW - first
    assert code == 1
    assert out.startswith("POSTFIX OLDEST WARNING - oldest deferred message is 1h 16m old (> 1h)")
    code, _ = run_main(oldest.main, ["--postqueue", real50, "-w", "1d"], NOW)
    assert code == 0


def test_oldest_ignores_hold_by_default(tmp_path, fixtures, run_main, perfdata):
    pq = fake_postqueue(tmp_path, j=fixtures / "mixed-malformed-dup-postfix311.jsonl")
    _, out = run_main(oldest.main, ["--postqueue", pq], NOW)
    perf = perfdata(out)
    assert perf["oldest_age_hold"][0] == NOW - 1795900000
    assert perf["oldest_age"][0] == NOW - 1795962000   # active is the oldest outside hold
    _, out = run_main(oldest.main, ["--postqueue", pq, "--queue", "hold"], NOW)
    assert perfdata(out)["oldest_age"][0] == NOW - 1795900000


def test_oldest_empty_queue(tmp_path, run_main, perfdata):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    code, out = run_main(oldest.main, ["--postqueue", fake_postqueue(tmp_path, j=empty), "-w",
                                       "1"], NOW)
    assert code == 0 and "no message in" in out
    assert perfdata(out)["oldest_age"][0] == 0


def test_growth_baseline_then_rate(real50, tmp_path, fixtures, run_main, perfdata):
    state = str(tmp_path / "state")
    def grow(pq, *argv, at=NOW):
        return run_main(growth.main, ["--postqueue", pq, "--state-dir", state, *argv], at)

    code, out = grow(real50, "-w", "10")
    assert code == 0 and "waiting for baseline" in out
    assert "deferred_growth_per_hour" not in perfdata(out)
    small = tmp_path / "small"
    small.mkdir()
    pq10 = fake_postqueue(small, j=fixtures / "deferred-10-first-of-50.jsonl")
    code, out = grow(pq10, "-w", "10", "-c", "50", at=NOW + 360)
    # 50 → 10 deferred in 6 minutes: −400/h, shrinking, OK with a bare upper limit
    assert code == 0
    assert perfdata(out)["deferred_growth_per_hour"][0] == -400
    code, out = grow(real50, "-w", "10", "-c", "50", at=NOW + 720)
    # reference is still the first sample (oldest in the 15m window): 0/h
    assert perfdata(out)["deferred_growth_per_hour"][0] == 0
    code, out = grow(real50, "-c", "50", "--window", "5m", at=NOW + 1080)
    # window 5m: the sample at +720 (50) is the reference → 0; at +360 was 10 (outside)
    assert code == 0 and perfdata(out)["deferred_growth_per_hour"][0] == 0
    code, out = grow(pq10, "-c", "-100:", "--window", "5m", at=NOW + 1260)
    # an explicit lower bound does alert on shrinking: 50 → 10 in 3 minutes
    assert code == 2
    assert out.startswith("POSTFIX GROWTH CRITICAL - deferred queue -800/h (< -100)")


def test_growth_corrupt_state_unknown_once_then_baseline(real50, tmp_path, run_main):
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / "growth-default.json").write_text("{garbage")
    code, out = run_main(growth.main, ["--postqueue", real50, "--state-dir", str(state)], NOW)
    assert code == 3 and "growth-default.json is corrupt" in out and len(out.splitlines()) == 1
    code, out = run_main(growth.main, ["--postqueue", real50, "--state-dir", str(state)], NOW)
    assert code == 0 and "waiting for baseline" in out


# -- failures: UNKNOWN, one line, what to fix ---------------------------------------------------

@pytest.mark.parametrize("kw,expect", [
    ({"rc": 69, "stderr": "postqueue: fatal: Queue report unavailable - mail system is down "
                          "(Connect to the Postfix showq service: Connection refused)"},
     "Postfix is not running"),
    ({"rc": 77, "stderr": "postqueue: fatal: User nagios(111) is not allowed to view the mail "
                          "queue"}, "authorized_mailq_users"),
    ({"rc": 69, "stderr": "postqueue: error: unauthorized configuration directory name: /x\n"
                          "postqueue: fatal: specify \"alternate_config_directories = /x\" or "
                          "\"multi_instance_directories = /x\" in /etc/postfix/main.cf"},
     'alternate_config_directories = /x'),
    ({"rc": 70, "stderr": "postqueue: fatal: Connect to the Postfix showq service: Permission "
                          "denied"}, "permissions of public/showq"),
    ({"rc": 69, "stderr": "postqueue: fatal: open /x/main.cf: No such file or directory"},
     "check --config-dir"),
    ({"rc": 1, "stderr": "something odd"}, "postqueue exited 1: something odd"),
])
def test_postqueue_failures_are_unknown_with_a_fix(tmp_path, kw, expect, run_main):
    pq = fake_postqueue(tmp_path, **kw)
    argv = ["--postqueue", pq] + (["--config-dir", "/x"] if "/x" in kw["stderr"] else [])
    for main in (queue_size.main, oldest.main):
        code, out = run_main(main, argv, NOW)
        assert code == 3
        assert len(out.splitlines()) == 1 and "UNKNOWN - " in out and expect in out


def test_missing_postqueue(tmp_path, run_main):
    code, out = run_main(queue_size.main, ["--postqueue", str(tmp_path / "nope")], NOW)
    assert code == 3 and "not found: install Postfix or pass --postqueue" in out


def test_garbage_output_is_unknown(tmp_path, run_main):
    junk = tmp_path / "junk"
    junk.write_text("hello\nworld\n")
    code, out = run_main(queue_size.main, ["--postqueue", fake_postqueue(tmp_path, j=junk)], NOW)
    assert code == 3 and "none parses as a queue listing" in out


def test_root_queue_read_directly_is_a_normal_result(real50, tmp_path, fixtures, run_main):
    pq = fake_postqueue(tmp_path, j=fixtures / "deferred-50-four-reasons.jsonl",
                        stderr="postqueue: warning: Mail system is down -- accessing queue "
                               "directly (Connect to the Postfix showq service: Connection "
                               "refused)")
    code, out = run_main(queue_size.main, ["--postqueue", pq], NOW)
    assert code == 0 and "50 messages queued" in out and "mail system is down" in out


def test_fallback_to_text_listing_before_postfix_3_1(tmp_path, fixtures, run_main, perfdata):
    pq = fake_postqueue(tmp_path, j_invalid=True, p=fixtures / "mixed-long-ids-markers.txt")
    code, out = run_main(queue_size.main, ["--postqueue", pq, "-v"], NOW)
    assert code == 0
    perf = perfdata(out)
    assert (perf["queue_active"][0], perf["queue_hold"][0], perf["queue_deferred"][0]) == (1, 2, 2)
    assert perf["queue_incoming"][0] == 0 and perf["queue_maildrop"][0] == 0
    assert "read postqueue -p" in out


def test_hung_postqueue_is_killed_within_the_timeout(tmp_path, fixtures, run_main):
    pidfile = tmp_path / "pid"
    pq = fake_postqueue(tmp_path, j=fixtures / "deferred-50-four-reasons.jsonl", sleep=60,
                        pidfile=pidfile)
    started = time.monotonic()
    code, out = run_main(queue_size.main, ["--postqueue", pq, "-t", "2"], NOW)
    elapsed = time.monotonic() - started
    assert code == 3 and "did not finish within" in out
    assert elapsed < 3.0
    pid = int(pidfile.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


@pytest.mark.parametrize("argv", [["--bogus"], ["-w", "x"], ["--queue", "nope"], ["-t", "0"],
                                  ["-w", "1d"]])
def test_bad_options_are_unknown_not_argparse_2(argv, run_main):
    code, out = run_main(queue_size.main, argv, NOW)
    assert code == 3 and out.startswith("POSTFIX QUEUE UNKNOWN - check_postfix_queue: ")
    assert len(out.splitlines()) == 1


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        growth.main(["-V"])
    out, err = capsys.readouterr()
    assert exc.value.code == 0 and out.startswith("check_postfix_deferred_growth 0.") and not err


def test_cause_only_when_the_problem_is_deferred_mail(tmp_path, fixtures, run_main):
    pq = fake_postqueue(tmp_path, j=fixtures / "mixed-malformed-dup-postfix311.jsonl")
    code, out = run_main(queue_size.main, ["--postqueue", pq, "--queue", "hold", "-w", "0"], NOW)
    assert code == 1 and out.startswith("POSTFIX QUEUE WARNING - 1 hold (> 0) |"), out
    code, out = run_main(queue_size.main, ["--postqueue", pq, "--queue", "deferred", "-w", "0"],
                         NOW)
    assert out.startswith("POSTFIX QUEUE WARNING - 2 deferred (> 0): 100% refused"), out
    code, out = run_main(oldest.main, ["--postqueue", pq, "--queue", "hold", "-w", "1h"], NOW)
    assert out.startswith("POSTFIX OLDEST WARNING - oldest hold message is 18h 33m old (> 1h) |")


def test_very_verbose_adds_an_example_and_an_action(real50, run_main):
    _, out = run_main(queue_size.main, ["--postqueue", real50, "-v"], NOW)
    assert "action" not in out.lower() and "e.g." not in out
    _, out = run_main(queue_size.main, ["--postqueue", real50, "-vv"], NOW)
    assert "  greylisted: e.g. host 127.0.0.1[127.0.0.1] said: 450 4.2.0" in out
    assert "  greylisted: wait for the retry" in out


DOWN = ("postqueue: warning: Mail system is down -- accessing queue directly (Connect to the "
        "Postfix showq service: Connection refused)")


@pytest.mark.parametrize(("main", "argv", "code", "state"), [
    (queue_size.main, [], 0, "POSTFIX QUEUE OK - "),
    (queue_size.main, ["-w", "40", "-c", "100"], 1, "POSTFIX QUEUE WARNING - "),
    (queue_size.main, ["-w", "10", "-c", "40"], 2, "POSTFIX QUEUE CRITICAL - "),
    (oldest.main, ["-w", "1m", "-c", "1d"], 1, "POSTFIX OLDEST WARNING - "),
    (oldest.main, ["-w", "1m", "-c", "5m"], 2, "POSTFIX OLDEST CRITICAL - "),
])
def test_postfix_down_is_on_every_states_first_line(tmp_path, fixtures, run_main, main, argv,
                                                      code, state):
    """A root-run postqueue reads the queue directly when Postfix is down and says so on
    stderr: the first line says it whatever the state (on a problem it matters most)."""
    pq = fake_postqueue(tmp_path, j=fixtures / "deferred-50-four-reasons.jsonl", stderr=DOWN)
    got, out = run_main(main, ["--postqueue", pq, *argv], NOW)
    first = out.splitlines()[0]
    assert got == code and first.startswith(state), out
    assert "mail system is down, the queue was read directly (start Postfix)" in first.split("|")[0]
