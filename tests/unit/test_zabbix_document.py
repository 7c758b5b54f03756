"""The Zabbix document: every registry metric at its registry path, the numbers of the checks."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from postfix_queue_monitor import metrics
from postfix_queue_monitor.deliveries import DeliveryStats
from postfix_queue_monitor.queue import parse_json_lines
from postfix_queue_monitor.zabbix import document

NOW = 1795966298.0   # one hour after the fixture's messages arrived


@pytest.fixture
def snap(fixtures: Path):
    with open(fixtures / "deferred-50-four-reasons.jsonl", "rb") as fh:
        return parse_json_lines(fh, NOW)


def test_every_queue_metric_at_its_registry_path(snap) -> None:
    values = document.snapshot_values(snap)
    doc = document.build(values)
    expected = metrics.queue_values(snap)
    assert expected["queue.size.total"] == 50
    for mid, value in expected.items():
        assert metrics.get_path(doc, metrics.BY_ID[mid].path) == value
    assert doc["meta"]["listing"] == 0 and doc["meta"]["error"] == ""
    assert doc["queue"]["deferred"]["messages"] == snap.stats("deferred").messages


def test_optional_values_absent_without_baseline_or_deliveries(snap) -> None:
    values = document.snapshot_values(snap)
    doc = document.build(values)
    for mid in document.OPTIONAL - set(values):
        with pytest.raises(KeyError):
            metrics.get_path(doc, document.BY_ID[mid].path)
    assert {"deferred.growth", "delivery.bounce_rate", "delivery.count.sent"} <= document.OPTIONAL
    # queue values are optional too, for a listing cut by the deadline (test_cut_listing.py):
    # a complete listing carries every one of them
    queue_ids = {m.id for m in metrics.REGISTRY if m.id.startswith(("queue.", "deferred.reason"))}
    assert queue_ids <= document.OPTIONAL and queue_ids <= set(values)


def test_delivery_values_from_delivery_stats() -> None:
    stats = DeliveryStats(sent=90, bounced=8, expired=2, deferred=5, bounce_rate=10.0,
                          deferral_rate=4.9504950495, window=3600.0, source="lines")
    doc = document.build(document.delivery_values(stats))
    assert doc["delivery"] == {"sent": 90, "bounced": 8, "expired": 2, "deferred": 5,
                               "bounce_rate": 10.0, "deferral_rate": 4.9505}


def test_unknown_metric_id_is_refused() -> None:
    with pytest.raises(ValueError, match="not in the registry"):
        document.build({"queue.size.bogus": 1})


def test_errors_joined_in_meta_error(snap) -> None:
    doc = document.build(document.snapshot_values(snap), ["growth: locked", "deliveries: x"])
    assert doc["meta"]["error"] == "growth: locked; deliveries: x"


def _fake_postqueue(tmp_path: Path, fixture: Path) -> str:
    prog = tmp_path / "postqueue"
    prog.write_text(f"#!/bin/sh\nexec cat {fixture}\n")
    prog.chmod(prog.stat().st_mode | stat.S_IXUSR)
    return str(prog)


def _perf(stdout: str) -> dict[str, float]:
    return {label: float(raw.split(";")[0].rstrip("B%s"))
            for label, raw in (item.split("=", 1)
                               for item in stdout.split("|", 1)[1].split())}


def test_json_command_equals_check_perfdata(tmp_path: Path, fixtures: Path) -> None:
    """The same listing and log through postfix_queue_zabbix json, check_postfix_queue and
    check_postfix_bounce_rate: equal numbers."""
    pq = _fake_postqueue(tmp_path, fixtures / "deferred-50-four-reasons.jsonl")
    log = fixtures / "postfix-3.7-mixed.log"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "checks")}
    out = subprocess.run([sys.executable, "-m", "postfix_queue_monitor.zabbix.cli", "json",
                          "--postqueue", pq, "--state-dir", str(tmp_path / "state"),
                          "--log-file", str(log), "--bounce-window", "3650d"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stdout
    assert out.stderr == ""
    doc = json.loads(out.stdout)
    checks = [("queue_size", ["--postqueue", pq]),
              ("bounce", ["--log-file", str(log), "--window", "3650d", "--state-dir",
                          str(tmp_path / "state-check")])]
    perf: dict[str, float] = {}
    for module, args in checks:
        run = subprocess.run([sys.executable, "-c", f"from postfix_queue_monitor.plugins."
                              f"{module} import main; main()", *args],
                             capture_output=True, text=True, env=env, timeout=60)
        perf.update(_perf(run.stdout))
    for label, value in perf.items():
        assert metrics.get_path(doc, metrics.BY_LABEL[label].path) == value, label
    assert len(perf) == 12 + 6
    assert doc["delivery"]["sent"] > 0 and doc["delivery"]["bounced"] > 0
    assert doc["meta"]["version"] and doc["meta"]["error"] == ""
    assert doc["deferred"]["baseline"] == 0 and "growth_per_hour" not in doc["deferred"]


def test_unreadable_log_is_a_partial_error_not_a_failure(tmp_path: Path, fixtures: Path) -> None:
    pq = _fake_postqueue(tmp_path, fixtures / "deferred-50-four-reasons.jsonl")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "checks")}
    out = subprocess.run([sys.executable, "-m", "postfix_queue_monitor.zabbix.cli", "json",
                          "--postqueue", pq, "--state-dir", str(tmp_path / "state"),
                          "--log-file", str(tmp_path / "no.log")],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stdout
    doc = json.loads(out.stdout)
    assert doc["meta"]["error"].startswith("deliveries: log file ")
    assert "delivery" not in doc and doc["queue"]["total"]["messages"] == 50


def test_json_command_failure_is_one_line_exit_3(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "checks")}
    out = subprocess.run([sys.executable, "-m", "postfix_queue_monitor.zabbix.cli", "json",
                          "--postqueue", str(tmp_path / "nope"), "--state-dir",
                          str(tmp_path / "s")], capture_output=True, text=True, env=env,
                         timeout=60)
    assert out.returncode == 3
    assert out.stdout.count("\n") == 1 and "not found" in out.stdout
    assert out.stderr == ""


def test_delivery_stats_read_the_log_the_bounce_check_reads(tmp_path: Path) -> None:
    """The document's delivery numbers come from deliveries.measure_deliveries on a real log
    file, with the options the sender passes (no stand-in, no signature guessing)."""
    import argparse

    from postfix_queue_monitor.deadline import Deadline
    now = time.time()
    stamp = time.strftime("%b %e %H:%M:%S", time.localtime(now - 60)).encode()
    log = tmp_path / "mail.log"
    log.write_bytes(b"".join(
        stamp + b" vm postfix/smtp[1]: Q%d: to=<u@d.example>, relay=x, delay=1, "
        b"delays=1/0/0/0, dsn=%s, status=%s (%s)\n" % (i, dsn, st, text)
        for i, (dsn, st, text) in enumerate([(b"2.0.0", b"sent", b"250 ok")] * 9
                                             + [(b"5.1.1", b"bounced", b"550 no such user")])))
    opts = argparse.Namespace(log_file=str(log), journal=False, syslog_name=None,
                              bounce_window=3600.0, timeout=8.0)
    stats = document.delivery_stats(opts, str(tmp_path / "s"), now, Deadline(8.0))
    doc = document.build(document.delivery_values(stats))
    assert doc["delivery"]["sent"] == 9 and doc["delivery"]["bounced"] == 1
    assert doc["delivery"]["bounce_rate"] == 10.0
