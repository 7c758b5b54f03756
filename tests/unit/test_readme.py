"""The README's example output is real: every block marked ``<!-- example … -->`` is run
in-process (a stand-in postqueue printing the named capture, the clock fixed) and must print
exactly what the README shows. The status lines it shows in ``text`` blocks (a storm's cut
listing, failures) are what the checks print, but for the figures. Every console command the
README names must exist, and every command line it shows parses as written."""

from __future__ import annotations

import os
import pwd
import re
import shlex
import subprocess
import sys
import time
from importlib.metadata import distribution
from pathlib import Path

import pytest

from fakes import fake_postqueue, slow_postqueue
from labproc import free_port
from postfix_queue_monitor import report
from postfix_queue_monitor.plugins import bounce, growth, oldest, queue_size
from postfix_queue_monitor.prometheus import cli as prometheus_cli
from postfix_queue_monitor.zabbix import cli as zabbix_cli
from prometheus_lab import wait_http

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
# fixture and now may list one value per command (comma-separated) for checks with state
BLOCK = re.compile(r"<!-- example fixture=(\S+) now=(\S+) -->\n```console\n(.*?)```", re.S)
MAINS = {"check_postfix_queue": queue_size.main, "check_postfix_oldest_message": oldest.main,
         "check_postfix_deferred_growth": growth.main, "postfix_queue_report": report.main,
         "check_postfix_bounce_rate": bounce.main}
STATEFUL = {"check_postfix_deferred_growth", "check_postfix_bounce_rate"}
READS_LOG = {"check_postfix_bounce_rate"}


def examples():
    for m in BLOCK.finditer(README):
        cmds = [c for c in re.split(r"^(?=\$ )", m[3], flags=re.M) if c.strip()]
        fixtures = m[1].split(",") * (len(cmds) if "," not in m[1] else 1)
        nows = [float(t) for t in m[2].split(",")] * (len(cmds) if "," not in m[2] else 1)
        steps = []
        for cmd, fixture, now in zip(cmds, fixtures, nows):
            first, _, expected = cmd.partition("\n")
            steps.append((fixture, now, first[2:], expected))
        yield pytest.param(steps, id=steps[0][2][:60])


