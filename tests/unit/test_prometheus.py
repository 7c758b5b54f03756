"""postfix_queue_prometheus: names from the registry, postfix_exporter's histograms, the
persisted delivery counters across rotations, the atomic textfile, serve's failures, and the
generated alert rules."""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from test_maillog_reader import T0, Log

from fakes import fake_postqueue
from postfix_queue_monitor import check_registry, growth, metrics
from postfix_queue_monitor.deadline import Deadline
from postfix_queue_monitor.plugins import queue_size
from postfix_queue_monitor.prometheus import cli, collect, counters, exposition, rules
from postfix_queue_monitor.queue import QUEUES, parse_json_lines, parse_text
from prometheus_lab import free_port, wait_http

ROOT = Path(__file__).resolve().parents[2]
LISTING = "mixed-malformed-dup-postfix311.jsonl"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, by (name, sorted labels)."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def run_textfile(tmp_path: Path, capsys, *args: str) -> tuple[int, str, str]:
    out = tmp_path / "postfix.prom"
    code = cli.main(["textfile", str(out), "--state-dir", str(tmp_path / "st"), *args])
    text = out.read_text() if out.exists() else ""
    return code, capsys.readouterr().out, text


# -- names ------------------------------------------------------------------------------------

def test_registry_families_have_help_and_exporter_names() -> None:
    fams = {m.prom for m in metrics.REGISTRY if m.prom}
    assert fams == set(exposition.FAMILY_HELP)
    depth = [m for m in metrics.REGISTRY if m.prom == "postfix_showq_queue_depth"]
    assert [dict(m.prom_labels)["queue"] for m in depth] == list(QUEUES)
    for m in metrics.REGISTRY:
        if m.prom:
            assert m.prom.startswith(("postfix_showq_", "postfix_queue_", "postfix_delivery_"))


def test_histogram_buckets_are_postfix_exporters() -> None:
    # showq/showq.go of postfix_exporter (kumina and Hsn723 alike)
    assert collect.AGE_BUCKETS == (1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8)
    assert collect.SIZE_BUCKETS == (1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9)


def test_histograms_count_every_listed_message(fixtures: Path) -> None:
    lines = (fixtures / LISTING).read_bytes().splitlines(keepends=True)
    now = 1_764_000_000.0
    plain = parse_json_lines(lines, now)
    hist = parse_json_lines(lines, now, (collect.AGE_BUCKETS, collect.SIZE_BUCKETS))
    assert plain == hist                      # the histograms change no other number
    objs = []
    for raw in lines:
        try:
            objs.append(json.loads(raw))
        except ValueError:
            continue
    for q in QUEUES:
        st = hist.queues[q]
        listed = [o for o in objs if isinstance(o, dict) and o.get("queue_name") == q
                  and isinstance(o.get("message_size"), int)]
        assert sum(st.ages) == sum(st.sizes) == st.messages
        assert st.sizes[-1] == sum(1 for o in listed if o["message_size"] > 1e9)
        small = sum(1 for o in listed if o["message_size"] <= 1e3)
        assert st.sizes[0] == small


def test_histograms_from_the_postqueue_p_listing(fixtures: Path, utc) -> None:
    lines = (fixtures / "mixed-long-ids-markers.txt").read_bytes().splitlines(keepends=True)
    now = 1_764_000_000.0
    plain = parse_text(lines, now)
    hist = parse_text(lines, now, (collect.AGE_BUCKETS, collect.SIZE_BUCKETS))
    assert plain == hist and plain.stats("total").messages > 0
    for q in QUEUES:
        st = hist.queues[q]
        assert sum(st.ages) == sum(st.sizes) == st.messages
        if st.messages:             # the oldest contributes its age; none is older
            oldest = st.oldest_age(now)
            assert oldest <= st.age_sum <= st.messages * oldest + 1e-6


# -- textfile ---------------------------------------------------------------------------------

