"""The shipped commands run the way an administrator runs them, on inputs written here (real
syslog variants, stand-in postqueue scripts): each test is a divergence from docs/reference.md
found that way by the session-6 contract probe, failing before its fix."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def _run(prog: str, *argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / prog), *argv], capture_output=True, text=True, timeout=60,
                          cwd=cwd)


def _rfc3339(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(ts))


# -- RFC 5424 with the BOM before MSG ------------------------------------------------------

def test_rfc5424_message_with_a_bom_is_counted_not_a_silent_ok(tmp_path: Path) -> None:
    """RFC 5424 section 6.4: a UTF-8 MSG starts with the BOM (EF BB BF), as syslog-ng's
    syslog-protocol output and other RFC 5424 senders write it. Before: every Postfix line
    "matched no pattern" and the check said OK "too few deliveries to judge (0 < 10 ...)"."""
    now = time.time()
    lines = []
    for i in range(20):
        st, dsn, text = (("bounced", "5.1.1", "550 5.1.1 user unknown") if i % 4 == 0 else
                         ("sent", "2.0.0", "250 2.0.0 Ok"))
        lines.append(f"<22>1 {_rfc3339(now - 600 + i)} mx postfix/smtp {100 + i} - "
                     f"[meta sequenceId=\"{i + 1}\"] \ufeff{i + 0xA1000:X}: to=<u{i}@d.example>,"
                     f" relay=r.example[192.0.2.1]:25, delay=1, delays=0/0/0/1, dsn={dsn}, "
                     f"status={st} ({text})")
    log = tmp_path / "mail.log"
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    r = _run("check_postfix_bounce_rate", "--log-file", str(log), "--state-dir",
             str(tmp_path / "st"), "-w", "10", "-c", "50", cwd=tmp_path)
    assert r.stdout.startswith("POSTFIX BOUNCE RATE WARNING - bounce rate 25% (> 10; 5 of 20 "), \
        r.stdout
    assert "delivery_sent=15;" in r.stdout and "delivery_bounced=5;" in r.stdout
    assert (r.returncode, r.stderr) == (1, "")


# -- a status line cut by the syslog's message size limit --------------------------------------

def test_status_line_cut_before_its_closing_parenthesis_still_counts(tmp_path: Path) -> None:
    """Syslogs cut long messages (RFC 3164 relays at 1024 bytes, busybox syslogd, rsyslog's
    maxMessageSize): a bounce line with a long remote reply then lacks its closing ")".
    Before: such lines were skipped without a word, 10 bounces among 20 recipients read
    as OK "bounce rate 0% (0 of 10 ...)", both in the block scan and through parse_line."""
    now = time.time()
    lines = []
    for i in range(20):
        stamp = time.strftime("%b %e %H:%M:%S", time.localtime(now - 600 + i))
        head = (f"{stamp} mx postfix/smtp[{100 + i}]: {i + 0xA1000:X}: to=<u{i}@d.example>, "
                f"relay=mx.d.example[192.0.2.1]:25, delay=1, delays=0/0/0/1, ")
        if i % 2:
            lines.append(head + "dsn=2.0.0, status=sent (250 2.0.0 Ok)")
        else:
            lines.append(head + "dsn=5.7.1, status=bounced (host mx.d.example[192.0.2.1] said: "
                         "550 5.7.1 Unfortunately, messages from [198.51.100.1] weren't sent. "
                         "Please contact your Internet service provider since part of their "
                         "network is on our block li")
    log = tmp_path / "mail.log"
    log.write_text("\n".join(lines) + "\n")
    r = _run("check_postfix_bounce_rate", "--log-file", str(log), "--state-dir",
             str(tmp_path / "st"), "-w", "5", "-c", "20", "-v", cwd=tmp_path)
    assert r.stdout.startswith("POSTFIX BOUNCE RATE CRITICAL - bounce rate 50% (> 20; 10 of 20 "
                               "recipients in 1h): top reason policy (10 of 10)"), r.stdout
    assert (r.returncode, r.stderr) == (2, "")
    from postfix_queue_monitor import maillog
    ev = maillog.parse_line(lines[0].encode() + b"\n", maillog.Clock(now))
    assert isinstance(ev, maillog.Event) and ev.kind == "bounced", ev
    assert ev.text.endswith("on our block li")


# -- a journal export given as --log-file ----------------------------------------------------

def _journal_entries(now: float) -> list[dict[str, str]]:
    out = []
    for i in range(20):
        st = "bounced" if i % 2 else "sent"
        out.append({"__CURSOR": f"s=0;i={i}", "__REALTIME_TIMESTAMP": str(int((now - 300 + i)
                                                                                * 1e6)),
                    "_HOSTNAME": "mx", "SYSLOG_IDENTIFIER": "postfix/smtp",
                    "SYSLOG_PID": str(100 + i),
                    "MESSAGE": f"{0xB000 + i:X}: to=<u{i}@d.example>, relay=r.example[192.0.2.1]"
                               f":25, delay=1, delays=0/0/0/1, dsn=5.1.1, status={st} "
                               f"(550 5.1.1 unknown)"})
    return out


@pytest.mark.parametrize("style", ["json", "export", "json-pretty", "json-seq", "json-sse"])
def test_journal_export_as_log_file_is_unknown_not_a_silent_ok(tmp_path: Path,
                                                               style: str) -> None:
    """``journalctl -o json > f`` or ``-o export`` then ``--log-file f``: no syslog line,
    the program is a SYSLOG_IDENTIFIER field. Before: OK "too few deliveries to judge
    (0 < 10 ...)" on 10 bounces among 20 recipients."""
    entries = _journal_entries(time.time())
    if style == "json":
        text = "".join(json.dumps(e) + "\n" for e in entries)
    elif style == "json-pretty":       # journalctl's own layout: a tab, " : "
        text = "".join("{\n" + ",\n".join(f"\t{json.dumps(k)} : {json.dumps(v)}"
                                           for k, v in e.items()) + "\n}\n" for e in entries)
    elif style == "json-seq":
        text = "".join("\x1e" + json.dumps(e) + "\n" for e in entries)
    elif style == "json-sse":
        text = "".join("data: " + json.dumps(e) + "\n\n" for e in entries)
    else:
        text = "".join("".join(f"{k}={v}\n" for k, v in e.items()) + "\n" for e in entries)
    log = tmp_path / "journal.txt"
    log.write_text(text)
    r = _run("check_postfix_bounce_rate", "--log-file", str(log), "--state-dir",
             str(tmp_path / "st"), "-w", "5", "-c", "15", cwd=tmp_path)
    first = r.stdout.splitlines()[0]
    assert first.startswith("POSTFIX BOUNCE RATE UNKNOWN - "), r.stdout
    assert "--journal" in first, first
    assert (r.returncode, r.stderr) == (3, "")



