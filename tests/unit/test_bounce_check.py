"""check_postfix_bounce_rate in-process: states, first lines, perfdata, -v, failures."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from postfix_queue_monitor.plugins import bounce

T0 = time.mktime((2026, 11, 29, 15, 0, 0, 0, 0, -1))


def line(ts: float, st: str, text: str, n: int, prog: bytes = b"postfix/smtp") -> bytes:
    stamp = time.strftime("%b %e %H:%M:%S", time.localtime(ts)).encode()
    return (stamp + b" vm " + prog + b"[1]: ABC%d: to=<u%d@d.example>, relay=x, delay=1, "
            b"delays=1/0/0/0, dsn=5.0.0, status=%s (%s)\n" % (n, n, st.encode(), text.encode()))


def write_log(path: Path, sent: int, bounced: int, deferred: int = 0, expired: int = 0,
              ts: float = T0 - 120) -> None:
    n = 0
    with open(path, "ab") as fh:
        for _ in range(sent):
            n += 1
            fh.write(line(ts, "sent", "250 2.0.0 Ok", n))
        for i in range(bounced):
            n += 1
            text = ("host x said: 550 5.1.1 <u>: Recipient address rejected: User unknown"
                    if i % 3 else "host x said: 554 5.7.1 Service unavailable; blocked using "
                    "zen.spamhaus.org")
            fh.write(line(ts, "bounced", text, n))
        for _ in range(deferred):
            n += 1
            fh.write(line(ts, "deferred", "connect to x[1.2.3.4]:25: Connection timed out", n))
        for _ in range(expired):
            n += 1
            stamp = time.strftime("%b %e %H:%M:%S", time.localtime(ts)).encode()
            fh.write(stamp + b" vm postfix/qmgr[2]: EXP%d: from=<s@x>, status=expired, "
                     b"returned to sender\n" % n)


def run(run_main, *argv: str, now: float = T0) -> tuple[int, str]:
    return run_main(bounce.main, argv, now)


def perf(out: str) -> dict[str, str]:
    return dict(re.findall(r"(\w+)=(\S+)", out.split("|", 1)[1]))


@pytest.fixture
def args(tmp_path):
    log = tmp_path / "mail.log"
    log.touch()
    return log, ["--log-file", str(log), "--state-dir", str(tmp_path / "state")]


def test_ok_rate_and_perfdata(run_main, args):
    log, a = args
    write_log(log, sent=96, bounced=4, deferred=10)
    code, out = run(run_main, *a, "-w", "5", "-c", "15")
    assert code == 0, out
    assert out.startswith("POSTFIX BOUNCE RATE OK - bounce rate 4% (4 of 100 recipients in 1h), "
                          "deferral rate 9.1%")
    p = perf(out)
    assert p["bounce_rate"] == "4.0%;5;15;0;100"
    assert p["deferral_rate"].startswith("9.091%;;;0;100")
    assert (p["delivery_sent"], p["delivery_bounced"], p["delivery_expired"],
            p["delivery_deferred"]) == ("96;;;0", "4;;;0", "0;;;0", "10;;;0")


def test_warning_names_top_reason_class(run_main, args):
    log, a = args
    write_log(log, sent=90, bounced=10)
    code, out = run(run_main, *a, "-w", "5", "-c", "15")
    assert code == 1, out
    first = out.splitlines()[0]
    assert first.startswith("POSTFIX BOUNCE RATE WARNING - bounce rate 10% (> 5; 10 of 100 "
                            "recipients in 1h): top reason recipient_unknown (6 of 10)"), first


def test_critical_expired_counts_as_bounce(run_main, args):
    log, a = args
    write_log(log, sent=20, bounced=0, expired=5)
    code, out = run(run_main, *a, "-w", "5", "-c", "15")
    assert code == 2, out
    assert "bounce rate 20% (> 15; 5 of 25" in out and "5 of 5 expired" in out.splitlines()[0]


def test_ok_too_few_deliveries_to_judge(run_main, args):
    log, a = args
    write_log(log, sent=5, bounced=4, deferred=30)
    code, out = run(run_main, *a, "-w", "5", "-c", "15")
    assert code == 0, out
    assert out.startswith("POSTFIX BOUNCE RATE OK - too few deliveries to judge (9 < 10 in 1h; "
                          "30 deferred)")
    assert perf(out)["bounce_rate"].startswith("44.444%")
    code, out = run(run_main, *a, "-w", "5", "-c", "15", "--min-deliveries", "5")
    assert code == 2, out


def test_window_option_and_sliding(run_main, args):
    log, a = args
    write_log(log, sent=10, bounced=10, ts=T0 - 1800)
    code, out = run(run_main, *a, "--window", "15m", "-c", "15")
    assert code == 0 and "0 < 10 in 15m" in out, out
    code, out = run(run_main, *a, "--window", "1h", "-c", "15")
    assert code == 2, out


def test_verbose_shows_classes_texts_and_unmatched(run_main, args):
    log, a = args
    write_log(log, sent=10, bounced=3)
    with open(log, "ab") as fh:
        fh.write(time.strftime("%b %e %H:%M:%S", time.localtime(T0 - 60)).encode()
                 + b" vm postfix/smtp[1]: a line no pattern knows\n")
    code, out = run(run_main, *a, "-v")
    assert "bounces by reason: recipient_unknown 2, policy 1" in out
    assert "1 Postfix line(s) matched no pattern" in out and "a line no pattern knows" in out
    assert "(first run: the window only)" in out


@pytest.mark.parametrize("argv,expect", [
    (["--window", "0"], "a duration must be above 0"),
    (["--min-deliveries", "x"], "not a whole number"),
    (["--log-file", "/x", "--journal"], "not allowed with argument"),
    (["-w", "abc"], "bad threshold"),
])
def test_unknown_bad_options(run_main, argv, expect):
    code, out = run(run_main, *argv)
    assert code == 3 and expect in out
    assert out.startswith("POSTFIX BOUNCE RATE UNKNOWN - check_postfix_bounce_rate: ")


def test_unknown_missing_log(run_main, tmp_path):
    code, out = run(run_main, "--log-file", str(tmp_path / "nope"), "--state-dir", str(tmp_path))
    assert code == 3
    assert out.startswith("POSTFIX BOUNCE RATE UNKNOWN - log file ") and "does not exist" in out
    assert len(out.strip().splitlines()) == 1


def test_unknown_corrupt_state_once(run_main, args, tmp_path):
    log, a = args
    write_log(log, sent=10, bounced=0)
    run(run_main, *a)
    state = next(p for p in (tmp_path / "state").iterdir() if p.name.endswith(".json"))
    state.write_bytes(b"\x00garbage")
    code, out = run(run_main, *a)
    assert code == 3 and "is corrupt" in out and "starts afresh" in out
    code, out = run(run_main, *a)
    assert code == 0 and perf(out)["delivery_sent"] == "10;;;0"


def test_unknown_no_log_no_journal(run_main, tmp_path, monkeypatch):
    from postfix_queue_monitor import deliveries
    monkeypatch.setattr(deliveries, "DEFAULT_LOGS", (str(tmp_path / "none.log"),))
    monkeypatch.setenv("PATH", str(tmp_path))          # no journalctl either
    code, out = run(run_main, "--state-dir", str(tmp_path / "s"))
    assert code == 3 and "journalctl not found" in out, out
