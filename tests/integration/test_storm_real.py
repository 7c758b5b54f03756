"""A storm on real Postfix: 150,000 deferred messages, listed by the real postqueue and showq.

The queue is built by cloning one real deferred queue file (``Lab.clone_deferred``, ~5 s)
instead of smtp-source (~3.5 min): showq opens and reads every clone like any queue file.
Listing it takes longer than the ``-t`` given here, so every run below is cut by its deadline.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import postfix_lab
from conftest import require_lab
from labproc import processes
from postfix_lab import Lab

BIN = Path(sys.executable).parent
STORM = 150_000
FIRST = re.compile(r"^POSTFIX QUEUE CRITICAL - at least ([\d,]+) messages queued \(> 2000; "
                   r"listing cut after (\d+\.\d) s\)(: .*)?$")   # then the cause, as ever


@pytest.fixture(scope="module")
def storm() -> Iterator[Lab]:
    require_lab()
    lab = Lab("storm").setup().start()
    try:
        lab.inject(3, domains=3)
        lab.wait_settled(3, timeout=60)
        lab.clone_deferred(STORM)
        yield lab
    finally:
        lab.destroy()


def postqueues(lab: Lab) -> list[int]:
    return [p.pid for p in processes() if p.name == "postqueue" and str(lab.config_dir) in p.argv]


def showq_cpu(lab: Lab) -> float:
    return postfix_lab.showq_cpu(lab.master_pid())


def showq_idle(lab: Lab, within: float = 2.0) -> bool:
    """True once showq's CPU time stops moving (no scan left running for a dead listing)."""
    give_up = time.monotonic() + within
    before = showq_cpu(lab)
    while time.monotonic() < give_up:
        time.sleep(0.3)
        now = showq_cpu(lab)
        if now == before:
            return True
        before = now
    return False


def run(*argv: str, timeout: float = 60) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    res = subprocess.run([str(BIN / argv[0]), *argv[1:]], capture_output=True, text=True,
                         timeout=timeout, cwd="/")
    return res, time.monotonic() - started


def test_storm_gives_the_critical_its_lower_bound_proves_within_t(storm: Lab):
    res, elapsed = run("check_postfix_queue", "--config-dir", str(storm.config_dir), "-c", "2000",
                       "-t", "1", "-v")
    first = res.stdout.splitlines()[0]
    m = FIRST.match(first)
    assert res.returncode == 2 and m, res.stdout
    read = int(m[1].replace(",", ""))
    assert 2000 < read < STORM, first          # really cut, and already past the threshold
    assert elapsed < 1 + 1.0, elapsed          # -t + 1 s
    assert "|" not in res.stdout and "every count, size and age is a lower bound" in res.stdout
    assert res.stderr == ""
    assert postqueues(storm) == []
    assert showq_idle(storm)

    res, elapsed = run("check_postfix_oldest_message", "--config-dir", str(storm.config_dir),
                       "-c", "1s", "-t", "1")
    assert res.returncode == 2 and elapsed < 2.0, res.stdout
    assert re.match(r"POSTFIX OLDEST CRITICAL - oldest deferred message is at least \S+( \S+)? "
                    r"old \(> 1s; listing cut after 0\.\d s\)(: .*)?$",
                    res.stdout.splitlines()[0])
    assert postqueues(storm) == []


def test_storm_zabbix_document_carries_the_lower_bound_only(storm: Lab, tmp_path):
    res, elapsed = run("postfix_queue_zabbix", "json", "--config-dir", str(storm.config_dir),
                       "-t", "1.5", "--state-dir", str(tmp_path), "--log-file", os.devnull)
    assert res.returncode == 0 and elapsed < 2.5, res.stdout
    doc = json.loads(res.stdout)
    assert 0 < doc["meta"]["cut"]["messages"] < STORM
    assert "queue listing cut after" in doc["meta"]["error"]
    assert "queue" not in doc and "oldest_age" not in doc
    assert postqueues(storm) == []


def test_postqueue_dies_with_a_check_killed_by_its_monitoring_daemon(storm: Lab):
    """NRPE and Icinga SIGKILL the plugin's process group on their own timeout, before -t."""
    check = subprocess.Popen([str(BIN / "check_postfix_queue"), "--config-dir",
                              str(storm.config_dir), "-t", "60"], start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd="/")
    give_up = time.monotonic() + 10
    while not (children := postqueues(storm)) and time.monotonic() < give_up:
        time.sleep(0.02)
    assert children, "the check never started postqueue"
    time.sleep(0.3)                             # mid-listing
    os.killpg(check.pid, signal.SIGKILL)
    check.wait()
    give_up = time.monotonic() + 2
    while postqueues(storm) and time.monotonic() < give_up:
        time.sleep(0.05)
    assert postqueues(storm) == [], "postqueue outlived its check"
    assert showq_idle(storm)


def test_four_checks_and_the_sender_started_together_list_once(storm: Lab, tmp_path):
    runs = tmp_path / "runs"
    wrapper = tmp_path / "postqueue"            # counts the runs, then is the real postqueue
    wrapper.write_text(f"#!/bin/sh\necho $$ >> {runs}\nexec /usr/sbin/postqueue \"$@\"\n")
    wrapper.chmod(0o755)
    state = tmp_path / "state"
    common = ["--postqueue", str(wrapper), "--config-dir", str(storm.config_dir),
              "--state-dir", str(state), "--listing-max-age", "60", "-t", "30"]
    cmds = [["check_postfix_queue", *common, "-v"],
            ["check_postfix_oldest_message", *common, "-v"],
            ["check_postfix_deferred_growth", *common, "-v"],
            ["postfix_queue_report", *common, "--json"],
            ["postfix_queue_zabbix", "send", "-z", "127.0.0.1:9", "--send-timeout", "2",
             "--log-file", os.devnull, *common]]
    showq_before = showq_cpu(storm)
    procs = [subprocess.Popen([str(BIN / c[0]), *c[1:]], stdout=subprocess.PIPE, text=True,
                              cwd="/") for c in cmds]
    outs = [p.communicate(timeout=90)[0] for p in procs]
    shared_cpu = showq_cpu(storm) - showq_before
    assert len(runs.read_text().split()) == 1, outs
    assert outs[0].startswith(f"POSTFIX QUEUE OK - {STORM + 3} messages queued"), outs[0]
    assert sum("listing reused" in o for o in outs[:3]) >= 2, outs
    assert json.loads(outs[3])["queues"]["total"]["messages"] == STORM + 3
    assert procs[4].returncode == 1 and "UNREACHABLE" in outs[4], outs[4]   # measured, spooled
    # one listing's showq CPU, for comparison (printed with -rA; benchmarks/ has the figures)
    before = showq_cpu(storm)
    single, _ = run("check_postfix_queue", "--config-dir", str(storm.config_dir), "-t", "30")
    one_cpu = showq_cpu(storm) - before
    print(f"showq CPU: five pollers sharing {shared_cpu:.2f} s, one listing {one_cpu:.2f} s")
    assert single.returncode == 0
    assert shared_cpu <= 1.5 * one_cpu + 0.2
