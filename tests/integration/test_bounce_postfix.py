"""check_postfix_bounce_rate against a real private Postfix and its real log.

Three smtp-sink instances accept (25251), hard-reject RCPT (25252) and soft-reject RCPT (25253);
transport_maps also route domains to the discard, error and retry agents. Mail is injected while
no sink listens (everything defers: connection refused), then the sinks start and the queue is
flushed (tests only: the shipped code never flushes), then the soft-rejected messages are
force-expired (postsuper -e) and flushed again. The check's counts must equal a plain count of
the log's lines, across a first run and an incremental run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

import logcount
import logstyles
from postfix_lab import Lab, Sinks, available
from postfix_queue_monitor import deliveries

PORTS = {"ok": 25251, "hard": 25252, "soft": 25253}
CHECK = str(Path(sys.executable).parent / "check_postfix_bounce_rate")

pytestmark = pytest.mark.skipif(available() is not None, reason=str(available()))


@pytest.fixture
def lab():
    lab = Lab("bounce", relay_port=PORTS["ok"])
    transport = lab.base / "transport"
    transport.write_text(
        f"ok.example smtp:[127.0.0.1]:{PORTS['ok']}\n"
        f"hard.example smtp:[127.0.0.1]:{PORTS['hard']}\n"
        f"soft.example smtp:[127.0.0.1]:{PORTS['soft']}\n"
        "discard.example discard:silently dropped\n"
        "error.example error:5.1.1 mailbox unavailable (lab)\n"
        "retry.example retry:4.3.0 try again (lab)\n")
    lab.extra.update({"transport_maps": f"texthash:{transport}",
                      "smtp_connect_timeout": "2s",
                      "default_destination_concurrency_limit": "5"})
    sinks = Sinks(PORTS)
    try:
        lab.setup().start()
        yield lab, sinks
    finally:
        sinks.stop()
        lab.destroy()


def plain_count(log: bytes, syslog_name: str) -> dict[str, int]:
    """What the log says, counted the dumb way."""
    counts = dict.fromkeys(("sent", "bounced", "expired", "deferred"), 0)
    for line in log.decode("utf-8", "replace").splitlines():
        if f" {syslog_name}/" not in line:
            continue
        m = re.search(r"\]: [0-9A-Za-z]+: to=<.*, status=(sent|bounced|deferred) ", line)
        if m:
            counts[m[1]] += 1
        elif re.search(r"/qmgr\[\d+\]: [0-9A-Za-z]+: from=<.*>, status=(force-)?expired", line):
            counts["expired"] += 1
    return counts


def run_check(lab: Lab, state: Path, *extra: str) -> tuple[int, str, dict[str, float]]:
    p = subprocess.run([CHECK, "--log-file", str(lab.log_file), "--state-dir", str(state),
                        "--window", "1h", *extra], capture_output=True, text=True, timeout=60)
    assert p.stderr == ""
    perf = dict(re.findall(r"(\w+)=([\d.]+)", p.stdout.partition("|")[2]))
    return p.returncode, p.stdout, {k: float(v) for k, v in perf.items()}


def wait_log(lab: Lab, cond, timeout: float = 60) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while True:
        counts = plain_count(lab.log_file.read_bytes(), "postfix-bounce")
        if cond(counts):
            return counts
        assert time.monotonic() < deadline, f"log never got there: {counts}"
        time.sleep(0.2)


def test_critical_counts_equal_the_log_across_flush_and_expiry(lab, tmp_path):
    lab, sinks = lab
    state = tmp_path / "state"
    for i in range(12):
        lab.sendmail("sender@src.example", [f"user{i}@ok.example"])
    lab.sendmail("sender@src.example", [f"u{i}@hard.example" for i in range(3)])
    lab.sendmail("sender@src.example", ["a@soft.example"])
    lab.sendmail("sender@src.example", ["b@soft.example"])
    lab.sendmail("sender@src.example", ["x@discard.example", "y@error.example"])
    lab.sendmail("sender@src.example", ["z@retry.example"])
    # nothing listens yet: every smtp recipient defers; discard sends, error bounces, retry defers
    before = wait_log(lab, lambda c: c["deferred"] >= 12 + 3 + 2 + 1 and c["bounced"] >= 1)
    lab.wait_settled()

    rc, out, perf = run_check(lab, state, "-w", "5", "-c", "15")
    now_log = plain_count(lab.log_file.read_bytes(), "postfix-bounce")
    assert {k: int(perf[f"delivery_{k}"]) for k in now_log} == now_log, out
    assert now_log["deferred"] >= before["deferred"] >= 18

    sinks.start()
    subprocess.run(["postqueue", "-c", str(lab.config_dir), "-f"], check=True)
    # 12 ok + the bounce notifications of the 3 hard and of the error recipient are sent
    wait_log(lab, lambda c: c["sent"] >= 1 + 12 + 2 and c["bounced"] >= 1 + 3)
    lab.wait_settled()
    subprocess.run(["postsuper", "-c", str(lab.config_dir), "-e", "ALL", "deferred"],
                   check=True, capture_output=True)
    subprocess.run(["postqueue", "-c", str(lab.config_dir), "-f"], check=True)
    after = wait_log(lab, lambda c: c["expired"] >= 3)
    lab.wait_settled()
    time.sleep(0.5)
    after = plain_count(lab.log_file.read_bytes(), "postfix-bounce")

    rc, out, perf = run_check(lab, state, "-w", "5", "-c", "15", "-v")
    got = {k: int(perf[f"delivery_{k}"]) for k in after}
    assert got == after, out
    assert after["expired"] == 3          # a@soft, b@soft, z@retry force-expired
    bad = after["bounced"] + after["expired"]
    rate = 100 * bad / (after["sent"] + bad)
    assert perf["bounce_rate"] == pytest.approx(rate, abs=0.001)
    assert rc == 2, out
    assert out.startswith("POSTFIX BOUNCE RATE CRITICAL - bounce rate ")
    first = out.splitlines()[0]
    assert "top reason recipient_unknown" in first or "expired" in first, first
    assert int(re.search(r"; (\d+) new line\(s\) read", out)[1]) > 0, out
    # a third run reads nothing new and says the same
    rc3, out3, perf3 = run_check(lab, state, "-w", "5", "-c", "15", "-v")
    assert perf3 == perf and "; 0 new line(s) read" in out3
    # --syslog-name: this instance by its name (its own state, a first run) and another name
    rc4, out4, perf4 = run_check(lab, state, "--syslog-name", "postfix-bounce")
    assert {k: int(perf4[f"delivery_{k}"]) for k in after} == after, out4
    # no line of "postfix" in this instance's log, only "postfix-bounce": a mistyped name,
    # UNKNOWN naming what the log holds (docs/reference.md), not "too few deliveries" forever
    rc5, out5, _ = run_check(lab, state, "--syslog-name", "postfix")
    assert rc5 == 3 and out5.startswith(
        f"POSTFIX BOUNCE RATE UNKNOWN - no line of syslog name 'postfix' in {lab.log_file} "
        f"(Postfix names seen: postfix-bounce): check --syslog-name"), out5
    # the same real log in every timestamp style a host writes (tests/logstyles.py): the same
    # counts, by the parser and by the independent counter (docs/log-formats.md)
    lines = lab.log_file.read_text("utf-8", "surrogateescape").splitlines()
    for style in sorted(logstyles.STYLES):
        styled = list(logstyles.render(logstyles.records(lines, time.localtime().tm_year,
                                                         "UTC"), style))
        assert logcount.count_lines(styled) == after, style
        log = tmp_path / f"{style}.log"
        log.write_text("".join(line + "\n" for line in styled), "utf-8", "surrogateescape")
        st = deliveries.measure_deliveries(str(log), False, "postfix-bounce", 86400,
                                           str(tmp_path / f"state-{style}"), time.time(), 30)
        assert (st.sent, st.bounced, st.deferred, st.expired, st.unreadable) == (
            after["sent"], after["bounced"], after["deferred"], after["expired"], 0), style
    # keep the real log for the unit tests' fixture (refreshed by hand: see the fixture's name)
    capture = os.environ.get("PQM_CAPTURE_LOG")
    if capture:
        Path(capture).write_bytes(lab.log_file.read_bytes())


#: syslog's %b in a French locale: every month differs from the C locale's
FRENCH = dict(zip(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                   "Dec"), ("janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août",
                            "sept.", "oct.", "nov.", "déc.")))


def test_real_postfix_lines_in_a_locale_not_understood_are_unknown_not_ok(lab, tmp_path):
    """Never a silent OK, on what a real Postfix wrote: its lines that count nothing (master,
    pickup, cleanup, qmgr, smtp connects) with the month names a syslog in a French locale
    writes are UNKNOWN naming an example, not 'OK - too few deliveries to judge'; and a log that
    turns French mid-file (appended after a run that read its readable part) too."""
    lab, sinks = lab
    sinks.start()
    for i in range(3):
        lab.sendmail("sender@src.example", [f"user{i}@ok.example"])
    wait_log(lab, lambda c: c["sent"] >= 3)
    lab.wait_settled()
    lines = lab.log_file.read_text("utf-8", "surrogateescape").splitlines()
    quiet = [s for s in lines if " postfix-bounce/" in s and "status=" not in s]
    french = [FRENCH[s[:3]] + s[3:] for s in quiet]
    assert len(quiet) >= 10 and logcount.count_lines(french) == dict.fromkeys(logcount.KINDS, 0)

    def check(log: Path, state: str) -> tuple[int, str]:
        p = subprocess.run([CHECK, "--log-file", str(log), "--state-dir", str(tmp_path / state),
                            "--window", "1h"], capture_output=True, text=True, timeout=60)
        assert p.stderr == ""
        return p.returncode, p.stdout

    unknown = (f"POSTFIX BOUNCE RATE UNKNOWN - {len(quiet)} Postfix log line(s) (0 delivery "
               f"status) are in a format this check cannot read (timestamp not understood), "
               f"e.g. '{french[0][:20]}")
    log = tmp_path / "fr.log"
    log.write_text("".join(s + "\n" for s in french), "utf-8", "surrogateescape")
    rc, out = check(log, "s1")
    assert rc == 3 and out.startswith(unknown), out
    # rotated into the other locale mid-file: the readable part first (nothing to judge) …
    log = tmp_path / "turns.log"
    log.write_text("".join(s + "\n" for s in quiet), "utf-8", "surrogateescape")
    rc, out = check(log, "s2")
    assert rc == 0 and "too few deliveries to judge (0 < " in out, out
    # … then the syslog restarts in French and only mail traffic follows (pickup, cleanup,
    # qmgr: the lines the feeder's scan passes over; no Postfix start line): the next run reads
    # only those, and says so
    traffic = [s for s in french if "/postfix-script[" not in s and "/master[" not in s]
    assert 0 < len(traffic) < len(french)
    with open(log, "a", encoding="utf-8", errors="surrogateescape") as fh:
        fh.write("".join(s + "\n" for s in traffic))
    rc, out = check(log, "s2")
    assert rc == 3 and out.startswith(f"POSTFIX BOUNCE RATE UNKNOWN - {len(traffic)} Postfix log "
                                      f"line(s) (0 delivery status) are in a format"), out
    assert f"e.g. '{traffic[0][:20]}" in out, out


@pytest.mark.parametrize("where", ["file-0600", "dir-0700"])
def test_unknown_log_unreadable_names_group_adm(lab, where):
    """As nobody: a 0600 root log, and a log inside a 0700 directory (not "does not exist")."""
    lab, _ = lab
    base = Path(tempfile.mkdtemp(prefix="pqm-bounce-"))
    try:
        os.chmod(base, 0o755)
        logdir = base / "log"
        logdir.mkdir(mode=0o700 if where == "dir-0700" else 0o755)
        log = logdir / "mail.log"
        log.write_bytes(lab.log_file.read_bytes())
        os.chmod(log, 0o600 if where == "file-0600" else 0o644)
        state = base / "state"
        _run_as_nobody(log, state)
    finally:
        shutil.rmtree(base)


def _run_as_nobody(log: Path, state: Path) -> None:
    os.mkdir(state, 0o700)
    os.chown(state, 65534, 65534)
    p = subprocess.run([CHECK, "--log-file", str(log), "--state-dir", str(state)],
                       capture_output=True, text=True, user="nobody", timeout=30)
    assert p.returncode == 3, p.stdout
    assert p.stdout.startswith("POSTFIX BOUNCE RATE UNKNOWN - log file ")
    assert "group adm" in p.stdout and p.stderr == ""
