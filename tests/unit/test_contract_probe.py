"""The shipped commands run the way an administrator runs them, on inputs written here and not
taken from tests/fixtures (stand-in postqueue scripts, hand-made listings): each test is a
divergence from docs/reference.md found that way, failing before its fix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from postfix_queue_monitor.errors import MonitorError
from postfix_queue_monitor.zabbix import sender

BIN = Path(sys.executable).parent


def _run(prog: str, *argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / prog), *argv], capture_output=True, text=True, timeout=60,
                          cwd=cwd)


def _old_postqueue(tmp_path: Path, text_listing: str) -> Path:
    """A Postfix < 3.1 stand-in: ``-j`` is refused as real postqueue refuses it (exit 64),
    ``-p`` prints ``text_listing``."""
    listing = tmp_path / "listing.txt"
    listing.write_text(text_listing)
    script = tmp_path / "postqueue"
    script.write_text("#!/bin/sh\n"
                      'for a; do case "$a" in\n'
                      "  -j) echo \"postqueue: invalid option -- 'j'\" >&2;\n"
                      '      echo "postqueue: fatal: usage: postqueue -f | postqueue -p | '
                      'postqueue -s site" >&2; exit 64;;\n'
                      f'  -p) cat "{listing}"; exit 0;;\n'
                      "esac; done\nexit 64\n")
    script.chmod(0o755)
    return script


# -- postqueue -p that prints no listing at all ----------------------------------------------

@pytest.mark.parametrize("prog", ["check_postfix_queue", "check_postfix_oldest_message"])
def test_text_listing_that_prints_nothing_is_unknown_not_an_empty_queue(
        tmp_path: Path, prog: str) -> None:
    """postqueue -p always ends with "Mail queue is empty" or "-- N Kbytes in M Requests.";
    nothing at all is not an empty queue (before: OK "queue empty", a silent OK)."""
    pq = _old_postqueue(tmp_path, "")
    res = _run(prog, "--postqueue", str(pq), "--state-dir", str(tmp_path / "st"), cwd=tmp_path)
    assert res.returncode == 3 and res.stderr == "", res
    first = res.stdout.splitlines()[0]
    assert " UNKNOWN - " in first and "-p" in first and "Mail queue is empty" in first, first


def test_text_listing_that_says_empty_is_an_empty_queue(tmp_path: Path) -> None:
    pq = _old_postqueue(tmp_path, "Mail queue is empty\n")
    res = _run("check_postfix_queue", "--postqueue", str(pq), "-c", "0",
               "--state-dir", str(tmp_path / "st"), cwd=tmp_path)
    assert res.returncode == 0 and res.stdout.startswith("POSTFIX QUEUE OK - queue empty"), res


# -- postfix_queue_zabbix send --zabbix-server: a bad value is a usage line -------------------

@pytest.mark.parametrize("text", ["zbx:99999", "zbx:0", "zbx:65536", ":10051", "a:1,b:70000"])
def test_parse_servers_refuses_ports_out_of_range_and_empty_hosts(text: str) -> None:
    with pytest.raises(MonitorError, match="server"):
        sender.parse_servers(text)


@pytest.mark.parametrize("server", ["127.0.0.1:99999", ""])
def test_send_with_a_bad_zabbix_server_says_what_to_fix(tmp_path: Path, server: str) -> None:
    """Before: 'internal error: OverflowError: connect(): port must be 0-65535.' for a port out
    of range, 'internal error: TypeError: …' for an empty --zabbix-server."""
    pq = tmp_path / "postqueue"
    pq.write_text("#!/bin/sh\nexit 0\n")
    pq.chmod(0o755)
    res = _run("postfix_queue_zabbix", "send", "--zabbix-server", server, "--host", "h1",
               "--postqueue", str(pq), "--log-file", "/dev/null",
               "--state-dir", str(tmp_path / "st"), cwd=tmp_path)
    assert res.returncode == 3 and res.stderr == "", res
    assert "internal error" not in res.stdout and "Error" not in res.stdout, res.stdout
    assert "server" in res.stdout.splitlines()[0], res.stdout


# -- the options every check takes, the bounce check included ----------------------------------

def test_bounce_check_takes_the_options_every_check_takes(tmp_path: Path) -> None:
    """--postqueue, --config-dir and --listing-max-age are options every check takes (the
    bounce check is one of "the four checks" of the shared listing); before, the bounce check
    was UNKNOWN "unrecognized arguments" for each. It reads the log, so they change nothing."""
    stamp = time.strftime("%b %e %H:%M:%S", time.localtime(time.time() - 120))
    log = tmp_path / "mail.log"
    log.write_text("".join(
        f"{stamp} mx postfix/smtp[9]: 4F00{i:04X}: to=<u{i}@d.example>, relay=d.example"
        f"[192.0.2.1]:25, delay=1, delays=0/0/0/1, dsn={dsn}, status={st} (x)\n"
        for i, (dsn, st) in enumerate([("2.0.0", "sent")] * 3 + [("5.1.1", "bounced")])))
    base = ["--log-file", str(log), "--min-deliveries", "1", "-w", "10"]
    plain = _run("check_postfix_bounce_rate", *base, "--state-dir", str(tmp_path / "a"),
                 cwd=tmp_path)
    res = _run("check_postfix_bounce_rate", *base, "--state-dir", str(tmp_path / "b"),
               "--postqueue", str(tmp_path / "no-postqueue"), "--config-dir", "/etc/postfix-out",
               "--listing-max-age", "60", cwd=tmp_path)
    assert res.stderr == "" and res.returncode == plain.returncode == 1, res
    assert res.stdout == plain.stdout and "bounce rate 25%" in res.stdout, res.stdout
    bad = _run("check_postfix_bounce_rate", *base, "--listing-max-age", "soon", cwd=tmp_path)
    assert bad.returncode == 3 and "--listing-max-age" in bad.stdout, bad


# -- a bad option's line is the check's status line --------------------------------------------

@pytest.mark.parametrize("program,status,argv", [
    ("check_postfix_queue", "POSTFIX QUEUE", ["-w", "abc"]),
    ("check_postfix_oldest_message", "POSTFIX OLDEST", ["-c", "1x"]),
    ("check_postfix_deferred_growth", "POSTFIX GROWTH", ["--window", "soon"]),
    ("check_postfix_bounce_rate", "POSTFIX BOUNCE RATE", ["--min-deliveries", "-1"]),
])
def test_a_bad_option_is_the_checks_own_status_line(tmp_path: Path, program: str, status: str,
                                                   argv: list[str]) -> None:
    """The first line is '<NAME> <STATE> - …' like every other line a check prints (before:
    'UNKNOWN - check_postfix_queue: …' without the name)."""
    res = _run(program, *argv, cwd=tmp_path)
    assert res.returncode == 3 and res.stderr == "", res
    assert res.stdout.startswith(f"{status} UNKNOWN - {program}: "), res.stdout
    assert len(res.stdout.splitlines()) == 1


# -- a mail log read in part at the deadline -------------------------------------------------

def _log_of_400(tmp_path: Path, now: float) -> Path:
    """400 delivery lines in the half hour before ``now``, one in four bounced."""
    log = tmp_path / "mail.log"
    with log.open("w") as fh:
        for i in range(400):
            stamp = time.strftime("%b %e %H:%M:%S", time.localtime(now - 1800 + i))
            st = "bounced" if i % 4 == 0 else "sent"
            fh.write(f"{stamp} mx postfix/smtp[9]: 5A{i:08X}: to=<u{i}@d.example>, relay=d"
                     f"[192.0.2.1]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status={st} (x)\n")
    return log


def _stop_after_two_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The log reader's deadline passes after its second 4 KiB chunk."""
    from postfix_queue_monitor import deliveries
    from postfix_queue_monitor.deadline import Deadline
    from postfix_queue_monitor.maillog import reader

    class StopsAfterTwoChunks(Deadline):
        calls = 0

        def expired(self) -> bool:
            type(self).calls += 1
            return type(self).calls > 2

    monkeypatch.setattr(reader, "CHUNK", 4096)
    monkeypatch.setattr(deliveries, "Deadline", StopsAfterTwoChunks)