def test_textfile_exposes_the_listing(tmp_path: Path, fixtures: Path, capsys) -> None:
    pq = fake_postqueue(tmp_path, j=fixtures / "deferred-50-four-reasons.jsonl")
    code, out, text = run_textfile(tmp_path, capsys, "--postqueue", pq, "--no-deliveries")
    assert (code, out) == (0, "")
    s = samples(text)
    snap = parse_json_lines((fixtures / "deferred-50-four-reasons.jsonl").read_bytes()
                            .splitlines(), time.time())
    for q in QUEUES:                            # zero-filled, as postfix_exporter's
        assert s[("postfix_showq_queue_depth", (("queue", q),))] == snap.stats(q).messages
        assert s[("postfix_showq_message_age_seconds_count", (("queue", q),))] == \
            snap.stats(q).messages
        assert s[("postfix_showq_message_size_bytes_sum", (("queue", q),))] == \
            snap.stats(q).bytes
        assert ("postfix_showq_message_age_seconds_bucket", (("le", "1e+08"), ("queue", q))) in s
    assert s[("postfix_up", (("path", pq),))] == 1
    assert s[("postfix_queue_monitor_errors", ())] == 0
    for cls, n in snap.deferred_classes.items():
        assert s[("postfix_queue_deferred_recipients", (("reason", cls),))] == n
    top = [k for k in s if k[0] == "postfix_queue_deferred_destination_recipients"]
    assert 0 < len(top) <= cli.DEFAULT_TOP
    assert not any(k[0].startswith("postfix_delivery_") for k in s)      # --no-deliveries
    # no timestamps: every sample line is "name{labels} value"
    for line in text.splitlines():
        if not line.startswith("#"):
            rest = line.rpartition("} ")[2] if "{" in line else line.partition(" ")[2]
            assert len(rest.split()) == 1, line


def test_textfile_is_atomic_0644_whatever_the_umask(tmp_path: Path, fixtures: Path,
                                                    capsys) -> None:
    pq = fake_postqueue(tmp_path, j=fixtures / "deferred-50-four-reasons.jsonl")
    target = tmp_path / "postfix.prom"
    target.write_text("old\n")
    old_inode = target.stat().st_ino
    mask = os.umask(0o077)
    try:
        code, _, text = run_textfile(tmp_path, capsys, "--postqueue", pq, "--no-deliveries")
    finally:
        os.umask(mask)
    assert code == 0 and "postfix_up" in text
    st = target.stat()
    assert stat.S_IMODE(st.st_mode) == 0o644
    assert st.st_ino != old_inode                      # replaced by rename, not rewritten
    assert sorted(p.name for p in tmp_path.iterdir()) == ["postfix.prom", "postqueue", "st"]


def test_textfile_dash_writes_standard_output(tmp_path: Path, fixtures: Path,
                                             monkeypatch) -> None:
    """``textfile -`` is standard output (no file named "-", no temporary file); the one line of
    a failure goes to stderr, so stdout stays an exposition."""
    pq = fake_postqueue(tmp_path, j=fixtures / "deferred-50-four-reasons.jsonl")
    monkeypatch.chdir(tmp_path)
    run = [sys.executable, "-m", "postfix_queue_monitor.prometheus.cli", "textfile", "-",
           "--no-deliveries", "--state-dir", str(tmp_path / "st")]
    ok = subprocess.run([*run, "--postqueue", pq], capture_output=True, timeout=60)
    assert (ok.returncode, ok.stderr) == (0, b"")
    assert samples(ok.stdout.decode())[("postfix_up", (("path", pq),))] == 1
    bad = subprocess.run([*run, "--postqueue", str(tmp_path / "none")], capture_output=True,
                         timeout=60)
    assert bad.returncode == 3 and bad.stderr.count(b"\n") == 1 and b"not found" in bad.stderr
    assert samples(bad.stdout.decode())[("postfix_up", (("path", str(tmp_path / "none")),))] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["postqueue", "st"]


def test_textfile_failure_says_postfix_up_0_and_one_line(tmp_path: Path, capsys) -> None:
    code, out, text = run_textfile(tmp_path, capsys, "--postqueue", str(tmp_path / "none"))
    assert code == 3
    assert out.count("\n") == 1 and "not found" in out and "postfix_up 0" in out
    s = samples(text)
    assert s[("postfix_up", (("path", str(tmp_path / "none")),))] == 0
    assert not any(k[0].startswith("postfix_showq_") for k in s)