def test_journal_export_after_a_block_of_syslog_lines_is_still_unknown(tmp_path: Path) -> None:
    """Syslog lines (more than the reader's 1 MiB block) then a journal export appended to the
    same file: the export's status lines (20 % of all) are a style change past 5 %, UNKNOWN as
    docs/log-formats.md says. Before: with the export search skipped once the run had counted
    a delivery (27d5f16), OK "0 of 8000 recipients", the 2000 exported deliveries unseen."""
    now = time.time()
    stamp = time.strftime("%b %e %H:%M:%S", time.localtime(now - 400))
    syslog = "".join(f"{stamp} mx postfix/smtp[{i}]: {0xA000 + i:X}: to=<s{i}@d.example>, "
                     f"relay=r.example[192.0.2.1]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, "
                     f"status=sent (250 ok)\n" for i in range(8000))
    assert len(syslog) > 1024 * 1024                 # the export starts in a later block
    entries = [e for _ in range(100) for e in _journal_entries(now)]
    log = tmp_path / "mixed.log"
    log.write_text(syslog + "".join(json.dumps(e) + "\n" for e in entries))
    r = _run("check_postfix_bounce_rate", "--log-file", str(log), "--state-dir",
             str(tmp_path / "st"), "-w", "5", "-c", "15", cwd=tmp_path)
    assert r.stdout.startswith("POSTFIX BOUNCE RATE UNKNOWN - 2000 Postfix log line(s) (2000 "
                               "delivery status) "), r.stdout
    assert "journal export, read with --journal:" in r.stdout, r.stdout
    assert (r.returncode, r.stderr) == (3, ""), r.stdout

# -- a "|" in what the first line quotes -------------------------------------------------------