def test_the_zabbix_document_says_when_the_log_was_read_in_part(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    """Its delivery counts are then of the part read: meta.error says so (it said nothing)."""
    from fakes import fake_postqueue
    from postfix_queue_monitor.zabbix import cli as zabbix_cli

    log = _log_of_400(tmp_path, time.time())
    argv = ["json", "--postqueue", fake_postqueue(tmp_path, j=None), "--log-file", str(log),
            "--state-dir", str(tmp_path / "st")]
    _stop_after_two_chunks(monkeypatch)
    assert zabbix_cli.main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["delivery"]["sent"] + doc["delivery"]["bounced"] < 400, doc
    assert "deliveries: log read in part, stopped at the deadline" in doc["meta"]["error"], doc
    monkeypatch.undo()
    assert zabbix_cli.main(argv) == 0                      # the rest, and the whole window
    doc = json.loads(capsys.readouterr().out)
    assert doc["delivery"]["bounced"] == 100 and doc["meta"]["error"] == "", doc

def test_a_log_read_in_part_at_the_deadline_says_so_on_the_first_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_main) -> None:
    """The file reader stops at the deadline and goes on next run; the first run's counts are
    then of the part read, and the status line said nothing of it (only -vv did)."""
    from postfix_queue_monitor.plugins import bounce

    now = 1796300000.0
    log = _log_of_400(tmp_path, now)
    argv = ["--log-file", str(log), "--state-dir", str(tmp_path / "st"), "-w", "10"]
    _stop_after_two_chunks(monkeypatch)
    code, out = run_main(bounce.main, argv, now)
    first = out.splitlines()[0]
    assert code == 1 and "log read in part, stopped at the deadline" in first, out
    assert "of 400 recipients" not in first
    monkeypatch.undo()
    code, out = run_main(bounce.main, argv, now)           # the rest, and the whole window
    first = out.splitlines()[0]
    assert code == 1 and "100 of 400 recipients" in first and "in part" not in first, out