def test_textfile_unwritable_directory_is_one_line(tmp_path: Path, fixtures: Path,
                                                   capsys) -> None:
    pq = fake_postqueue(tmp_path, j=fixtures / "deferred-50-four-reasons.jsonl")
    code = cli.main(["textfile", str(tmp_path / "missing" / "x.prom"), "--postqueue", pq,
                     "--no-deliveries", "--state-dir", str(tmp_path / "st")])
    out = capsys.readouterr().out
    assert code == 3 and out.count("\n") == 1 and "cannot write in" in out


def test_textfile_partial_failure_exits_3_with_the_queue_values(tmp_path: Path, fixtures: Path,
                                                                 capsys) -> None:
    pq = fake_postqueue(tmp_path, j=fixtures / "deferred-50-four-reasons.jsonl")
    code, out, text = run_textfile(tmp_path, capsys, "--postqueue", pq,
                                   "--log-file", str(tmp_path / "no.log"))
    assert code == 3 and out.startswith("partly measured: deliveries: log file")
    s = samples(text)
    assert s[("postfix_up", (("path", pq),))] == 1
    assert s[("postfix_queue_monitor_errors", ())] == 1


def test_growth_appears_from_the_second_run(tmp_path: Path, fixtures: Path, capsys) -> None:
    pq = fake_postqueue(tmp_path, j=fixtures / "deferred-50-four-reasons.jsonl")
    _, _, first = run_textfile(tmp_path, capsys, "--postqueue", pq, "--no-deliveries")
    growth = ("postfix_queue_deferred_growth_messages_per_hour", ())
    assert growth not in samples(first)                     # no baseline yet
    _older_baseline(tmp_path)
    _, _, second = run_textfile(tmp_path, capsys, "--postqueue", pq, "--no-deliveries")
    assert samples(second)[growth] == 0


def _older_baseline(tmp_path: Path) -> None:
    """A growth sample from two minutes ago (a rate needs samples at least a minute apart)."""
    ago = time.time() - 120
    growth.measure_growth(str(tmp_path / "st"), None, 50, ago, lambda: ago, 900.0)


# -- delivery counters ------------------------------------------------------------------------

def totals(log: Log, now: float) -> dict[str, int]:
    return counters.read_totals(str(log.path), False, None, str(log.path.parent / "st"), now,
                                Deadline(5))


def test_counters_start_at_zero_and_only_grow(tmp_path: Path) -> None:
    log = Log(tmp_path / "mail.log")
    log.write(7, T0 - 60)
    assert totals(log, T0) == {"sent": 0, "bounced": 0, "expired": 0, "deferred": 0}
    log.write(3, T0 + 10)
    log.write(2, T0 + 10, "bounced")
    log.write(4, T0 + 10, "deferred")
    assert totals(log, T0 + 20) == {"sent": 3, "bounced": 2, "expired": 0, "deferred": 4}
    assert totals(log, T0 + 30) == {"sent": 3, "bounced": 2, "expired": 0, "deferred": 4}


def test_counters_survive_rename_rotation_without_double_count(tmp_path: Path) -> None:
    log = Log(tmp_path / "mail.log")
    log.write(1, T0)
    totals(log, T0)
    log.write(5, T0 + 10)                              # before the rotation: counted once
    os.rename(log.path, tmp_path / "mail.log.1")
    log.write(2, T0 + 20, "bounced", path=tmp_path / "mail.log.1")   # late write to the old
    log.write(3, T0 + 30)                              # the new file
    assert totals(log, T0 + 40) == {"sent": 8, "bounced": 2, "expired": 0, "deferred": 0}
    log.write(1, T0 + 50)
    assert totals(log, T0 + 60)["sent"] == 9


