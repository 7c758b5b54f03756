"""One listing for every poller (--listing-max-age): reuse, single flight, a cut listing never
reused as complete; and what the Zabbix document and the report make of a cut listing. Real
processes against a stand-in postqueue that lists slowly and counts its runs."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time

import pytest

from fakes import slow_postqueue
from postfix_queue_monitor import listing, report, state_schema
from postfix_queue_monitor.deadline import Deadline
from postfix_queue_monitor.plugins import growth, queue_size
from postfix_queue_monitor.queue import QUEUES, HistogramStats, parse_json_lines, read_queue
from postfix_queue_monitor.zabbix import cli as zabbix_cli
from postfix_queue_monitor.zabbix import document

NOW = 1795966800.0
BIN = os.path.dirname(sys.executable)


def runs(path) -> int:
    return len(path.read_text().split()) if path.exists() else 0


def test_stored_snapshot_round_trips(tmp_path, fixtures):
    from fakes import fake_postqueue
    pq = fake_postqueue(tmp_path, j=fixtures / "deferred-50-four-reasons.jsonl")
    snap = read_queue(pq, None, 5.0, NOW)
    back = listing.from_data(json.loads(json.dumps(listing.to_data(snap, pq, None))))
    assert back == snap and back.cut is False


def message(i: int, arrival: float, size: int, queue: str = "deferred") -> bytes:
    return json.dumps({"queue_name": queue, "queue_id": f"{i:X}", "arrival_time": arrival,
                       "message_size": size, "sender": "s@x.example",
                       "recipients": [{"address": f"u@d{i % 7}.example",
                                       "delay_reason": "connect to d.example[192.0.2.1]:25: "
                                                       "Connection timed out"}]}).encode()


def test_stored_snapshot_round_trips_with_the_exporters_histograms(fixtures):
    """Every bucket count and age sum survives the store, including a message that arrived
    after the listing began (a negative age: before, its negative sum made every stored
    listing of such a queue unreadable, so each poller listed again)."""
    lines = (fixtures / "mixed-malformed-dup-postfix311.jsonl").read_bytes().splitlines()
    lines = [ln for ln in lines if b'"incoming"' not in ln]
    lines.append(message(9999, NOW + 3, 700, "incoming"))
    snap = parse_json_lines(lines, NOW, listing.HISTOGRAMS)
    assert snap.queues["incoming"].age_sum < 0
    data = json.loads(json.dumps(listing.to_data(snap, "/usr/sbin/postqueue", None)))
    back = listing.from_data(data)
    assert back == snap
    for q in QUEUES:
        st, got = snap.queues[q], back.queues[q]
        assert isinstance(got, HistogramStats)
        assert (got.ages, got.sizes, got.age_sum) == (st.ages, st.sizes, st.age_sum)
        assert (got.age_bounds, got.size_bounds) == listing.HISTOGRAMS
        assert sum(got.ages) == sum(got.sizes) == got.messages
    assert sum(st.messages for st in back.queues.values()) > 5


@pytest.mark.parametrize(("path", "value", "why"), [
    (("deferred", 0, 0), 10 ** 9, "count"),                 # buckets that do not add up
    (("deferred", 1), [0, 0], "buckets, not 8"),
    (("active", 2), float("nan"), "out of range"),
    (("hold", 0, 1), -1, "out of range"),
])
def test_histograms_that_contradict_the_queue_are_refused(fixtures, path, value, why):
    lines = (fixtures / "deferred-50-four-reasons.jsonl").read_bytes().splitlines()
    data = listing.to_data(parse_json_lines(lines, NOW, listing.HISTOGRAMS), "pq", None)
    row = data["histograms"]["queues"][path[0]]
    if len(path) == 3:
        row[path[1]][path[2]] = value
    else:
        row[path[1]] = value
    with pytest.raises(ValueError, match=why):
        state_schema.listing(json.loads(json.dumps(data)), QUEUES, 10)


def test_the_stored_listing_stays_small_as_the_queue_grows():
    """No per-message data: 200,000 messages over the same 7 domains store in as many bytes
    as 1,000 (give or take the digits of the counts)."""
    sizes = []
    for n in (1000, 200_000):
        snap = parse_json_lines((message(i, NOW - i % 90000, 500 + i % 20000) for i in range(n)),
                                NOW, listing.HISTOGRAMS)
        assert snap.stats("total").messages == n
        sizes.append(len(json.dumps(listing.to_data(snap, "pq", None))))
    assert sizes[1] < sizes[0] + 400 and sizes[1] < 4000, sizes


def test_every_shared_listing_carries_the_histograms(tmp_path, fixtures):
    """A check's listing (histograms not asked for) is stored with them: the exporter reuses
    it; a listing stored without them (an older version's) serves a check, not the exporter."""
    from fakes import fake_postqueue
    pq = fake_postqueue(tmp_path, j=fixtures / "deferred-50-four-reasons.jsonl")
    state = tmp_path / "state"
    first = listing.get_listing(pq, None, Deadline(5), NOW, state_dir=str(state), max_age=60,
                                clock=lambda: NOW)
    assert isinstance(first.queues["deferred"], HistogramStats)
    again = listing.get_listing(pq, None, Deadline(5), NOW + 5, state_dir=str(state),
                                max_age=60, clock=lambda: NOW + 5, histograms=True)
    assert again.reused_age == 5 and again.queues["deferred"].ages == first.queues[
        "deferred"].ages
    path = state / listing.file_name(None)
    doc = json.loads(path.read_text())
    doc["data"]["histograms"] = None
    path.write_text(json.dumps(doc))
    plain = listing.get_listing(pq, None, Deadline(5), NOW + 6, state_dir=str(state),
                                max_age=60, clock=lambda: NOW + 6)
    assert plain.reused_age == 6
    fresh = listing.get_listing(pq, None, Deadline(5), NOW + 7, state_dir=str(state),
                                max_age=60, clock=lambda: NOW + 7, histograms=True)
    assert fresh.reused_age is None and fresh.now == NOW + 7


def test_zabbix_document_is_stamped_with_its_listings_time(tmp_path, fixtures):
    """A reused listing's document carries the listing's clock and the ages as of then (the
    growth sample already was at the listing's time); before, the run's start clock."""
    from fakes import fake_postqueue
    pq = fake_postqueue(tmp_path, j=fixtures / "deferred-50-four-reasons.jsonl")
    opts = zabbix_cli.parser().parse_args([
        "json", "--postqueue", pq, "--state-dir", str(tmp_path / "state"),
        "--listing-max-age", "60", "--log-file", os.devnull])
    first = document.measure(opts, clock=lambda: NOW)
    again = document.measure(opts, clock=lambda: NOW + 45)
    assert first.clock == again.clock == NOW
    assert again.values["queue.oldest_age"] == first.values["queue.oldest_age"] > 0


@pytest.mark.parametrize("bad", [{"now": "x"}, {"queues": {"deferred": [1, 2]}},
                                 {"deferred_domains": {"a": -1}}, {"lines": 2 ** 70 * -1}])
def test_a_damaged_stored_listing_is_listed_afresh(tmp_path, fixtures, bad):
    from fakes import fake_postqueue
    pq = fake_postqueue(tmp_path, j=fixtures / "deferred-50-four-reasons.jsonl")
    state = tmp_path / "state"
    first = listing.get_listing(pq, None, Deadline(5), NOW, state_dir=str(state), max_age=60,
                                clock=lambda: NOW)
    path = state / listing.file_name(None)
    doc = json.loads(path.read_text())
    doc["data"].update(bad)
    path.write_text(json.dumps(doc))
    again = listing.get_listing(pq, None, Deadline(5), NOW + 1, state_dir=str(state), max_age=60,
                                clock=lambda: NOW + 1)
    assert again.reused_age is None and again.stats("total") == first.stats("total")


def test_reuse_within_max_age_private_and_said_in_v(tmp_path, capsys):
    count = tmp_path / "runs"
    pq = slow_postqueue(tmp_path, 100, hang=False, runs=count)
    state = tmp_path / "state"
    argv = ["--postqueue", pq, "--state-dir", str(state), "--listing-max-age", "60", "-v"]
    for clock in (NOW, NOW + 30):
        with pytest.raises(SystemExit):
            queue_size.main(argv, clock=lambda c=clock: c)
    out = capsys.readouterr().out
    assert runs(count) == 1
    assert "listing reused: taken 30.0 s ago by another run" in out
    path = state / listing.file_name(None)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o700
    assert json.loads(path.read_text())["kind"] == "listing"     # the parsed snapshot, by state.py
    with pytest.raises(SystemExit):                              # older than max age: listed again
        queue_size.main(argv, clock=lambda: NOW + 91)
    assert runs(count) == 2


@pytest.mark.parametrize(("field", "value"), [
    ("uid", os.geteuid() + 1),                   # stored by another user (root, in this dir)
    ("postqueue", "/usr/sbin/postqueue-other"),  # by another postqueue
    ("config_dir", "/etc/postfix-other"),        # for another instance (copied under this name)
])
def test_a_listing_of_another_user_postqueue_or_instance_is_never_reused(tmp_path, field,
                                                                         value):
    count = tmp_path / "runs"
    pq = slow_postqueue(tmp_path, 100, hang=False, runs=count)
    state = tmp_path / "state"
    first = listing.get_listing(pq, None, Deadline(5), NOW, state_dir=str(state), max_age=60,
                                clock=lambda: NOW)
    assert first.reused_age is None and runs(count) == 1
    path = state / listing.file_name(None)
    doc = json.loads(path.read_text())
    doc["data"][field] = value
    path.write_text(json.dumps(doc))
    again = listing.get_listing(pq, None, Deadline(5), NOW + 5, state_dir=str(state),
                                max_age=60, clock=lambda: NOW + 5)
    assert again.reused_age is None and again.now == NOW + 5 and runs(count) == 2


def test_a_reused_listing_is_a_growth_sample_at_its_own_time(tmp_path, fixtures, capsys):
    """10 deferred at NOW, 50 listed at NOW+100: +1440/h. A run at NOW+159 that reuses the
    NOW+100 listing gives the same rate and adds no sample. Before: it stored (NOW+159, 50)
    and said +905.7/h (40 messages over 159 s)."""
    from fakes import fake_postqueue
    pqs = {}
    for n, fixture in ((10, "deferred-10-first-of-50.jsonl"),
                       (50, "deferred-50-four-reasons.jsonl")):
        (tmp_path / f"pq{n}").mkdir()
        pqs[n] = fake_postqueue(tmp_path / f"pq{n}", j=fixtures / fixture)
    state = tmp_path / "state"
    outs = []
    for n, clock in ((10, NOW), (50, NOW + 100), (50, NOW + 159)):
        with pytest.raises(SystemExit):
            growth.main(["--postqueue", pqs[n], "--state-dir", str(state),
                         "--listing-max-age", "60", "-v"], clock=lambda c=clock: c)
        outs.append(capsys.readouterr().out)
    assert "deferred queue +1440/h, 50 deferred" in outs[1], outs[1]
    assert "listing reused: taken 59.0 s ago" in outs[2]
    assert "deferred queue +1440/h, 50 deferred" in outs[2], outs[2]
    samples = json.loads((state / "growth-default.json").read_text())["data"]["samples"]
    assert samples == [[NOW, 10], [NOW + 100, 50]]


def test_a_cut_listing_is_never_reused_as_complete(tmp_path, capsys):
    count = tmp_path / "runs"
    cut = slow_postqueue(tmp_path, 3000, runs=count)
    state = str(tmp_path / "state")
    argv = ["--postqueue", cut, "--state-dir", state, "--listing-max-age", "60", "-c", "2000",
            "-t", "1"]
    for clock in (NOW, NOW + 2):    # the second starts after the first's listing ended
        with pytest.raises(SystemExit) as exc:
            queue_size.main(argv, clock=lambda c=clock: c)
        assert exc.value.code == 2
    assert runs(count) == 2        # the second run did not take the first's cut listing
    out = capsys.readouterr().out
    assert "listing reused" not in out


def test_pollers_starting_together_list_once(tmp_path):
    """Four checks, the report and the Zabbix document start at once: one postqueue run; each
    answers from it (the listing takes 1.5 s, each waits within its own -t)."""
    count = tmp_path / "runs"
    pq = slow_postqueue(tmp_path, 3000, hang=False, seconds=1.5, runs=count)
    common = ["--postqueue", pq, "--state-dir", str(tmp_path / "state"),
              "--listing-max-age", "60", "-t", "8"]
    cmds = [["check_postfix_queue", *common, "-v"],
            ["check_postfix_oldest_message", *common, "-v"],
            ["check_postfix_deferred_growth", *common, "-v"],
            ["postfix_queue_report", *common, "--json"],
            ["postfix_queue_zabbix", "json", *common, "--log-file", os.devnull]]
    started = time.monotonic()
    procs = [subprocess.Popen([os.path.join(BIN, c[0]), *c[1:]], stdout=subprocess.PIPE,
                              text=True) for c in cmds]
    outs = [p.communicate(timeout=30)[0] for p in procs]
    assert time.monotonic() - started < 8
    assert runs(count) == 1, outs
    assert outs[0].startswith("POSTFIX QUEUE OK - 3000 messages queued"), outs[0]
    assert sum("listing reused" in o for o in outs[:3]) >= 2, outs
    assert json.loads(outs[3])["queues"]["total"]["messages"] == 3000
    assert json.loads(outs[4])["queue"]["total"]["messages"] == 3000


def test_zabbix_document_of_a_cut_listing(tmp_path, capsys):
    pq = slow_postqueue(tmp_path, 2500)
    code = zabbix_cli.main(["json", "--postqueue", pq, "-t", "1", "--state-dir",
                            str(tmp_path / "state"), "--log-file", os.devnull])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    assert doc["meta"]["cut"] == {"messages": 2500}
    assert "queue listing cut after 2500 messages" in doc["meta"]["error"]
    assert "queue" not in doc and "oldest_age" not in doc       # no lower bound as a whole value
    assert "growth_per_hour" not in doc.get("deferred", {}) and "reasons" not in doc.get(
        "deferred", {})
    assert not [f for f in os.listdir(tmp_path / "state") if f.startswith("growth-")
                and not f.endswith(".lock")]


def test_report_of_a_cut_listing_says_incomplete(tmp_path, capsys):
    pq = slow_postqueue(tmp_path, 2500)
    assert report.main(["--postqueue", pq, "-t", "1"]) == 0
    out = capsys.readouterr().out
    assert "INCOMPLETE: the listing was cut after 0.8 s at 2,500 messages" in out
    assert "every figure below is a lower bound" in out
    assert report.main(["--postqueue", pq, "-t", "1", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["complete"] is False and doc["queues"]["deferred"]["messages"] == 2500


def test_a_storm_costs_one_listing_and_every_check_answers_from_its_lower_bounds(tmp_path):
    """The listing hangs (a storm): the first check's listing is cut at its deadline, the
    others waited for that very scan and judge its lower bounds, all within -t + 1.5 s beyond
    what four checks on a queue that lists at once take together on this machine now (0.4-0.6 s
    unloaded: a fixed 4 s bound failed under load 5 on 2 cores, a 0.5 s margin once under
    load). A waiter that outwaited its -t, or a second listing, takes two -t (6 s) plus that
    start cost or more, which a 1.5 s margin still tells apart."""
    check = os.path.join(BIN, "check_postfix_queue")
    quick = slow_postqueue(tmp_path, 3000, hang=False, name="quick-postqueue")
    started = time.monotonic()
    for p in [subprocess.Popen([check, "--postqueue", quick, "-t", "3"],
                               stdout=subprocess.DEVNULL) for _ in range(4)]:
        p.wait(timeout=30)
    start_cost = time.monotonic() - started
    count = tmp_path / "runs"
    pq = slow_postqueue(tmp_path, 3000, runs=count)
    common = ["--postqueue", pq, "--state-dir", str(tmp_path / "state"),
              "--listing-max-age", "60", "-t", "3", "-c", "2000"]
    started = time.monotonic()
    procs = [subprocess.Popen([check, *common], stdout=subprocess.PIPE, text=True)
             for _ in range(4)]
    outs = [p.communicate(timeout=30)[0] for p in procs]
    took = time.monotonic() - started
    assert took < 3.0 + start_cost + 1.5, (took, start_cost)
    assert runs(count) == 1, outs
    assert [p.returncode for p in procs] == [2] * 4, outs
    assert all(o.startswith("POSTFIX QUEUE CRITICAL - at least 3,000 messages queued (> 2000; "
                            "listing cut after") for o in outs), outs
