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
from collections import Counter
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
    """showq's CPU seconds under the lab's master (an unreadable master.pid would make every
    figure 0 and every comparison of them pass: it fails here instead)."""
    master = lab.master_pid()
    assert master is not None, f"no master.pid under {lab.queue_dir}"
    return postfix_lab.showq_cpu(master)


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


@pytest.fixture(scope="module")
def shared_round(storm: Lab, tmp_path_factory) -> dict:
    """Seven pollers started together with one --state-dir and --listing-max-age: the three
    queue checks, the report, the Zabbix sender and document, and the Prometheus exporter's
    textfile, through a postqueue that counts its runs, then is the real one."""
    tmp = tmp_path_factory.mktemp("shared")
    runs = tmp / "runs"
    wrapper = tmp / "postqueue"
    wrapper.write_text(f"#!/bin/sh\necho $$ >> {runs}\nexec /usr/sbin/postqueue \"$@\"\n")
    wrapper.chmod(0o755)
    prom = tmp / "postfix.prom"
    common = ["--postqueue", str(wrapper), "--config-dir", str(storm.config_dir),
              "--state-dir", str(tmp / "state"), "--listing-max-age", "60", "-t", "30"]
    cmds = [["check_postfix_queue", *common, "-v"],
            ["check_postfix_oldest_message", *common, "-v"],
            ["check_postfix_deferred_growth", *common, "-v"],
            ["postfix_queue_report", *common, "--json"],
            ["postfix_queue_zabbix", "send", "-z", "127.0.0.1:9", "--send-timeout", "2",
             "--log-file", os.devnull, *common],
            ["postfix_queue_zabbix", "json", "--log-file", os.devnull, *common],
            ["postfix_queue_prometheus", "textfile", str(prom), "--no-deliveries", *common]]
    showq_before = showq_cpu(storm)
    procs = []
    for c in cmds:
        if c[0] == "postfix_queue_prometheus":
            time.sleep(0.5)            # started last, it reuses another poller's listing
        procs.append(subprocess.Popen([str(BIN / c[0]), *c[1:]], stdout=subprocess.PIPE,
                                      text=True, cwd="/"))
    outs = [p.communicate(timeout=90)[0] for p in procs]
    return {"outs": outs, "codes": [p.returncode for p in procs],
            "runs": len(runs.read_text().split()), "cpu": showq_cpu(storm) - showq_before,
            "prom": prom.read_text() if prom.exists() else "", "tmp": tmp}


def test_four_checks_the_sender_and_the_exporter_started_together_list_once(
        storm: Lab, shared_round: dict):
    outs, codes = shared_round["outs"], shared_round["codes"]
    assert shared_round["runs"] == 1, outs
    assert outs[0].startswith(f"POSTFIX QUEUE OK - {STORM + 3} messages queued"), outs[0]
    assert sum("listing reused" in o for o in outs[:3]) >= 2, outs
    assert json.loads(outs[3])["queues"]["total"]["messages"] == STORM + 3
    assert codes[4] == 1 and "UNREACHABLE" in outs[4], outs[4]   # measured, spooled
    assert json.loads(outs[5])["queue"]["total"]["messages"] == STORM + 3
    assert (codes[6], outs[6]) == (0, ""), outs[6]
    depth = exposed(shared_round["prom"], "postfix_showq_queue_depth")
    assert sum(depth.values()) == STORM + 3
    # one listing's showq CPU, for comparison (printed with -rA; benchmarks/ has the figures)
    before = showq_cpu(storm)
    single, _ = run("check_postfix_queue", "--config-dir", str(storm.config_dir), "-t", "30")
    one_cpu = showq_cpu(storm) - before
    print(f"showq CPU: seven pollers sharing {shared_round['cpu']:.2f} s, one listing "
          f"{one_cpu:.2f} s")
    assert single.returncode == 0
    assert one_cpu > 0.5, one_cpu        # a full listing of the storm queue: ~3 s of showq
    assert shared_round["cpu"] <= 1.5 * one_cpu + 0.2