def test_counters_survive_copytruncate(tmp_path: Path) -> None:
    log = Log(tmp_path / "mail.log")
    log.write(1, T0)
    totals(log, T0)
    log.write(4, T0 + 10)
    shutil.copyfile(log.path, tmp_path / "mail.log.1")
    with open(log.path, "r+b") as fh:
        fh.truncate(0)
    log.write(2, T0 + 20)
    assert totals(log, T0 + 30)["sent"] == 6
    assert totals(log, T0 + 40)["sent"] == 6


def test_counters_malformed_state_is_one_line(tmp_path: Path) -> None:
    log = Log(tmp_path / "mail.log")
    log.write(1, T0)
    totals(log, T0)
    st = tmp_path / "st"
    (path,) = [p for p in st.iterdir() if p.name.startswith("counters-") and
               p.name.endswith(".json")]
    doc = json.loads(path.read_text())
    doc["data"]["totals"]["sent"] = -1
    path.write_text(json.dumps(doc))
    with pytest.raises(counters.MonitorError, match="corrupt .total sent -1 is out of range"):
        totals(log, T0 + 10)


def test_counters_keep_unreadable_lines_when_the_name_problem_fires(tmp_path: Path) -> None:
    """A run that says "check --syslog-name" still writes the unreadable Postfix lines kept so
    far into its state (before: dropped, so the run after forgot them)."""
    log = tmp_path / "mail.log"
    log.write_bytes(b"")
    st = tmp_path / "st"

    def run(now: float) -> str:
        with pytest.raises(counters.MonitorError) as exc:
            counters.read_totals(str(log), False, "postfix-out", str(st), now, Deadline(5))
        return str(exc.value)

    def unreadable() -> list:
        (path,) = st.glob("counters-*.json")
        return json.loads(path.read_text())["data"].get("unreadable")

    counters.read_totals(str(log), False, "postfix-out", str(st), T0, Deadline(5))
    with open(log, "ab") as fh:         # a journal export of this name: not understood
        fh.write(b"__REALTIME_TIMESTAMP=1\nSYSLOG_IDENTIFIER=postfix-out/smtp\n"
                 b"MESSAGE=ABC: to=<a@b.example>, status=sent\n\n")
    assert "journal export" in run(T0 + 60)
    kept = unreadable()
    assert kept[0] == 1 and "SYSLOG_IDENTIFIER=postfix-out" in kept[2]
    with open(log, "ab") as fh:         # another instance's line: the name problem fires
        fh.write(Log.line(T0 + 100))
    assert "check --syslog-name" in run(T0 + 120)
    assert unreadable() == kept


def test_textfile_counters_from_the_log(tmp_path: Path, fixtures: Path, capsys) -> None:
    pq = fake_postqueue(tmp_path, j=fixtures / "deferred-50-four-reasons.jsonl")
    log = Log(tmp_path / "mail.log")
    log.write(1, time.time() - 5)
    args = ("--postqueue", pq, "--log-file", str(log.path))
    assert run_textfile(tmp_path, capsys, *args)[0] == 0
    log.write(2, time.time(), "bounced")
    code, _, text = run_textfile(tmp_path, capsys, *args)
    s = samples(text)
    assert code == 0
    assert s[("postfix_delivery_recipients_total", (("status", "bounced"),))] == 2
    assert s[("postfix_delivery_recipients_total", (("status", "sent"),))] == 0


# -- serve ------------------------------------------------------------------------------------

def scrape(port: int, deadline: float = 10.0) -> str:
    return wait_http(f"http://127.0.0.1:{port}/metrics", timeout=deadline)


@pytest.fixture
def serve(tmp_path: Path):
    procs: list[subprocess.Popen] = []

    def start(*args: str) -> int:
        port = free_port()
        proc = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "postfix_queue_monitor.prometheus.cli", "serve", "--listen",
             f"127.0.0.1:{port}", "--state-dir", str(tmp_path / "st"), "--no-deliveries",
             *args], stderr=subprocess.PIPE, text=True, cwd=ROOT)
        procs.append(proc)
        return port

    yield start, procs
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=10)