# -- the reason classes' own examples, as delay reasons of a listing ---------------------------

def test_a_bare_4_7_1_try_again_later_is_greylisted_in_the_report(tmp_path: Path) -> None:
    """The classes' rule names 'a bare "4.7.1 Try again later"' as greylisted; written as a
    delay_reason by itself (no "host … said: 450"), it was policy: a text that starts with an
    enhanced status code is the remote's reply, as one that starts with a reply code is."""
    now = int(time.time())
    texts = {"4.7.1 Try again later": "greylisted",
             "451 4.7.500 Server busy. Please try again later from [192.0.2.9]. (S77719)":
                 "rate_limited",
             "host mx.d.example[192.0.2.1] said: 450 4.7.1 Try again later (in reply to RCPT "
             "TO command)": "greylisted"}
    listing = tmp_path / "listing.jsonl"
    listing.write_text("".join(json.dumps(
        {"queue_name": "deferred", "queue_id": f"B{i}", "arrival_time": now - 900,
         "message_size": 700, "forced_expire": False, "sender": "s@src.example",
         "recipients": [{"address": f"u{i}@d{i}.example", "delay_reason": text}]}) + "\n"
        for i, text in enumerate(texts)))
    pq = tmp_path / "postqueue"
    pq.write_text(f'#!/bin/sh\ncat "{listing}"\n')
    pq.chmod(0o755)
    res = _run("postfix_queue_report", "--postqueue", str(pq), "--json", cwd=tmp_path)
    assert res.returncode == 0 and res.stderr == "", res
    reasons = {k: v for k, v in json.loads(res.stdout)["deferred_reasons"].items() if v}
    assert reasons == {"greylisted": 2, "rate_limited": 1}, reasons


# -- a reader that goes away (… | head) --------------------------------------------------------

@pytest.mark.parametrize("argv", [
    ["postfix_queue_zabbix", "json", "--log-file", "/dev/null"],
    ["postfix_queue_prometheus", "textfile", "/nonexistent-dir/postfix.prom",   # one line
     "--log-file", "/dev/null"],
    ["postfix_queue_report"],
    ["check_postfix_queue"],
    ["check_postfix_oldest_message"],
    ["check_postfix_deferred_growth"],
    ["check_postfix_bounce_rate", "--log-file", "/dev/null"],
    ["check_postfix_queue", "-w", "abc"],                       # the usage line (Parser.error)
    ["postfix_queue_zabbix", "send", "--host", "h", "-z", "zbx:99999"],
])
def test_stdout_closed_by_its_reader_is_no_traceback(tmp_path: Path, argv: list[str]) -> None:
    """`postfix_queue_zabbix json | head -c 100` printed 'BrokenPipeError' tracebacks on
    stderr, and so did every check (nagiosplugin's output, a usage line). The read end is
    closed before the command writes, so every write fails: exit 3, nothing on stderr."""
    pq = tmp_path / "postqueue"
    pq.write_text("#!/bin/sh\nexit 0\n")
    pq.chmod(0o755)
    extra = [] if argv[0] == "postfix_queue_report" else ["--state-dir", str(tmp_path / "st")]
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        res = subprocess.run([str(BIN / argv[0]), *argv[1:], "--postqueue", str(pq), *extra],
                             stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=60,
                             cwd=tmp_path)
    finally:
        os.close(write_end)
    assert res.stderr == "" and res.returncode == 3, (res.returncode, res.stderr)


