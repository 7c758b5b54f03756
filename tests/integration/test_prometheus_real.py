"""The Prometheus side with the real programs: promtool checks the rules (and runs their unit
tests) and our exposition; node_exporter's textfile collector serves our file; a Prometheus
server scrapes ``postfix_queue_prometheus serve`` and its query API returns the queue of a real
Postfix instance (the shared small stuck queue)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from test_bounce_journal import REMOTE, import_into, status

import prometheus_lab
from labproc import stop_group, wait_until
from postfix_queue_monitor.deadline import Deadline
from postfix_queue_monitor.prometheus import counters, rules

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "prometheus" / rules.FILE
RULE_TESTS = ROOT / "prometheus" / "postfix-queue-monitor.rules.test.yml"
TOOL = [sys.executable, "-m", "postfix_queue_monitor.prometheus.cli"]


def require(*programs: str) -> None:
    reason = prometheus_lab.available(*programs)
    if reason:
        pytest.skip(reason)


def promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([prometheus_lab.PROMTOOL, *args], input=stdin,  # noqa: S603
                          capture_output=True, text=True, timeout=60, cwd=ROOT / "prometheus")


def values(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {tuple(sorted(s.labels.items())): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples
            if s.name == name}


def lab_counts(lab) -> dict[str, int]:
    """Messages per queue as postqueue lists them right now."""
    counts: dict[str, int] = {}
    for m in lab.postqueue_json():
        counts[m["queue_name"]] = counts.get(m["queue_name"], 0) + 1
    return counts


def test_promtool_checks_and_unit_tests_the_rules() -> None:
    require(prometheus_lab.PROMTOOL)
    res = promtool("check", "rules", str(RULES))
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"SUCCESS: {len(rules.rules())} rules found" in res.stdout
    res = promtool("test", "rules", str(RULE_TESTS))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "SUCCESS" in res.stdout


def test_textfile_served_by_node_exporter_without_scrape_error(postfix, tmp_path: Path) -> None:
    require(prometheus_lab.NODE_EXPORTER, prometheus_lab.PROMTOOL)
    textdir = tmp_path / "textfile"
    textdir.mkdir()
    target = textdir / "postfix_queue.prom"
    run = subprocess.run([*TOOL, "textfile", str(target), "--config-dir",  # noqa: S603
                          str(postfix.config_dir), "--log-file", str(postfix.log_file),
                          "--state-dir", str(tmp_path / "state")],
                         capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert (run.returncode, run.stdout, run.stderr) == (0, "", "")
    text = target.read_text()
    check = promtool("check", "metrics", stdin=text)
    assert check.returncode == 0 and check.stdout + check.stderr == "", check.stdout + check.stderr
    expected = lab_counts(postfix)
    with prometheus_lab.NodeExporter(textdir) as node:
        scraped = prometheus_lab.http_get(node.url)
    assert values(scraped, "node_textfile_scrape_error") == {(): 0.0}
    assert values(scraped, "node_textfile_mtime_seconds")          # our file was read
    depth = values(scraped, "postfix_showq_queue_depth")
    assert set(depth) == {(("queue", q),) for q in
                          ("maildrop", "incoming", "active", "deferred", "hold")}
    assert sum(depth.values()) == sum(expected.values()) > 0
    assert values(scraped, "postfix_up") == {(("path", f"/usr/sbin/postqueue -c "
                                                        f"{postfix.config_dir}"),): 1.0}
    assert len(values(scraped, "postfix_delivery_recipients_total")) == 4


def test_prometheus_scrapes_serve_and_queries_the_real_queue(postfix, tmp_path: Path) -> None:
    require(prometheus_lab.PROMETHEUS, prometheus_lab.PROMTOOL)
    port = prometheus_lab.free_port()
    serve = subprocess.Popen([*TOOL, "serve", "--listen", f"127.0.0.1:{port}",  # noqa: S603
                              "--config-dir", str(postfix.config_dir), "--log-file",
                              str(postfix.log_file), "--state-dir", str(tmp_path / "state")],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True, cwd=ROOT)
    try:
        page = prometheus_lab.wait_http(f"http://127.0.0.1:{port}/metrics")
        check = promtool("check", "metrics", stdin=page)
        assert check.returncode == 0 and check.stdout + check.stderr == "", check.stdout
        with prometheus_lab.PrometheusServer(f"127.0.0.1:{port}", rules.JOB, [RULES]) as prom:
            expected = sum(lab_counts(postfix).values())
            result = wait_until(
                lambda: prom.query(f'sum(postfix_showq_queue_depth{{job="{rules.JOB}"}})'),
                30, "a scrape of serve in Prometheus")
            assert float(result[0]["value"][1]) == expected > 0
            up = prom.query(f'up{{job="{rules.JOB}"}}')
            assert [r["value"][1] for r in up] == ["1"]
            assert prom.query("postfix_up")[0]["value"][1] == "1"
            groups = prom.api("rules")["groups"]
            loaded = [r for g in groups for r in g["rules"]]
            assert len(loaded) == len(rules.rules())
            assert {r["health"] for r in loaded} == {"ok"}, loaded
            # the counters reach Prometheus as a counter with every status
            statuses = wait_until(lambda: prom.query("postfix_delivery_recipients_total"), 10,
                                  "the delivery counters")
            assert {r["metric"]["status"] for r in statuses} == {"sent", "bounced", "expired",
                                                                  "deferred"}
    finally:
        stop_group(serve)
    _, err = serve.communicate(timeout=10)
    assert "Traceback" not in err and "measuring failed" not in err, err


def test_serve_without_postfix_is_up_0_in_prometheus(tmp_path: Path) -> None:
    """A scrape whose measurement fails still succeeds (up 1) and says postfix_up 0."""
    require(prometheus_lab.PROMETHEUS)
    port = prometheus_lab.free_port()
    serve = subprocess.Popen([*TOOL, "serve", "--listen", f"127.0.0.1:{port}",  # noqa: S603
                              "--postqueue", str(tmp_path / "missing"), "--no-deliveries",
                              "--state-dir", str(tmp_path / "state")],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True, cwd=ROOT)
    try:
        prometheus_lab.wait_http(f"http://127.0.0.1:{port}/metrics")
        with prometheus_lab.PrometheusServer(f"127.0.0.1:{port}", rules.JOB, [RULES]) as prom:
            got = wait_until(lambda: prom.query("postfix_up == 0"), 30, "postfix_up 0")
            assert got[0]["metric"]["job"] == rules.JOB
            assert prom.query(f'up{{job="{rules.JOB}"}}')[0]["value"][1] == "1"
            time.sleep(0.5)
    finally:
        stop_group(serve)
    _, err = serve.communicate(timeout=10)
    assert "measuring failed:" in err and "not found" in err and "Traceback" not in err


def test_delivery_counters_from_a_real_journal(tmp_path: Path) -> None:
    """journalctl reads a real journal file (made by systemd-journal-remote): the counters start
    at 0, and what is logged after a first run that found no entry (so no cursor yet) is
    counted once, from that run's time on; the cursor then says nothing is new."""
    if not (Path(REMOTE).exists() and shutil.which("journalctl")):
        pytest.skip("systemd-journal-remote or journalctl missing (scripts/install-deps.sh)")
    journal, state, seq = tmp_path / "t.journal", tmp_path / "state", [0]
    now = float(int(time.time()))

    def totals(at: float) -> dict[str, int]:
        return counters.read_totals(None, True, None, str(state), at, Deadline(10),
                                    journal_files=[str(journal)])

    import_into(journal, [(now - 60, "postfix/smtp", status("O1", "sent"))], seq)
    assert totals(now) == {"sent": 0, "bounced": 0, "expired": 0, "deferred": 0}
    # appended by a second import (seen while writing this test: when the first import held
    # two entries or more, Debian 12's systemd-journal-remote no longer kept them on the next
    # import, so journalctl skipped past the cursor; one entry first works)
    import_into(journal, [
        (now + 5, "postfix/smtp", status("A1", "sent")),
        (now + 6, "postfix/lmtp", status("A2", "bounced", "550 5.1.1 no")),
        (now + 7, "postfix/qmgr", "A3: from=<s@x>, status=expired, returned to sender"),
        (now + 8, "postfix/smtp", status("A4", "deferred", "4.4.1 timeout")),
        (now + 9, "amavis", status("C1", "sent")),                             # not Postfix
    ], seq)
    expected = {"sent": 1, "bounced": 1, "expired": 1, "deferred": 1}
    assert totals(now + 20) == expected
    assert totals(now + 30) == expected