def test_serve_measures_on_each_scrape(tmp_path: Path, fixtures: Path, serve) -> None:
    start, procs = serve
    listing = tmp_path / "listing.jsonl"
    shutil.copyfile(fixtures / "deferred-50-four-reasons.jsonl", listing)
    pq = fake_postqueue(tmp_path, j=listing)
    port = start("--postqueue", pq)
    first = samples(scrape(port))
    assert first[("postfix_up", (("path", pq),))] == 1
    listing.write_text("")                               # the queue drained
    second = samples(scrape(port))
    assert first[("postfix_showq_queue_depth", (("queue", "deferred"),))] > 0
    assert second[("postfix_showq_queue_depth", (("queue", "deferred"),))] == 0
    procs[0].terminate()
    assert procs[0].wait(timeout=10) == 0


def test_serve_failure_is_postfix_up_0_and_a_log_line(tmp_path: Path, serve) -> None:
    start, procs = serve
    pq = fake_postqueue(tmp_path, rc=69, stderr="postqueue: fatal: Queue report unavailable - "
                        "mail system is down")
    port = start("--postqueue", pq)
    s = samples(scrape(port))
    assert s[("postfix_up", (("path", pq),))] == 0
    procs[0].terminate()
    procs[0].wait(timeout=10)
    err = procs[0].stderr.read()
    assert "measuring failed: Postfix is not running" in err and "Traceback" not in err


def test_serve_slow_postqueue_is_cut_at_the_timeout(tmp_path: Path, fixtures: Path,
                                                    serve) -> None:
    start, _ = serve
    pq = fake_postqueue(tmp_path, j=fixtures / "deferred-50-four-reasons.jsonl", sleep=30)
    port = start("--postqueue", pq, "--timeout", "1")
    started = time.monotonic()
    s = samples(scrape(port))
    assert time.monotonic() - started < 5
    assert s[("postfix_up", (("path", pq),))] == 0


def test_serve_port_taken_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        proc = subprocess.run(  # noqa: S603
            [sys.executable, "-m", "postfix_queue_monitor.prometheus.cli", "serve", "--listen",
             f"127.0.0.1:{port}"], capture_output=True, text=True, timeout=20, cwd=ROOT)
    assert proc.returncode == 3 and proc.stdout.startswith(f"cannot listen on 127.0.0.1:{port}")
    assert proc.stderr == ""


@pytest.mark.parametrize("bad", ["9154", "host:", ":80", "h:0", "h:70000", "h:x"])
def test_listen_must_be_addr_port(bad: str) -> None:
    with pytest.raises(cli.MonitorError, match="expected ADDR:PORT"):
        cli.parse_listen(bad)


def test_concurrent_collects_share_one_measurement() -> None:
    calls = []

    def slow(opts):
        calls.append(1)
        time.sleep(0.3)
        raise cli.MonitorError("boom")

    opts = argparse.Namespace(postqueue="/x", config_dir=None, top_destinations=0)
    col = exposition.PostfixCollector(opts, measure=slow, log=lambda line: None)
    threads = [threading.Thread(target=col.run) for _ in range(4)]
    for t in threads:
        t.start()
        time.sleep(0.02)
    for t in threads:
        t.join()
    assert len(calls) == 1


# -- alert rules ------------------------------------------------------------------------------

def test_committed_rules_equal_generator_output() -> None:
    for name, text in rules.generated().items():
        assert (ROOT / "prometheus" / name).read_text() == text, (
            f"prometheus/{name} differs: run python -m postfix_queue_monitor.prometheus.rules "
            f"prometheus")


def test_rule_defaults_are_the_checks_defaults() -> None:
    text = rules.render()
    for c in check_registry.CHECKS:
        for t in (c.warning, c.critical):
            assert f"> {rules._number(t)}" in text, (c.key, t)
    bounce = check_registry.BY_KEY["bounce"]
    assert f">= {bounce.min_deliveries}" in text and "[1h]" in text
    assert bounce.window == 3600