def test_pipe_in_a_quoted_log_line_is_kept_visible_without_a_library_warning(
        tmp_path: Path) -> None:
    """``docker compose logs`` prefixes every line with ``postfix-1  | ``; under a stamp not
    understood (here a German month) the UNKNOWN line quotes it. Before: nagiosplugin dropped
    the "|" (Nagios' perfdata separator) from the example and added a second line "warning:
    removed illegal characters (0x7c) from status line"."""
    lines = [f"postfix-1  | Dez  2 10:00:{i:02d} mx postfix/smtp[{i}]: {0xC000 + i:X}: "
             f"to=<u{i}@d.example>, relay=r.example[192.0.2.1]:25, delay=1, delays=0/0/0/1, "
             f"dsn=2.0.0, status=sent (250 ok)" for i in range(12)]
    log = tmp_path / "compose.log"
    log.write_text("\n".join(lines) + "\n")
    r = _run("check_postfix_bounce_rate", "--log-file", str(log), "--state-dir",
             str(tmp_path / "st"), cwd=tmp_path)
    assert r.returncode == 3, r.stdout
    assert r.stdout.startswith("POSTFIX BOUNCE RATE UNKNOWN - 12 Postfix log line(s) "), r.stdout
    assert "e.g. 'postfix-1  \u00a6 Dez  2 10:00:00 mx postfix/smtp[0]" in r.stdout, r.stdout
    assert "illegal characters" not in r.stdout and r.stdout.count("\n") == 1, r.stdout


# -- "~:N" after bash's tilde expansion ----------------------------------------------------------

def test_range_whose_tilde_a_shell_expanded_says_to_quote_it(tmp_path: Path) -> None:
    """bash (RHEL's /bin/sh, which Nagios and NRPE run commands through) expands an unquoted
    ``-w ~:10`` to ``-w /home/nagios:10``. Before: "'/home/nagios' is not a number", which
    does not say what to fix."""
    for argv, quoted in ((["-w", "/var/spool/nagios:10"], "'~:10'"), (["-c=@/root:5"], "'@~:5'")):
        r = _run("check_postfix_queue", *argv, "--postqueue", str(tmp_path / "none"),
                 cwd=tmp_path)
        assert r.returncode == 3 and r.stdout.count("\n") == 1, r.stdout
        assert f"a shell expanded '~': quote the range ({quoted})" in r.stdout, r.stdout


# -- the exporter's delivery counters and lines in a format not understood ----------------------

def test_prometheus_counters_say_when_new_postfix_lines_are_not_understood(
        tmp_path: Path) -> None:
    """The log gains 12 delivery status lines whose stamp no style reads (a syslog restarted in
    a German locale). Before: the counters stayed at 0 with postfix_queue_monitor_errors 0 and
    exit 0 (silent); the bounce check is UNKNOWN on the same log. Now the collection counts the
    counters as a failed part (exit 3, "partly measured"), and keeps saying so while those
    lines are recent (an hour), not only on the run that read them."""
    pq = tmp_path / "postqueue"
    pq.write_text("#!/bin/sh\nexit 0\n")
    pq.chmod(0o755)
    log = tmp_path / "mail.log"
    log.write_text("")
    out = tmp_path / "out.prom"
    argv = ["textfile", str(out), "--postqueue", str(pq), "--state-dir", str(tmp_path / "st"),
            "--log-file", str(log)]
    first = _run("postfix_queue_prometheus", *argv, cwd=tmp_path)
    assert first.returncode == 0, first.stdout
    with log.open("a") as fh:
        for i in range(12):
            fh.write(f"Dez  2 10:00:{i:02d} mx postfix/smtp[{i}]: {0xD000 + i:X}: "
                     f"to=<u{i}@d.example>, relay=r.example[192.0.2.1]:25, delay=1, "
                     f"delays=0/0/0/1, dsn=5.1.1, status=bounced (550 5.1.1 unknown)\n")
    for attempt in range(2):          # the run that read them, and the next one
        r = _run("postfix_queue_prometheus", *argv, cwd=tmp_path)
        assert r.returncode == 3, (attempt, r.stdout)
        assert r.stdout.startswith("partly measured: deliveries: 12 Postfix log line(s) "
                                   "(12 delivery status) are in a format"), (attempt, r.stdout)
        assert "postfix_queue_monitor_errors 1.0" in out.read_text(), attempt


# -- macOS' syslog: a level after the pid ------------------------------------------------------

