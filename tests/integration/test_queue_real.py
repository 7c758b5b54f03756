"""The three queue checks against a real Postfix queue, as root and as the nagios user."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import (
    HELD,
    STUCK_DOMAINS,
    STUCK_MESSAGES,
    StuckQueue,
    require_lab,
    require_user,
    run_as,
)
from fakes import age_growth_samples
from postfix_lab import Lab

BIN = Path(sys.executable).parent
PERF = re.compile(r"(\w+)=([-\d.]+)(\w*|%)")


def perf(out: str) -> dict[str, float]:
    text = " ".join(line.split("|", 1)[1] for line in out.splitlines() if "|" in line)
    return {m[1]: float(m[2]) for m in PERF.finditer(text)}


def check(name: str, *args: str, user: str | None = None, bindir: Path = BIN):
    return run_as(user, [str(bindir / name), *args])


def test_counts_equal_the_spool_as_root(stuck_queue: StuckQueue):
    lab = stuck_queue.lab
    res = check("check_postfix_queue", "--config-dir", str(lab.config_dir), "-w", "500", "-c",
                "5000")
    assert res.stderr == ""
    assert res.returncode == 1, res.stdout
    p = perf(res.stdout)
    spool = lab.spool_counts()
    for q, n in spool.items():
        assert p[f"queue_{q}"] == n, (q, res.stdout)
    assert p["queue_total"] == sum(spool.values()) == STUCK_MESSAGES + 40
    assert spool["hold"] == HELD and spool["deferred"] == STUCK_MESSAGES + 40 - HELD
    first = res.stdout.splitlines()[0]
    assert first.startswith(f"POSTFIX QUEUE WARNING - {STUCK_MESSAGES + 40} queued (> 500): "
                            f"100% refused, top d")
    # bytes: the sum of message_size as postqueue reports it, cross-checked by a plain reading
    listing = lab.postqueue_json()
    assert p["queue_total_bytes"] == sum(m["message_size"] for m in listing)
    assert p["queue_hold_bytes"] == sum(m["message_size"] for m in listing
                                        if m["queue_name"] == "hold")


def test_domains_and_recipients_are_real(stuck_queue: StuckQueue):
    res = check("check_postfix_queue", "--config-dir", str(stuck_queue.lab.config_dir), "-v")
    assert res.returncode == 0
    listing = stuck_queue.lab.postqueue_json()
    domains = {r["address"].split("@")[1] for m in listing if m["queue_name"] == "deferred"
               for r in m["recipients"]}
    assert len(domains) == STUCK_DOMAINS >= 10
    rcpts = sum(len(m["recipients"]) for m in listing if m["queue_name"] == "deferred")
    assert f"deferred recipients by reason: refused {rcpts}" in res.stdout


def test_oldest_age_is_arrival_time_not_mtime(stuck_queue: StuckQueue):
    lab = stuck_queue.lab
    before = time.time()
    res = check("check_postfix_oldest_message", "--config-dir", str(lab.config_dir))
    after = time.time()
    assert res.returncode == 0 and res.stderr == ""
    listing = lab.postqueue_json()
    oldest = min(m["arrival_time"] for m in listing if m["queue_name"] != "hold")
    age = perf(res.stdout)["oldest_age"]
    assert before - oldest - 1 <= age <= after - oldest + 1
    held_oldest = min(m["arrival_time"] for m in listing if m["queue_name"] == "hold")
    assert abs(perf(res.stdout)["oldest_age_hold"] - (before - held_oldest)) <= 2
    # a deferred file's mtime is its next retry, in the future: proof that we did not use it
    deferred_files = [Path(d, f) for d, _, fs in os.walk(lab.queue_dir / "deferred") for f in fs]
    assert max(p.stat().st_mtime for p in deferred_files) > after


def test_oldest_thresholds_with_suffixes(stuck_queue: StuckQueue):
    cfg = str(stuck_queue.lab.config_dir)
    assert check("check_postfix_oldest_message", "--config-dir", cfg, "-w", "1s", "-c",
                 "1d").returncode == 1
    res = check("check_postfix_oldest_message", "--config-dir", cfg, "-w", "1d", "-c", "2d")
    assert res.returncode == 0 and "oldest deferred message is" in res.stdout


def test_as_nagios_user(stuck_queue: StuckQueue, daemon_venv: Path):
    require_user("nagios")
    lab = stuck_queue.lab
    cfg = str(lab.config_dir)
    state = tempfile.mkdtemp(prefix="pqm-nagios-state-")
    shutil.chown(state, "nagios", "nagios")
    try:
        # without alternate_config_directories, postqueue refuses the instance: a fix, not a lie
        res = check("check_postfix_queue", "--config-dir", cfg, user="nagios", bindir=daemon_venv)
        assert res.returncode == 3 and res.stderr == ""
        assert f'add "alternate_config_directories = {cfg}"' in res.stdout
        main_cf = Path("/etc/postfix/main.cf").read_bytes()
        with lab.allow_unprivileged_listing():
            res = check("check_postfix_queue", "--config-dir", cfg, "-w", "2000",
                        user="nagios", bindir=daemon_venv)
            assert res.returncode == 0, res.stdout
            assert perf(res.stdout)["queue_total"] == sum(lab.spool_counts().values())
            assert perf(res.stdout)["queue_hold"] == HELD
            res = check("check_postfix_oldest_message", "--config-dir", cfg, "-c", "1s",
                        user="nagios", bindir=daemon_venv)
            assert res.returncode == 2 and res.stdout.startswith("POSTFIX OLDEST CRITICAL")
            for expect in ("waiting for baseline", "deferred queue 0/h"):
                res = check("check_postfix_deferred_growth", "--config-dir", cfg, "--state-dir",
                            f"{state}/s", user="nagios", bindir=daemon_venv)
                assert res.returncode == 0 and expect in res.stdout, res.stdout
                age_growth_samples(f"{state}/s", 120)    # a rate needs a minute between them
            st = os.stat(f"{state}/s")
            assert (st.st_mode & 0o777, st.st_uid) == (0o700, pwd_uid("nagios"))
        assert Path("/etc/postfix/main.cf").read_bytes() == main_cf   # restored as it was
    finally:
        shutil.rmtree(state, ignore_errors=True)


def pwd_uid(user: str) -> int:
    import pwd
    return pwd.getpwnam(user).pw_uid


@pytest.fixture
def small_lab():
    require_lab()
    lab = Lab("small").setup().start()
    try:
        lab.inject(5, domains=2)
        lab.wait_settled(5)
        yield lab
    finally:
        lab.destroy()


def test_mail_system_down(small_lab: Lab, daemon_venv: Path):
    require_user("nagios")
    cfg = str(small_lab.config_dir)
    small_lab.stop()
    with small_lab.allow_unprivileged_listing():
        res = check("check_postfix_queue", "--config-dir", cfg, user="nagios",
                    bindir=daemon_venv)
    assert res.returncode == 3 and res.stderr == ""
    assert res.stdout.startswith("POSTFIX QUEUE UNKNOWN - Postfix is not running")
    # root reads the queue directly: a normal result that says so
    res = check("check_postfix_queue", "--config-dir", cfg)
    assert res.returncode == 0, res.stdout
    assert "5 messages queued" in res.stdout and "mail system is down" in res.stdout


def test_not_authorized_user(small_lab: Lab, daemon_venv: Path):
    require_user("nagios")
    subprocess.run(["postconf", "-c", str(small_lab.config_dir), "-e",
                    "authorized_mailq_users = root"], check=True)
    with small_lab.allow_unprivileged_listing():
        res = check("check_postfix_queue", "--config-dir", str(small_lab.config_dir),
                    user="nagios", bindir=daemon_venv)
    assert res.returncode == 3 and "authorized_mailq_users" in res.stdout, res.stdout


def test_bad_config_dir_is_postqueues_own_error():
    require_lab()
    res = check("check_postfix_queue", "--config-dir", "/nonexistent/postfix")
    assert res.returncode == 3
    assert "no Postfix configuration there" in res.stdout and "/nonexistent/postfix" in res.stdout


def test_hung_showq_is_unknown_within_timeout_and_the_child_is_killed(small_lab: Lab):
    master = small_lab.master_pid()
    assert master
    os.kill(master, signal.SIGSTOP)   # showq requests now wait forever on the master's socket
    try:
        started = time.monotonic()
        res = check("check_postfix_queue", "--config-dir", str(small_lab.config_dir), "-t", "2")
        elapsed = time.monotonic() - started
    finally:
        os.kill(master, signal.SIGCONT)
    assert res.returncode == 3 and "postqueue did not finish within" in res.stdout, res.stdout
    assert elapsed < 3.0
    left = subprocess.run(["pgrep", "-f", f"postqueue -c {small_lab.config_dir} -j"],
                          capture_output=True, text=True).stdout
    assert left == "", f"orphaned postqueue: {left}"


def test_checks_only_ever_list_the_queue(stuck_queue: StuckQueue, tmp_path: Path):
    """Every program the checks run is postqueue with -j or -p, nothing else."""
    log = tmp_path / "calls.log"
    wrapper = tmp_path / "postqueue"
    wrapper.write_text(f'#!/bin/sh\necho "$@" >> {log}\nexec /usr/sbin/postqueue "$@"\n')
    wrapper.chmod(0o755)
    cfg = str(stuck_queue.lab.config_dir)
    for name in ("check_postfix_queue", "check_postfix_oldest_message",
                 "check_postfix_deferred_growth"):
        extra = ["--state-dir", str(tmp_path / "st")] if "growth" in name else []
        assert check(name, "--postqueue", str(wrapper), "--config-dir", cfg, *extra,
                     "-c", "1").returncode in (0, 1, 2)
    calls = log.read_text().splitlines()
    assert calls and all(c in (f"-c {cfg} -j", f"-c {cfg} -p") for c in calls), calls


def test_source_spawns_only_through_proc_and_never_flushes():
    src = Path(__file__).resolve().parents[2] / "checks" / "postfix_queue_monitor"
    for path in src.rglob("*.py"):
        text = path.read_text()
        assert "shell=True" not in text, path
        assert not re.search(r"""["']postsuper["']""", text), path
        assert not re.search(r"""["']-f["']\s*[\],]""", text), path
        if path.name != "proc.py":
            assert "subprocess" not in text and "os.system" not in text and "Popen" not in text, \
                path


def test_json_listing_cross_check(stuck_queue: StuckQueue):
    """The arrival times postqueue prints (which the ages use) are the queue files' own T
    records, as postcat reads them from the spool."""
    for sample in stuck_queue.lab.postqueue_json()[:5]:
        out = subprocess.run(["postcat", "-c", str(stuck_queue.lab.config_dir), "-e", "-q",
                              sample["queue_id"]], capture_output=True, text=True).stdout
        stamp = re.search(r"^message_arrival_time: (.+)$", out, re.M)
        assert stamp, out
        recorded = time.mktime(time.strptime(stamp[1].strip(), "%a %b %d %H:%M:%S %Y"))
        assert recorded == sample["arrival_time"], (stamp[1], sample)