def test_docs_name_every_family_and_every_rule(tmp_path: Path, fixtures: Path, capsys) -> None:
    doc = (ROOT / "docs" / "prometheus.md").read_text()
    pq = fake_postqueue(tmp_path, j=fixtures / "deferred-50-four-reasons.jsonl")
    log = Log(tmp_path / "mail.log")
    log.write(1, time.time())
    _, _, text = run_textfile(tmp_path, capsys, "--postqueue", pq, "--log-file", str(log.path))
    names = {fam.name for fam in text_string_to_metric_families(text)}
    names = {f"{n}_total" if n == exposition.DELIVERIES else n for n in names}
    assert len(names) >= 14
    for name in names:
        assert f"`{name}`" in doc, name
    for rule in rules.rules():
        assert str(rule["alert"]).removesuffix("Warning").removesuffix("Critical") in doc


def test_rules_use_only_names_we_expose(tmp_path: Path, fixtures: Path, capsys) -> None:
    pq = fake_postqueue(tmp_path, j=fixtures / "deferred-50-four-reasons.jsonl")
    log = Log(tmp_path / "mail.log")
    log.write(1, time.time())
    args = ("--postqueue", pq, "--log-file", str(log.path))
    run_textfile(tmp_path, capsys, *args)
    _older_baseline(tmp_path)
    _, _, text = run_textfile(tmp_path, capsys, *args)          # with growth
    exposed = {s.name for fam in text_string_to_metric_families(text) for s in fam.samples}
    used = set()
    for rule in rules.rules():
        used |= set(re.findall(r"\b(postfix_[a-z_]+|up)\b(?=[{ )]|$)", str(rule["expr"])))
    assert used - exposed == {"up"}, used - exposed
    assert {"postfix_showq_queue_depth", "postfix_delivery_recipients_total", "postfix_up",
            "postfix_queue_deferred_growth_messages_per_hour"} <= used


# -- the shared listing and a cut one ---------------------------------------------------------

def counting_postqueue(tmp_path: Path, listing: Path, after: str = "") -> tuple[str, Path]:
    """A postqueue that notes each run in a file, prints ``listing``, then runs ``after``."""
    runs = tmp_path / "runs"
    script = tmp_path / "postqueue"
    script.write_text(f"#!/bin/sh\necho run >> {runs}\ncat {listing}\n{after}\n")
    script.chmod(0o755)
    return str(script), runs


def test_listing_max_age_shares_one_listing_with_the_checks(tmp_path: Path, fixtures: Path,
                                                            capsys) -> None:
    """Whoever lists first, one postqueue run serves the check and the exporter both ways (a
    shared listing always carries the exporter's histograms). Before: a check's listing had
    none, so the exporter listed again after it (two runs)."""
    pq, runs = counting_postqueue(tmp_path, fixtures / "deferred-50-four-reasons.jsonl")
    shared = ("--postqueue", pq, "--listing-max-age", "60", "--state-dir", str(tmp_path / "st"))
    out = tmp_path / "a.prom"
    with pytest.raises(SystemExit):
        queue_size.main(list(shared))
    assert cli.main(["textfile", str(out), "--no-deliveries", *shared]) == 0
    assert runs.read_text().count("run") == 1
    first = samples(out.read_text())
    (tmp_path / "st" / "listing-default.json").unlink()
    assert cli.main(["textfile", str(out), "--no-deliveries", *shared]) == 0
    with pytest.raises(SystemExit):
        queue_size.main(list(shared))
    capsys.readouterr()
    assert runs.read_text().count("run") == 2
    hist = [k for k in first if k[0].startswith("postfix_showq_message_size")]
    assert len(hist) > 40 and all(samples(out.read_text())[k] == first[k] for k in hist)


def hist_samples(c: collect.Collection) -> dict:
    fams = exposition.histogram_families(c.snap.queues)
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in fams for s in f.samples}