def exposed(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    from prometheus_client.parser import text_string_to_metric_families
    return {tuple(sorted(s.labels.items())): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples
            if s.name == name}


def expected_ages(arrivals: Counter, at: float) -> dict[tuple[tuple[str, str], ...], float]:
    """postfix_exporter's cumulative age buckets, _count and _sum, per queue, at time ``at``."""
    from postfix_queue_monitor.listing import AGE_BUCKETS
    from postfix_queue_monitor.prometheus.exposition import floatToGoString
    out: dict = {}
    for queue in ("maildrop", "incoming", "active", "deferred", "hold"):
        ages = [(at - a, n) for (q, a), n in arrivals.items() if q == queue]
        for bound in (*AGE_BUCKETS, float("inf")):
            out[(("le", floatToGoString(bound)), ("queue", queue))] = float(
                sum(n for age, n in ages if age <= bound))
        out[("sum", queue)] = sum(age * n for age, n in ages)
    return out


def test_the_exporters_histograms_from_the_shared_listing_equal_its_own(
        storm: Lab, shared_round: dict):
    """The exporter's own listing, taken after the shared one: the same size histograms, and
    age histograms that are each exactly what the queue's arrival times give at their
    listing's time (postfix_queue_monitor_listing_timestamp_seconds): equal bucket counts, the
    sums apart by messages × the time between the listings."""
    own_prom = shared_round["tmp"] / "own.prom"
    res, _ = run("postfix_queue_prometheus", "textfile", str(own_prom), "--no-deliveries",
                 "--config-dir", str(storm.config_dir), "--state-dir",
                 str(shared_round["tmp"] / "own"), "-t", "30")
    assert (res.returncode, res.stdout) == (0, "")
    shared, own = shared_round["prom"], own_prom.read_text()
    size = "postfix_showq_message_size_bytes"
    for suffix in ("_bucket", "_sum", "_count"):
        assert exposed(shared, size + suffix) == exposed(own, size + suffix) != {}
    from orjson import loads
    arrivals: Counter = Counter()
    with subprocess.Popen(["/usr/sbin/postqueue", "-c", str(storm.config_dir), "-j"],
                          stdout=subprocess.PIPE) as pq:
        for line in pq.stdout:
            m = loads(line)
            arrivals[(m["queue_name"], m["arrival_time"])] += 1
    assert sum(arrivals.values()) == STORM + 3
    age = "postfix_showq_message_age_seconds"
    got = {}
    for name, text in (("shared", shared), ("own", own)):
        at = exposed(text, "postfix_queue_monitor_listing_timestamp_seconds")[()]
        want = expected_ages(arrivals, at)
        buckets = exposed(text, age + "_bucket")
        assert buckets == {k: v for k, v in want.items() if k[0] != "sum"}, name
        for (label,), total in exposed(text, age + "_sum").items():
            # the timestamp is exposed to the millisecond: the sum within count × 1 ms
            assert abs(total - want[("sum", label[1])]) <= 1e-3 * STORM + 1e-3, (name, label)
        got[name] = (at, buckets, exposed(text, age + "_sum"))
    (t_shared, b_shared, s_shared), (t_own, b_own, s_own) = got["shared"], got["own"]
    ran = exposed(shared, "postfix_queue_monitor_last_run_timestamp_seconds")[()]
    assert t_shared < ran < t_own          # the shared run reused a listing taken before it ran
    def buckets_at(at: float) -> dict:
        return {k: v for k, v in expected_ages(arrivals, at).items() if k[0] != "sum"}
    if buckets_at(t_shared) == buckets_at(t_own):   # no message crossed a bound in between
        assert b_shared == b_own
    for (label,), n in exposed(own, age + "_count").items():
        assert abs(s_own[(label,)] - s_shared[(label,)] - n * (t_own - t_shared)) <= 2e-3 * n
