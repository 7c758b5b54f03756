"""``--syslog-name`` that matches no line: UNKNOWN naming the Postfix names that were seen,
never "too few deliveries to judge" forever; an idle instance whose name was seen stays OK."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pytest

from postfix_queue_monitor import deliveries as D
from postfix_queue_monitor.deadline import Deadline
from postfix_queue_monitor.errors import MonitorError
from postfix_queue_monitor.plugins import bounce
from postfix_queue_monitor.prometheus import counters
from postfix_queue_monitor.zabbix import document

T0 = time.mktime((2026, 11, 29, 15, 0, 0, 0, 0, -1))


def status(ts: float, prog: str, n: int, st: str = "sent") -> bytes:
    stamp = time.strftime("%b %e %H:%M:%S", time.localtime(ts)).encode()
    return (stamp + b" vm %s[1]: Q%d: to=<u%d@d.example>, relay=x, delay=1, delays=1/0/0/0, "
            b"dsn=2.0.0, status=%s (250 ok)\n" % (prog.encode(), n, n, st.encode()))


def master(ts: float, name: str) -> bytes:
    stamp = time.strftime("%b %e %H:%M:%S", time.localtime(ts)).encode()
    return stamp + b" vm %s/master[9]: daemon started -- version 3.7.11\n" % name.encode()


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "mail.log"
    path.write_bytes(b"".join(status(T0 - 120, p, i)
                              for i, p in enumerate(["postfix/smtp", "postfix-out/smtp"] * 3)))
    return path


def check(run_main, log: Path, name: str, now: float = T0) -> tuple[int, str]:
    return run_main(bounce.main, ["--log-file", str(log), "--syslog-name", name, "--state-dir",
                                  str(log.parent / "state")], now)


def test_mistyped_name_is_unknown_naming_the_names_seen_every_run(run_main, log) -> None:
    expect = (f"POSTFIX BOUNCE RATE UNKNOWN - no line of syslog name 'postfx-out' in {log} "
              f"(Postfix names seen: postfix, postfix-out): check --syslog-name")
    code, out = check(run_main, log, "postfx-out")
    assert code == 3 and out.splitlines()[0] == expect, out
    # the next run reads nothing new: still the same, never a silent OK
    code, out = check(run_main, log, "postfx-out", T0 + 60)
    assert code == 3 and out.splitlines()[0] == expect, out


def test_right_name_is_counted(run_main, log) -> None:
    code, out = check(run_main, log, "postfix-out")
    assert code == 0 and "too few deliveries to judge (3 < 10" in out, out


def test_idle_instance_named_by_its_master_line_stays_ok(run_main, log) -> None:
    with open(log, "ab") as fh:
        fh.write(master(T0 - 60, "postfix-in"))
    code, out = check(run_main, log, "postfix-in")
    assert code == 0 and "too few deliveries to judge (0 < 10" in out, out


def test_idle_instance_seen_before_stays_ok_when_only_others_log(run_main, log) -> None:
    code, out = check(run_main, log, "postfix-out")
    assert code == 0, out
    log.write_bytes(b"".join(status(T0 + 10, "postfix/smtp", 100 + i) for i in range(4)))
    code, out = check(run_main, log, "postfix-out", T0 + 60)      # copytruncate: others only
    assert code == 0 and "too few deliveries to judge (3 < 10" in out, out


def test_first_run_finds_an_idle_instance_by_its_lines_before_the_window(run_main,
                                                                          log) -> None:
    """The first run reads only the window, where only the other instances logged; the idle
    one's lines two hours earlier say its name is right (it was UNKNOWN until it logged)."""
    lines = log.read_bytes()
    busy = b"".join(status(T0 - 7000 + i // 10, "postfix/smtp", i) for i in range(30_000))
    log.write_bytes(master(T0 - 7200, "postfix-in") + status(T0 - 7100, "postfix-in/smtp", 90)
                    + busy + lines)                 # (3.5 MB: the window starts far in)
    code, out = check(run_main, log, "postfix-in")
    assert code == 0 and "too few deliveries to judge (0 < 10" in out, out
    code, out = check(run_main, log, "postfx-in", T0 + 60)      # a mistyped name still is not
    assert code == 3 and "no line of syslog name 'postfx-in'" in out, out


def test_first_run_after_a_rotation_finds_an_idle_instance_in_the_rotated_file(run_main,
                                                                               log) -> None:
    """Rotated at midnight, first run soon after: the idle instance's lines are all in
    mail.log.1, before the window (it was UNKNOWN until the instance logged again)."""
    log.with_name("mail.log.1").write_bytes(
        master(T0 - 7200, "postfix-in") + status(T0 - 7100, "postfix-in/smtp", 90)
        + b"".join(status(T0 - 7000 + i // 10, "postfix/smtp", i) for i in range(3000)))
    # (400 KB: more than the 64 KiB a window search may land before the window)
    code, out = check(run_main, log, "postfix-in")
    assert code == 0 and "too few deliveries to judge (0 < 10" in out, out
    code, out = check(run_main, log, "postfx-in", T0 + 60)      # a mistyped name still is not
    assert code == 3 and "no line of syslog name 'postfx-in'" in out, out


def test_state_from_before_the_search_looks_back_once(run_main, log) -> None:
    """A state written before the name search (no name_seen) on an idle instance: the first
    run after the upgrade reads only the other instances' new lines, and looks back in the file
    for the name as a first run does (it was UNKNOWN until the idle instance logged again)."""
    with open(log, "ab") as fh:
        fh.write(master(T0 - 60, "postfix-in"))
    assert check(run_main, log, "postfix-in")[0] == 0
    state = next((log.parent / "state").glob("bounce-*.json"))
    doc = json.loads(state.read_text())
    del doc["data"]["name_seen"]
    state.write_text(json.dumps(doc))
    with open(log, "ab") as fh:
        fh.write(status(T0 + 10, "postfix/smtp", 500))
    code, out = check(run_main, log, "postfix-in", T0 + 60)
    assert code == 0 and "too few deliveries to judge (0 < 10" in out, out
    assert json.loads(state.read_text())["data"]["name_seen"] is True


def test_no_postfix_line_at_all_stays_as_today(run_main, tmp_path) -> None:
    empty = tmp_path / "mail.log"
    empty.write_bytes(b"Nov 29 14:58:00 vm cron[1]: (root) CMD (true)\n")
    code, out = check(run_main, empty, "postfx-out")
    assert code == 0 and "too few deliveries to judge" in out, out


def _fake_journalctl(tmp_path: Path, idents: list[str]) -> str:
    entries = tmp_path / "entries"
    entries.write_text("".join(json.dumps({
        "__CURSOR": f"c{i}", "__REALTIME_TIMESTAMP": str(int((T0 - 60) * 1e6)),
        "SYSLOG_IDENTIFIER": ident, "MESSAGE": f"Q{i}: to=<u@d.example>, relay=x, delay=1, "
        "delays=1/0/0/0, dsn=2.0.0, status=sent (ok)"}) + "\n" for i, ident in enumerate(idents)))
    fake = tmp_path / "journalctl"
    fake.write_text('#!/bin/sh\ncase "$*" in *"-F SYSLOG_IDENTIFIER"*) printf "%s\\n" '
                    + " ".join(idents) + f";; *) cat {entries} ;; esac\n")
    fake.chmod(0o755)
    return str(fake)


def test_journal_mistyped_name_is_unknown(tmp_path: Path) -> None:
    fake = _fake_journalctl(tmp_path, ["postfix/smtp", "postfix-out/smtp", "postfix-out/qmgr"])
    with pytest.raises(MonitorError, match=r"^no line of syslog name 'postfx-out' in journal "
                                           r"\(Postfix names seen: postfix, postfix-out\): "
                                           r"check --syslog-name$"):
        D.measure_deliveries(None, True, "postfx-out", 3600, str(tmp_path / "s"), T0, 10,
                             journalctl=fake)
    stats = D.measure_deliveries(None, True, "postfix-out", 3600, str(tmp_path / "s"), T0, 10,
                                 journalctl=fake)
    assert stats.sent == 3            # (the fake journalctl does not filter by identifier)


def test_zabbix_document_says_it_in_meta_error(log: Path) -> None:
    opts = argparse.Namespace(log_file=str(log), journal=False, syslog_name="postfx-out",
                              bounce_window=3600.0, timeout=8.0)
    with pytest.raises(MonitorError, match="no line of syslog name 'postfx-out'"):
        document.delivery_stats(opts, str(log.parent / "s"), T0, Deadline(8.0))


def test_prometheus_counters_say_it(log: Path) -> None:
    def totals(now: float) -> dict[str, int]:
        return counters.read_totals(str(log), False, "postfx-out", str(log.parent / "st"), now,
                                    Deadline(5))
    for now in (T0, T0 + 20):                 # the second run reads nothing new
        with pytest.raises(MonitorError, match=r"no line of syslog name 'postfx-out' in .*"
                                               r"\(Postfix names seen: postfix, postfix-out\)"):
            totals(now)
    assert counters.read_totals(str(log), False, "postfix-out", str(log.parent / "st"), T0 + 30,
                                Deadline(5)) == {"sent": 0, "bounced": 0, "expired": 0,
                                                 "deferred": 0}


def test_state_with_a_malformed_seen_flag_is_moved_aside(run_main, log) -> None:
    check(run_main, log, "postfix-out")
    state = next((log.parent / "state").glob("bounce-*.json"))
    doc = json.loads(state.read_text())
    assert doc["data"]["name_seen"] is True
    doc["data"]["name_seen"] = "yes"
    state.write_text(json.dumps(doc))
    code, out = check(run_main, log, "postfix-out", T0 + 60)
    assert code == 3 and "name_seen is str, not a boolean" in out, out