def test_a_reused_listing_exposes_its_own_listings_histograms_as_of_its_time(
        tmp_path: Path, fixtures: Path) -> None:
    """The exporter reusing a check's listing 40 s later exposes exactly the histograms (every
    bucket and both sums) of its own listing taken when that one was: ages are stated as of the
    listing's time, which postfix_queue_monitor_listing_timestamp_seconds says."""
    pq, runs = counting_postqueue(tmp_path, fixtures / LISTING)
    now = 1_764_000_000.0
    shared = ["--postqueue", pq, "--listing-max-age", "60", "--state-dir", str(tmp_path / "st"),
              "--no-deliveries"]
    with pytest.raises(SystemExit):
        queue_size.main(shared[:-1], clock=lambda: now)
    opts = cli.parser().parse_args(["textfile", "x", *shared])
    reused = collect.measure(opts, clock=lambda: now + 40)
    assert runs.read_text().count("run") == 1
    assert reused.snap.reused_age == 40 and reused.snap.now == now and reused.now == now + 40
    own = collect.measure(cli.parser().parse_args(["textfile", "x", *shared[:2], "--state-dir",
                                                   str(tmp_path / "own"), "--no-deliveries"]),
                          clock=lambda: now)
    assert runs.read_text().count("run") == 2 and own.snap.reused_age is None
    got, want = hist_samples(reused), hist_samples(own)
    assert got == want and len(got) == 5 * (9 + 2 + 8 + 2)
    assert sum(v for (n, _), v in got.items() if n.endswith("_count")) == 2 * sum(
        reused.snap.stats(q).messages for q in QUEUES) > 0
    text = samples(generate(reused))
    assert text[("postfix_queue_monitor_listing_timestamp_seconds", ())] == now
    assert text[("postfix_queue_monitor_last_run_timestamp_seconds", ())] == now + 40


def generate(c: collect.Collection) -> str:
    from prometheus_client import CollectorRegistry, generate_latest

    class Fixed(exposition.PostfixCollector):
        def run(self):
            return c, None
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Fixed(argparse.Namespace(postqueue="pq", config_dir=None,
                                               top_destinations=0)))
    return generate_latest(registry).decode()


def test_cut_listing_exposes_only_its_lower_bound(tmp_path: Path, fixtures: Path,
                                                  capsys) -> None:
    listing = fixtures / "deferred-50-four-reasons.jsonl"
    pq, _ = counting_postqueue(tmp_path, listing, after="sleep 30")
    started = time.monotonic()
    code, out, text = run_textfile(tmp_path, capsys, "--postqueue", pq, "--no-deliveries",
                                   "--timeout", "2")
    assert time.monotonic() - started < 4
    listed = len(listing.read_text().splitlines())
    assert code == 3 and out.startswith(f"measuring failed: queue listing cut after {listed} ")
    s = samples(text)
    assert s[("postfix_queue_messages_lower_bound", ())] == listed
    assert s[("postfix_up", (("path", pq),))] == 0
    assert not any(k[0].startswith(("postfix_showq_", "postfix_queue_size")) for k in s)


def test_a_checks_cut_listing_is_not_the_exporters_whole(tmp_path: Path, capsys) -> None:
    """A check cut at -t 1 stores its lower bounds flagged cut; the exporter started after it
    lists afresh (never takes them as a complete queue) and, cut too, exposes only its own
    lower bound with postfix_up 0."""
    from fakes import slow_postqueue
    count = tmp_path / "runs"
    pq = slow_postqueue(tmp_path, 3000, runs=count)
    shared = ["--postqueue", pq, "--state-dir", str(tmp_path / "st"), "--listing-max-age", "60"]
    with pytest.raises(SystemExit) as exc:
        queue_size.main([*shared, "-c", "2000", "-t", "1"])
    assert exc.value.code == 2
    capsys.readouterr()
    time.sleep(0.3)       # started after the cut listing ended (not one waiting for it)
    code, out, text = run_textfile(tmp_path, capsys, *shared, "--no-deliveries", "-t", "1")
    assert len(count.read_text().split()) == 2
    assert code == 3 and out.startswith("measuring failed: queue listing cut after 3000 ")
    s = samples(text)
    assert s[("postfix_queue_messages_lower_bound", ())] == 3000
    assert s[("postfix_up", (("path", pq),))] == 0
    assert not any(k[0].startswith(("postfix_showq_", "postfix_queue_size")) for k in s)


