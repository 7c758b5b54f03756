"""The Zabbix document: every registry metric at its registry path, the numbers of the checks."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from postfix_queue_monitor import metrics
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
    doc = document.build(document.snapshot_values(snap))
    for mid in document.OPTIONAL:
        with pytest.raises(KeyError):
            metrics.get_path(doc, metrics.BY_ID[mid].path)
    assert {"deferred.growth", "delivery.bounce_rate", "delivery.count.sent"} <= document.OPTIONAL
    assert not any(m.startswith("queue.") for m in document.OPTIONAL)


def test_delivery_values_from_a_mapping_or_an_object() -> None:
    class Stats:
        sent, bounced, expired, deferred = 90, 8, 2, 5
        bounce_rate, deferral_rate = 10.0, 4.9504950495
    from_obj = document.delivery_values(Stats())
    from_map = document.delivery_values({"sent": 90, "bounced": 8, "expired": 2, "deferred": 5,
                                         "bounce_rate": 10.0, "deferral_rate": 4.9504950495})
    assert from_obj == from_map
    doc = document.build(from_obj)
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


def test_delivery_seam_takes_maillog_measure_deliveries(monkeypatch, tmp_path: Path) -> None:
    """A stand-in for maillog shows the seam's two outcomes: the keyword signature it passes
    feeds the document; another one becomes a MonitorError (recorded in meta.error by
    measure(), queue values unaffected) instead of stopping the run."""
    import argparse
    import types

    from postfix_queue_monitor.errors import MonitorError
    opts = argparse.Namespace(log_file="/x.log", journal=False, syslog_name=None,
                              bounce_window=3600.0, timeout=8.0)
    fake = types.ModuleType("postfix_queue_monitor.maillog")
    seen = {}

    def good(*, log_file, journal, syslog_name, state_dir, window, now, timeout):
        seen.update(log_file=log_file, window=window, now=now)
        return {"sent": 9, "bounced": 1, "expired": 0, "deferred": 2,
                "bounce_rate": 10.0, "deferral_rate": 16.6667}
    fake.measure_deliveries = good
    monkeypatch.setitem(sys.modules, "postfix_queue_monitor.maillog", fake)
    stats = document.measure_deliveries(opts, str(tmp_path), NOW)
    assert seen == {"log_file": "/x.log", "window": 3600.0, "now": NOW}
    assert document.build(document.delivery_values(stats))["delivery"]["bounced"] == 1

    fake.measure_deliveries = lambda log, window: None
    with pytest.raises(MonitorError, match="adapt that seam"):
        document.measure_deliveries(opts, str(tmp_path), NOW)