# -- postfix_queue_prometheus textfile PATH: a regular file, never what a link points at ---------

@pytest.mark.parametrize("kind", ["symlink", "fifo", "directory"])
def test_textfile_refuses_a_path_that_is_not_a_regular_file(tmp_path: Path, kind: str) -> None:
    """`textfile /dev/stdout` as root renamed the exposition over the /dev/stdout symlink (the
    system's link became a regular file); a symlink in the textfile directory was replaced the
    same way. A path that exists and is not a regular file is now one line, exit 3, untouched."""
    pq = tmp_path / "postqueue"
    pq.write_text(f'#!/bin/sh\ntouch "{tmp_path / "listed"}"\nexit 0\n')
    pq.chmod(0o755)
    target = tmp_path / "elsewhere.prom"
    target.write_text("kept\n")
    path = tmp_path / "postfix.prom"
    if kind == "symlink":
        path.symlink_to(target)
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        path.mkdir()
    res = _run("postfix_queue_prometheus", "textfile", str(path), "--postqueue", str(pq),
               "--log-file", "/dev/null", "--state-dir", str(tmp_path / "st"), cwd=tmp_path)
    assert res.returncode == 3 and res.stderr == "" and len(res.stdout.splitlines()) == 1, res
    assert str(path) in res.stdout and "regular file" in res.stdout, res.stdout
    assert (path.is_symlink() if kind == "symlink" else path.exists())
    assert target.read_text() == "kept\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    assert not (tmp_path / "listed").exists()      # refused before measuring: no listing


def test_write_atomic_itself_refuses_a_symlink(tmp_path: Path) -> None:
    """The check right before the rename (cmd_textfile's own check runs before measuring, so
    the test above never reaches this one): a link planted while measuring is not replaced."""
    from postfix_queue_monitor.prometheus import cli as prom

    target = tmp_path / "elsewhere.prom"
    target.write_text("kept\n")
    path = tmp_path / "postfix.prom"
    path.symlink_to(target)
    with pytest.raises(MonitorError, match="symlink"):
        prom.write_atomic(str(path), b"postfix_up 1\n")
    assert path.is_symlink() and target.read_text() == "kept\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


# -- --state-dir naming a shared directory ---------------------------------------------------

def test_a_shared_state_dir_is_refused_not_made_private(tmp_path: Path) -> None:
    """`--state-dir /tmp` (or /var/lib) as root chmod-ed that directory to 0700, locking every
    other user and daemon out of it. A directory that is not private and holds files that are
    not ours is now UNKNOWN naming the fix, and left as it is; one that holds only our files
    (or nothing, as a fresh systemd StateDirectory) is still made private."""
    pq = tmp_path / "postqueue"
    pq.write_text("#!/bin/sh\nexit 0\n")
    pq.chmod(0o755)
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    (shared / ".X11-unix").mkdir()
    res = _run("check_postfix_deferred_growth", "--postqueue", str(pq), "--state-dir",
               str(shared), cwd=tmp_path)
    assert res.returncode == 3 and res.stderr == "", res
    assert res.stdout.startswith("POSTFIX GROWTH UNKNOWN - state dir ") and "own" in res.stdout
    assert os.stat(shared).st_mode & 0o7777 == 0o1777
    assert sorted(p.name for p in shared.iterdir()) == [".X11-unix"]
    ours = tmp_path / "ours"
    ours.mkdir()
    (ours / "growth-default.json.corrupt-1796300000").write_text("{}")
    os.chmod(ours, 0o755)
    res = _run("check_postfix_deferred_growth", "--postqueue", str(pq), "--state-dir",
               str(ours), cwd=tmp_path)
    assert res.returncode == 0 and "waiting for baseline" in res.stdout, res
    assert os.stat(ours).st_mode & 0o777 == 0o700