# -- the shipped textfile schedule and the shared listing ------------------------------------

def _span_s(text: str) -> float:
    """A systemd time span as the shipped timers write it ("1min", "30s", "1min 30s")."""
    units = {"s": 1, "sec": 1, "min": 60, "h": 3600}
    spans = re.findall(r"(\d+)\s*([a-z]+)", text)
    assert spans and "".join(f"{n}{u}" for n, u in spans) == text.replace(" ", ""), text
    return float(sum(int(n) * units[u] for n, u in spans))


def shipped_runs() -> dict[str, tuple[list[str], float]]:
    """The command of each shipped way to run the exporter (the textfile timer's service, the
    textfile cron line, the serve service), with its period in seconds (serve's: the
    scrape_interval of docs/prometheus.md's scrape config)."""
    prom = ROOT / "prometheus"
    serve = (prom / "postfix-queue-prometheus-serve.service").read_text()
    (serve_start,) = re.findall(r"^ExecStart=(.*)$", serve, re.M)
    (scrape,) = re.findall(r"^    scrape_interval: (\d+)m$",
                           (ROOT / "docs/prometheus.md").read_text(), re.M)
    service = (prom / "postfix-queue-prometheus.service").read_text()
    timer = (prom / "postfix-queue-prometheus.timer").read_text()
    (exec_start,) = re.findall(r"^ExecStart=(.*)$", service, re.M)
    (every,) = re.findall(r"^OnUnitActiveSec=(.*)$", timer, re.M)
    (line,) = [ln for ln in (prom / "postfix-queue-prometheus.cron").read_text().splitlines()
               if ln.strip() and not ln.startswith("#")]
    fields = line.split(None, 6)
    assert fields[:5] == ["*"] * 5 and fields[5] == "prometheus"     # every minute
    return {"timer": (shlex.split(exec_start), _span_s(every)),
            "cron": (shlex.split(fields[6]), 60.0),
            "serve": (shlex.split(serve_start), 60.0 * int(scrape))}


@pytest.mark.parametrize("way", ["timer", "cron", "serve"])
def test_shipped_schedule_never_reuses_its_own_previous_listing(
        tmp_path: Path, fixtures: Path, capsys, way: str) -> None:
    """Each run of the shipped schedule (a textfile run, a scrape of serve) lists afresh, also
    when the last run's listing was taken up to 5 s after its start (a start delayed by
    AccuracySec or a loaded host), and still shares a listing with a check (the shipped NRPE
    and Nagios commands pass 60) started at the same time, both ways. Before, the units passed
    --listing-max-age 60 with a one-minute period: the next run found the last listing
    59.8-60 s old about half the time and exposed its queue values again, one period late."""
    argv, period = shipped_runs()[way]
    options = argv[3:] if argv[1] == "textfile" else argv[2:]
    options[options.index("--state-dir") + 1] = str(tmp_path / "st")
    pq, runs = counting_postqueue(tmp_path, fixtures / "deferred-50-four-reasons.jsonl")
    command = [argv[1], str(tmp_path / "q.prom")] if argv[1] == "textfile" else [argv[1]]
    opts = cli.parser().parse_args([*command, *options, "--postqueue", pq, "--no-deliveries"])
    at = 1795966800.0
    for step in (0.0, period - 5.0, period - 0.2, period):
        at += step
        assert collect.measure(opts, clock=lambda t=at: t).snap.reused_age is None, (way, step)
    assert runs.read_text().count("run") == 4
    check = ["--postqueue", pq, "--state-dir", str(tmp_path / "st"), "--listing-max-age", "60"]
    with pytest.raises(SystemExit):                 # a check a second after: reuses it
        queue_size.main(check, clock=lambda: at + 1)
    with pytest.raises(SystemExit):                 # a check alone, long after: lists
        queue_size.main(check, clock=lambda: at + 300)
    capsys.readouterr()
    # ... and the exporter's run a second after it reuses the check's
    assert collect.measure(opts, clock=lambda: at + 301).snap.reused_age == 1.0
    assert runs.read_text().count("run") == 5
