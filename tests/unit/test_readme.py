"""The README's example output is real: every block marked ``<!-- example … -->`` is run
in-process (a stand-in postqueue printing the named capture, the clock fixed) and must print
exactly what the README shows. Every console command the README names must exist."""

from __future__ import annotations

import re
import shlex
import time
from importlib.metadata import distribution
from pathlib import Path

import pytest

from fakes import fake_postqueue
from postfix_queue_monitor import report
from postfix_queue_monitor.plugins import bounce, growth, oldest, queue_size

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