def test_a_hung_journalctl_is_unknown_within_t_in_tenths(tmp_path: Path) -> None:
    """--journal with a journalctl that hangs: UNKNOWN within -t, the child gone, and the time
    in tenths like the queue's line (it said 'within 1.59893 s')."""
    import re
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "journalctl"
    fake.write_text(f"#!/bin/sh\necho $$ > {tmp_path}/pid\nexec sleep 1000\n")
    fake.chmod(0o755)
    started = time.monotonic()
    res = subprocess.run([str(BIN / "check_postfix_bounce_rate"), "--journal", "-t", "2",
                          "--state-dir", str(tmp_path / "st")], capture_output=True, text=True,
                         timeout=30, cwd=tmp_path,
                         env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"})
    assert time.monotonic() - started < 3 and res.returncode == 3 and res.stderr == "", res
    assert re.search(r"journalctl did not finish within \d+\.\d s and was killed", res.stdout)
    with pytest.raises(ProcessLookupError):
        os.kill(int((tmp_path / "pid").read_text()), 0)


def test_two_corrupt_state_files_in_one_second_are_both_kept(tmp_path: Path) -> None:
    """The moved-aside copy is kept for a post-mortem; a second corrupt file within the same
    second was renamed over the first one."""
    from postfix_queue_monitor.state import StateDir, StateError
    d = StateDir(str(tmp_path / "st"))
    for garbage in ("first garbage", "second garbage"):
        d.ensure()
        Path(d.file("growth-default.json")).write_text(garbage)
        with pytest.raises(StateError, match="corrupt"), d.locked("growth-default.json", 1) as sf:
            sf.read("growth")
    kept = sorted(p.read_text() for p in Path(d.path).glob("growth-default.json.corrupt-*"))
    assert kept == ["first garbage", "second garbage"]


# -- postfix_queue_zabbix discover: postmulti output not understood --------------------------

@pytest.mark.parametrize("text", [
    "",                                                     # not even the default instance
    "garbage\n",
    "mta postfix-out mta y /etc/postfix-out\n",             # five columns: not a row
    "-  -  y  /etc/postfix\npostfix-out mta yes /etc/postfix-out\n",
])
def test_discover_refuses_postmulti_output_it_does_not_understand(tmp_path: Path,
                                                                  text: str) -> None:
    """Before: '[]' (Zabbix then drops every instance it had discovered) or a row with
    '{#CONFIG_DIR}': 'y'. Now one line, exit 3."""
    out = tmp_path / "out.txt"
    out.write_text(text)
    pm = tmp_path / "postmulti"
    pm.write_text(f'#!/bin/sh\ncat "{out}"\n')
    pm.chmod(0o755)
    res = _run("postfix_queue_zabbix", "discover", "--postmulti", str(pm), cwd=tmp_path)
    assert res.returncode == 3 and res.stderr == "", res
    assert len(res.stdout.splitlines()) == 1 and "postmulti -l" in res.stdout, res.stdout


def test_discover_reads_the_default_instance_alone_as_no_other(tmp_path: Path) -> None:
    pm = tmp_path / "postmulti"
    pm.write_text('#!/bin/sh\necho "-               -               y         /etc/postfix"\n')
    pm.chmod(0o755)
    res = _run("postfix_queue_zabbix", "discover", "--postmulti", str(pm), cwd=tmp_path)
    assert res.returncode == 0 and json.loads(res.stdout) == [], res


# -- postqueue -p: a recipient with a quoted local part ----------------------------------------

#: Postfix 3.7's own -p of a private lab instance (sendmail to '"john doe"@ok.example' and two
#: more recipients while nothing listened), captured for this test
QUOTED_P = """\
-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------
B01CD20E534     315 Thu Dec  3 17:31:56  s@src.example
                   (connect to 127.0.0.1[127.0.0.1]:25269: Connection refused)
                                         "john doe"@ok.example
                                         plain@ok.example

B204920E533     296 Thu Dec  3 17:31:56  s@src.example
                   (connect to 127.0.0.1[127.0.0.1]:25269: Connection refused)
                                         \u7528\u6237@\u4f8b\u5b50.\u5e7f\u544a

-- 0 Kbytes in 2 Requests.
"""


def test_text_listing_keeps_a_recipient_with_a_quoted_local_part(tmp_path: Path) -> None:
    """'"john doe"@ok.example' was skipped as a malformed line: 2 deferred recipients instead
    of 3, and a -v note about a line that is legal."""
    pq = _old_postqueue(tmp_path, QUOTED_P)
    res = _run("postfix_queue_report", "--postqueue", str(pq), "--json", cwd=tmp_path)
    assert res.returncode == 0 and res.stderr == "", res
    doc = json.loads(res.stdout)
    assert doc["queues"]["deferred"]["messages"] == 2
    assert doc["queues"]["deferred"]["recipients"] == 3 and doc["malformed"] == 0
    assert {d["domain"]: d["recipients"] for d in doc["top_domains"]} == {
        "ok.example": 2, "\u4f8b\u5b50.\u5e7f\u544a": 1}
    assert doc["deferred_reasons"]["refused"] == 3


# -- a few status lines in a timestamp format not understood ---------------------------------

def _mixed_log(path: Path, now: float) -> None:
    """100 sent lines in RFC 3339, then 3 bounces whose classic stamps have a German month."""
    lines = [time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(now - 600 + i))
             + f" mx postfix/smtp[9]: 5A{i:08X}: to=<u@d.example>, relay=d[192.0.2.1]:25, "
               "delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 ok)" for i in range(100)]
    lines += [time.strftime("Dez %d %H:%M:%S", time.gmtime(now - 300))
              + f" mx postfix/smtp[9]: 6B{i:08X}: to=<u@d.example>, relay=d[192.0.2.1]:25, "
                "delay=1, delays=0/0/0/1, dsn=5.1.1, status=bounced (550 5.1.1 no such user)"
              for i in range(3)]
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("thresholds,code,first", [
    (["-w", "1"], 3, "POSTFIX BOUNCE RATE UNKNOWN - 3 delivery status line(s) with a timestamp "
                     "format this check cannot read could change the result"),
    (["-w", "10", "-c", "20"], 0, "POSTFIX BOUNCE RATE OK - bounce rate 0% (0 of 100"),
    ([], 0, "POSTFIX BOUNCE RATE OK - bounce rate 0% (0 of 100"),
])
def test_unreadable_status_lines_that_could_change_the_state_are_unknown(
        tmp_path: Path, thresholds: list[str], code: int, first: str) -> None:
    """The 3 unreadable lines are 2.9% of the status lines, under the 5% share that made the
    check UNKNOWN, and they are bounces: with -w 1 the check said OK 0% (a silent OK; only -v
    named them). Lines that cannot change the state (-w 10) still leave it as it is."""
    log = tmp_path / "mail.log"
    _mixed_log(log, time.time())
    res = _run("check_postfix_bounce_rate", "--log-file", str(log), "--state-dir",
               str(tmp_path / "st"), *thresholds, cwd=tmp_path)
    assert res.returncode == code and res.stderr == "", res
    assert res.stdout.startswith(first), res.stdout


def test_every_state_file_name_has_a_prefix_the_shared_dir_check_knows() -> None:
    """state.STATE_PREFIXES is kept by hand beside the five modules that name state files: a
    new or renamed file outside it would make our own state dir 'not this program's' (refused),
    a prefix no module uses any more would let a foreign file through. Both ways are checked."""
    from postfix_queue_monitor import deliveries, growth, listing, state
    from postfix_queue_monitor.prometheus import counters

    names = [growth.state_name(None), growth.state_name("/etc/postfix-out"),
             deliveries.state_name("/var/log/mail.log", None, 3600.0),
             deliveries.state_name("journal", "postfix-out", 900.0),
             counters.state_name("/var/log/mail.log", "postfix"),
             listing.file_name(None), listing.file_name("/etc/postfix-out"),
             sender.spool_name(["127.0.0.1:10051"]), sender.side_spool_name(["zbx:10051"])]
    assert [n for n in names if not n.startswith(state.STATE_PREFIXES)] == []
    assert [p for p in state.STATE_PREFIXES if not any(n.startswith(p) for n in names)] == []