def test_macos_syslog_level_after_the_pid_is_read(tmp_path: Path) -> None:
    """macOS' syslogd (Postfix of macOS Server) writes ``postfix/smtp[123] <Info>: …``.
    Before: no line matched a Postfix tag, 10 bounces among 20 recipients read as OK "too few
    deliveries to judge (0 < 10 ...)"."""
    now = time.time()
    lines = []
    for i in range(20):
        stamp = time.strftime("%b %e %H:%M:%S", time.localtime(now - 300 + i))
        st = "bounced" if i % 2 else "sent"
        lines.append(f"{stamp} mail postfix/smtp[{100 + i}] <Info>: {0xE100 + i:X}: "
                     f"to=<u{i}@d.example>, relay=r.example[192.0.2.1]:25, delay=1, "
                     f"delays=0/0/0/1, dsn=5.1.1, status={st} (550 5.1.1 unknown)")
    lines.append(time.strftime("%b %e %H:%M:%S", time.localtime(now)) +
                 " mail postfix/smtpd[7] <Info>: connect from unknown[192.0.2.9]")
    log = tmp_path / "mail.log"
    log.write_text("\n".join(lines) + "\n")
    r = _run("check_postfix_bounce_rate", "--log-file", str(log), "--state-dir",
             str(tmp_path / "st"), "-w", "5", "-c", "60", "-v", cwd=tmp_path)
    assert r.stdout.startswith("POSTFIX BOUNCE RATE WARNING - bounce rate 50% (> 5; 10 of 20 "),\
        r.stdout
    assert "matched no pattern" not in r.stdout, r.stdout
    r = _run("check_postfix_bounce_rate", "--log-file", str(log), "--state-dir",
             str(tmp_path / "st2"), "--syslog-name", "postfix", cwd=tmp_path)
    assert "10 of 20 recipients" in r.stdout, r.stdout


# -- a container's log forwarded by a syslog (docker's syslog log driver) -----------------------

@pytest.mark.parametrize("outer_tag,inner", [
    ("3a1b2c3d4e5f[987]", "iso"),           # the driver's default tag: the container ID
    ("postfix[987]", "iso"),                # tag: postfix
    ("mailserver[987]", "classic"),         # a container writing Postfix's own maillog_file
])
def test_container_line_forwarded_by_a_syslog_is_counted(tmp_path: Path, outer_tag: str,
                                                          inner: str) -> None:
    """docker's syslog log driver hands each stdout line of the container to the host's
    syslog, which writes its own stamp, host and tag before it:
    ``Dec  3 10:00:00 dockerhost 3a1b2c3d4e5f[987]: 2026-12-03T10:00:00+01:00 INFO
    postfix/smtp[12]: …``. Before: every such line was taken for another program quoting
    Postfix and 10 bounces among 20 recipients read as OK "too few deliveries to judge"."""
    now = time.time()
    lines = []
    for i in range(20):
        t = now - 300 + i
        outer = time.strftime("%b %e %H:%M:%S", time.localtime(t)) + f" dockerhost {outer_tag}: "
        stamp = (time.strftime("%Y-%m-%dT%H:%M:%S+00:00 INFO    ", time.gmtime(t))
                 if inner == "iso" else time.strftime("%b %e %H:%M:%S mail ", time.localtime(t)))
        st = "bounced" if i % 2 else "sent"
        lines.append(f"{outer}{stamp}postfix/smtp[{i}]: {0xE200 + i:X}: to=<u{i}@d.example>, "
                     f"relay=r.example[192.0.2.1]:25, delay=1, delays=0/0/0/1, dsn=5.1.1, "
                     f"status={st} (550 5.1.1 unknown)")
    log = tmp_path / "mail.log"
    log.write_text("\n".join(lines) + "\n")
    r = _run("check_postfix_bounce_rate", "--log-file", str(log), "--state-dir",
             str(tmp_path / "st"), "-w", "5", "-c", "60", cwd=tmp_path)
    assert r.stdout.startswith("POSTFIX BOUNCE RATE WARNING - bounce rate 50% (> 5; 10 of 20 "),\
        r.stdout


def test_another_program_quoting_a_postfix_line_still_counts_nowhere() -> None:
    """The rule the forwarded lines above must not break: a Postfix line quoted inside
    another program's message (not at its start) is not a Postfix line."""
    from postfix_queue_monitor import maillog
    line = (b"Dec  3 10:00:00 mx amavis[5]: (1234-01) quoting postfix/smtp[1]: ABC1: "
            b"to=<u@d.example>, relay=r, dsn=5.1.1, status=bounced (550 unknown)\n")
    now = time.time()
    assert maillog.parse_line(line, maillog.Clock(now)) is None
    tally = maillog.Tally(since=0)
    maillog.LineFeeder(tally, maillog.Clock(now), None).feed_block(line)
    assert tally.events == 0 and tally.odd[0] == 0


# -- soft_bounce = yes ---------------------------------------------------------------------------