@pytest.mark.parametrize("steps", list(examples()))
def test_readme_example_output(steps, tmp_path, fixtures, capsys, monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    for i, (fixture, now, command, expected) in enumerate(steps):
        argv = shlex.split(command)
        (tmp_path / str(i)).mkdir()
        if argv[0] in READS_LOG:
            source = ["--log-file", str(fixtures / fixture)]
        else:
            source = ["--postqueue", fake_postqueue(tmp_path / str(i), j=fixtures / fixture)]
        extra = ["--state-dir", str(tmp_path / "state")] if argv[0] in STATEFUL else []
        try:
            got = MAINS[argv[0]]([*argv[1:], *source, *extra], clock=lambda t=now: t)
        except SystemExit as exc:
            got = exc.code
        out = capsys.readouterr().out
        shown, _, code = expected.rstrip("\n").rpartition("\n")
        assert code == f"[exit {got}]", command
        assert out.rstrip("\n") == shown, command


def test_readme_has_examples():
    assert len(list(examples())) >= 4


def test_every_console_script_named_in_the_readme_exists():
    scripts = {ep.name for ep in distribution("postfix-queue-monitor").entry_points
               if ep.group == "console_scripts"}
    named = set(re.findall(r"\b((?:check_postfix|postfix_queue)_\w+)", README))
    named.discard("postfix_queue_monitor")   # the package, not a command
    assert named and named <= set(scripts), named - set(scripts)


# -- the status lines shown in text blocks ----------------------------------------------------

SHOWN = re.compile(r"```text\n(.*?)```", re.S)
ARRIVAL = 1795962698.0          # the stand-in listings' arrival time
STATE = "/var/tmp/postfix-queue-monitor-111"


def shown_lines() -> list[str]:
    return [line for m in SHOWN.finditer(README) for line in m[1].splitlines() if line.strip()]


def shape(line: str) -> re.Pattern[str]:
    """The line with every figure a figure (a storm's 412,000 messages, 7.2 s) and ``…``
    anything (what the README leaves out)."""
    parts = re.split(r"(…|\d[\d,.]*)", line)
    return re.compile("".join(".*?" if p == "…" else r"\d[\d,.]*" if p[:1].isdigit()
                              else re.escape(p) for p in parts))


def printed_lines(tmp: Path, run_main, fixtures: Path) -> list[str]:
    """The first lines of the runs behind the README's shown lines, in-process."""
    def pq(name: str, **kw) -> str:
        (tmp / name).mkdir()
        return fake_postqueue(tmp / name, **kw)

    def slow(name: str, count: int, **kw) -> str:
        (tmp / name).mkdir()
        return slow_postqueue(tmp / name, count, domain="gmail.com", **kw)

    state = tmp / "state"
    state.mkdir(mode=0o700)
    (state / "growth-default.json").write_text("{garbage")
    log = tmp / "mail.log"
    log.write_text("Dez 15 07:46:29 phoenix postfix/smtp[29715]: B12B9110102D: to=<u@example.org>"
                   ", relay=mx.example.org[192.0.2.2]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, "
                   "status=sent (250 2.0.0 Ok)\n")
    storm = slow("storm", 3000)
    growing = tmp / "growth"
    runs = [  # (main, argv, clock)
        (queue_size.main, ["--postqueue", storm, "-c", "2000", "-t", "1"], ARRIVAL),
        (oldest.main, ["--postqueue", storm, "-c", "1d", "-t", "1"], ARRIVAL + 93_700),
        (growth.main, ["--postqueue", slow("complete", 100, hang=False), "--state-dir",
                       str(growing)], ARRIVAL),
        (growth.main, ["--postqueue", storm, "-c", "500", "-t", "1", "--state-dir",
                       str(growing)], ARRIVAL + 3600),
        (queue_size.main, ["--postqueue", slow("short", 1500), "-c", "2000", "-t", "1"], ARRIVAL),
        (queue_size.main, ["--postqueue", pq("down", rc=69, stderr=(
            "postqueue: fatal: Queue report unavailable - mail system is down (Connect to the "
            "Postfix showq service: Connection refused)"))], ARRIVAL),
        (queue_size.main, ["--config-dir", "/etc/postfix-out", "--postqueue", pq("dir", rc=69,
            stderr="postqueue: error: unauthorized configuration directory name: "
                   "/etc/postfix-out\npostqueue: fatal: specify \"alternate_config_directories = "
                   "/etc/postfix-out\" or \"multi_instance_directories = /etc/postfix-out\" in "
                   "/etc/postfix/main.cf")], ARRIVAL),
        (queue_size.main, ["--postqueue", pq("user", rc=77, stderr=(
            "postqueue: fatal: User nagios(111) is not allowed to view the mail queue"))],
         ARRIVAL),
        (queue_size.main, ["--postqueue", pq("hung", sleep=60), "-t", "1"], ARRIVAL),
        (growth.main, ["--postqueue", pq("ok", j=fixtures / "deferred-50-four-reasons.jsonl"),
                       "--state-dir", str(state)], ARRIVAL),
        (queue_size.main, ["-w", "abc"], ARRIVAL),
        (bounce.main, ["--log-file", str(log), "--state-dir", str(tmp / "bounce")],
         time.mktime((2014, 12, 16, 12, 0, 0, 0, 0, -1))),
    ]
    me = pwd.getpwuid(os.geteuid()).pw_name
    lines = []
    for main, argv, now in runs:
        _, out = run_main(main, argv, now)
        first = out.splitlines()[0]
        if "waiting for baseline" not in first:     # the growth storm's complete sample
            lines.append(first.replace(str(state), STATE)
                         .replace(f"user {me} may not", "user nagios may not"))
    return lines


def test_readme_shown_lines_are_what_the_checks_print(tmp_path, run_main, fixtures, utc):
    shown = shown_lines()
    printed = printed_lines(tmp_path, run_main, fixtures)
    assert len(shown) >= 11
    assert [s for s in shown if not any(shape(s).fullmatch(p) for p in printed)] == [], printed
    assert [p for p in printed if not any(shape(s).fullmatch(p) for s in shown)] == []


# -- the command lines named in the text ------------------------------------------------------

PARSERS = {"check_postfix_queue": queue_size.parser, "check_postfix_oldest_message": oldest.parser,
           "check_postfix_deferred_growth": growth.parser, "check_postfix_bounce_rate":
           bounce.parser, "postfix_queue_report": report.parser,
           "postfix_queue_zabbix": zabbix_cli.parser, "postfix_queue_prometheus":
           prometheus_cli.parser}


def command_lines() -> list[str]:
    """Every inline code span that is one of our commands with two arguments or more (a span
    may wrap; ``postfix_queue_zabbix send`` alone names the command), but for synopses
    (``[--top N]``) and alternatives (``json|send``, ``json/send``)."""
    prose = re.sub(r"```.*?```", "", README, flags=re.S)
    spans = (" ".join(m[1].split()) for m in re.finditer(r"`([^`]+)`", prose))
    return [s for s in spans if s.split(" ", 1)[0] in PARSERS and s.count(" ") >= 2
            and not re.search(r"[\[|]|/send", s)]


def test_every_command_line_in_the_text_parses_as_written():
    lines = command_lines()
    assert any(s.startswith("postfix_queue_prometheus serve") for s in lines), lines
    assert any(s.startswith("postfix_queue_zabbix deploy") for s in lines), lines
    for line in lines:
        program, *argv = shlex.split(line)
        try:
            PARSERS[program]().parse_args(argv)
        except SystemExit:
            pytest.fail(f"the README's {line!r} does not parse")


def _stand_ins(tmp: Path, fixtures: Path) -> list[str]:
    """What a test adds to a README line: the stand-in postqueue, an empty log, a state dir."""
    log = tmp / "mail.log"
    log.write_text("")
    return ["--postqueue", fake_postqueue(tmp, j=fixtures / "deferred-50-four-reasons.jsonl"),
            "--log-file", str(log), "--state-dir", str(tmp / "state")]


def test_readme_prometheus_textfile_line_runs(tmp_path, fixtures, capsys):
    line, = [s for s in command_lines() if s.startswith("postfix_queue_prometheus textfile ")]
    _, *argv = shlex.split(line)
    prom = tmp_path / "postfix_queue.prom"
    assert argv[1] == "/var/lib/prometheus/node-exporter/postfix_queue.prom"
    argv[1] = str(prom)                                      # the collector's directory here
    assert prometheus_cli.main([*argv, *_stand_ins(tmp_path, fixtures)]) == 0
    assert capsys.readouterr().out == ""
    text = prom.read_text()
    assert re.search(r"^postfix_up\{.*\} 1\.0$", text, re.M), text
    assert re.search(r'^postfix_showq_queue_depth\{queue="deferred"\} 50\.0$', text, re.M)


def test_readme_prometheus_serve_line_runs(tmp_path, fixtures):
    line, = [s for s in command_lines() if s.startswith("postfix_queue_prometheus serve ")]
    _, *argv = shlex.split(line)
    port = free_port()                                       # 9154 may be taken here
    argv[argv.index("127.0.0.1:9154")] = f"127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-m", "postfix_queue_monitor.prometheus.cli",
                             *argv, *_stand_ins(tmp_path, fixtures)],
                            stderr=subprocess.PIPE, text=True)
    try:
        text = wait_http(f"http://127.0.0.1:{port}/metrics", timeout=20)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert re.search(r"^postfix_up\{.*\} 1\.0$", text, re.M), text
    assert proc.returncode == 0 and err == f"serving /metrics on 127.0.0.1:{port}\n", err