def test_softbounce_status_counts_as_deferred(tmp_path: Path) -> None:
    """With ``soft_bounce = yes`` Postfix keeps what would have bounced in the queue and logs
    ``dsn=4.x.x, status=SOFTBOUNCE (…)`` (real lines: "status=SOFTBOUNCE (host … said: 501
    5.7.1 … Sender refused by the DNSBL …)"). Before: such lines counted nowhere, silently (the
    scan's status was lowercase only): 10 of 20 recipients vanished from every figure. They
    are deferrals (the message stays queued and is retried), counted as deferred, in the block
    scan and through parse_line alike."""
    now = time.time()
    lines = []
    for i in range(20):
        stamp = time.strftime("%b %e %H:%M:%S", time.localtime(now - 300 + i))
        tail = ("dsn=4.7.1, status=SOFTBOUNCE (host mx.d.example[192.0.2.1] said: 501 5.7.1 "
                "Sender refused by the DNSBL b.barracudacentral.org (in reply to RCPT TO "
                "command))" if i % 2 else "dsn=2.0.0, status=sent (250 2.0.0 Ok)")
        lines.append(f"{stamp} mx postfix/smtp[{i}]: {0xE300 + i:X}: to=<u{i}@d.example>, "
                     f"relay=mx.d.example[192.0.2.1]:25, delay=1, delays=0/0/0/1, {tail}")
    log = tmp_path / "mail.log"
    log.write_text("\n".join(lines) + "\n")
    r = _run("check_postfix_bounce_rate", "--log-file", str(log), "--state-dir",
             str(tmp_path / "st"), "-v", cwd=tmp_path)
    assert r.stdout.startswith("POSTFIX BOUNCE RATE OK - bounce rate 0% (0 of 10 recipients "
                               "in 1h), deferral rate 50%"), r.stdout
    assert "deferrals by reason: policy 10" in r.stdout, r.stdout
    from postfix_queue_monitor import maillog
    ev = maillog.parse_line(lines[1].encode() + b"\n", maillog.Clock(now))
    assert isinstance(ev, maillog.Event) and ev.kind == "deferred", ev


def test_container_line_in_the_journal_is_counted(tmp_path: Path) -> None:
    """docker's journald log driver with ``tag: postfix`` stores the container's stdout lines
    as MESSAGE under SYSLOG_IDENTIFIER=postfix: ``2026-12-03T10:00:00+00:00 INFO
    postfix/smtp[12]: …``. Before: "matched no pattern" for each (a -v note), OK "too few
    deliveries to judge" on 10 bounces among 20 recipients."""
    from postfix_queue_monitor import deliveries
    now = time.time()
    entries = []
    for i in range(20):
        t = now - 300 + i
        st = "bounced" if i % 2 else "sent"
        entries.append(json.dumps({
            "__CURSOR": f"c{i}", "__REALTIME_TIMESTAMP": str(int(t * 1e6)),
            "SYSLOG_IDENTIFIER": "postfix",
            "MESSAGE": time.strftime("%Y-%m-%dT%H:%M:%S+00:00 INFO    ", time.gmtime(t))
            + f"postfix/smtp[{i}]: {0xE400 + i:X}: to=<u{i}@d.example>, relay=r.example"
              f"[192.0.2.1]:25, delay=1, delays=0/0/0/1, dsn=5.1.1, status={st} (550 5.1.1 "
              f"unknown)"}))
    (tmp_path / "entries").write_text("\n".join(entries) + "\n")
    fake = tmp_path / "journalctl"
    fake.write_text("#!/bin/sh\ncase \"$*\" in *SYSLOG_IDENTIFIER*=*) cat "
                    f"{tmp_path}/entries ;; *) echo postfix ;; esac\n")
    fake.chmod(0o755)
    stats = deliveries.measure_deliveries(None, True, None, 3600, str(tmp_path / "s"), now, 10,
                                          journalctl=str(fake))
    assert (stats.sent, stats.bounced, stats.unmatched) == (10, 10, 0), stats


def test_pipe_in_a_bad_option_value_does_not_start_perfdata(tmp_path: Path) -> None:
    """A bad option's UNKNOWN line quotes the value; a "|" in it (``-w '10|20'``) made Nagios
    read the rest of the line as perfdata. It shows as U+00A6, as in the checks' other lines."""
    r = _run("check_postfix_queue", "-w", "10|20", cwd=tmp_path)
    assert r.returncode == 3 and "|" not in r.stdout, r.stdout
    assert "bad threshold: '10\u00a620' is not a number" in r.stdout, r.stdout
