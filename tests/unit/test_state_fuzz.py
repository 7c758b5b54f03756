"""Property tests of every state loader (issue 16.1): whatever a state, position or spool file
holds, a run either uses it or moves it aside with one StateError line, and the next run works;
a bad spool entry costs only itself. Never another exception.

``make test`` runs a sample (FUZZ_EXAMPLES, default 150 per loader); ``make fuzz`` runs
100,000 generated files per loader and prints the figures docs/reliability.md quotes.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from postfix_queue_monitor import deliveries as D
from postfix_queue_monitor import growth as G
from postfix_queue_monitor import listing as L
from postfix_queue_monitor.deadline import Deadline
from postfix_queue_monitor.prometheus import counters as C
from postfix_queue_monitor.queue import QUEUES, HistogramStats, parse_json_lines
from postfix_queue_monitor.state import StateError
from postfix_queue_monitor.zabbix import sender

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))
CLOSED = "127.0.0.1:10152"    # assigned to this suite: nothing listens there
NOW = 1795966800.0
NOW_INT = int(NOW)

# -- generated files ---------------------------------------------------------------------------

def weighted(often: st.SearchStrategy, *rarely: st.SearchStrategy,
             share: int = 12) -> st.SearchStrategy:
    """``often`` ``share`` times in ``share`` + 4 (one_of would pick the branches evenly)."""
    return st.integers(0, share + 3).flatmap(
        lambda i: often if i < share else rarely[i % len(rarely)])


#: mostly in range (so that files get past the loader and into the code that uses them),
#: sometimes negative, huge, fractional, NaN or infinite
plausible = st.one_of(st.integers(min_value=0, max_value=10 ** 6),
                      st.integers(min_value=NOW_INT - 7200, max_value=NOW_INT + 60))
numbers = weighted(plausible, st.integers(), st.floats(allow_nan=True, allow_infinity=True),
                   share=28)
leaves = st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=20))
json_any = st.recursive(leaves, lambda c: st.one_of(st.lists(c, max_size=4),
                                                     st.dictionaries(st.text(max_size=8), c,
                                                                     max_size=4)),
                        max_leaves=12)


def maybe(good: st.SearchStrategy) -> st.SearchStrategy:
    """Mostly the right shape, sometimes anything: the wrongly typed files that broke runs."""
    return weighted(good, json_any, share=28)


def pair(a: st.SearchStrategy, b: st.SearchStrategy) -> st.SearchStrategy:
    return maybe(st.tuples(a, b).map(list))


growth_data = st.fixed_dictionaries({}, optional={
    "samples": maybe(st.lists(pair(numbers, numbers), max_size=6)),
    "windows": maybe(st.dictionaries(st.one_of(numbers.map(repr), st.text(max_size=6)),
                                     maybe(numbers), max_size=3)),
    "rates": maybe(st.dictionaries(st.one_of(numbers.map(repr), st.text(max_size=6)),
                                   pair(numbers, numbers), max_size=3)),
})

position = st.fixed_dictionaries({
    k: maybe(v) for k, v in {"path": st.text(max_size=10), "dev": numbers, "ino": numbers,
                             "offset": numbers, "fp": st.text(max_size=40),
                             "fp_len": numbers}.items()})
classes = maybe(st.dictionaries(st.text(max_size=8), maybe(numbers), max_size=3))
bucket = maybe(st.tuples(numbers, numbers, numbers, numbers, classes, classes).map(list))
bounce_data = st.fixed_dictionaries({}, optional={
    "source": maybe(st.text(max_size=10)),
    "position": maybe(position),
    "cursor": maybe(st.one_of(st.none(), st.text(max_size=10))),
    "buckets": maybe(st.dictionaries(st.one_of(numbers.map(str), st.text(max_size=6)), bucket,
                                     max_size=4)),
    "texts": maybe(st.dictionaries(st.text(max_size=8), pair(st.text(max_size=8), numbers),
                                   max_size=3)),
    "unreadable": maybe(st.tuples(numbers, numbers, st.text(max_size=8), numbers).map(list)),
    "updated": maybe(numbers),
})
counters_data = st.fixed_dictionaries({}, optional={
    "source": maybe(st.text(max_size=10)),
    "position": maybe(position),
    "totals": maybe(st.dictionaries(st.sampled_from(["sent", "bounced", "expired",
                                                     "deferred", "x"]), maybe(numbers))),
    "updated": maybe(numbers),
})
spool_entry = maybe(st.fixed_dictionaries({}, optional={
    k: maybe(v) for k, v in {"host": st.text(max_size=8), "key": st.text(max_size=8),
                             "value": st.text(max_size=8), "clock": numbers,
                             "ns": numbers}.items()}))
spool_data = st.fixed_dictionaries({}, optional={"values": maybe(st.lists(spool_entry,
                                                                          max_size=6))})


#: the shared listing: a real one (with the exporter's histograms) with up to three of its
#: parts replaced, the histogram rows' counts and sums most often
LISTING_FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / \
    "mixed-malformed-dup-postfix311.jsonl"
LISTING_PQ = "/nonexistent/postqueue"   # the test's stand-in in the file (a listing is reused
                                        # only by runs of the postqueue that took it)
LISTING_BASE = L.to_data(parse_json_lines(LISTING_FIXTURE.read_bytes().splitlines(), NOW - 10,
                                          L.HISTOGRAMS), LISTING_PQ, None)
LISTING_PATHS = [(k,) for k in LISTING_BASE] + [
    ("queues", "deferred"), ("queues", "deferred", 0), ("queues", "active", 3),
    ("histograms", "age_bounds"), ("histograms", "size_bounds", 2), ("histograms", "queues"),
    *[("histograms", "queues", q, i) for q in ("deferred", "hold") for i in range(3)],
    *[("histograms", "queues", q, i, j) for q in ("deferred", "active") for i in (0, 1)
      for j in (0, 3, -1)]]


def _replace(changes: list[tuple[tuple[Any, ...], Any]]) -> dict[str, Any]:
    data = copy.deepcopy(LISTING_BASE)
    for path, value in changes:
        node: Any = data
        try:
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = value
        except (KeyError, IndexError, TypeError):     # an earlier change replaced the parent
            pass
    return data


listing_data = weighted(
    st.just([]),                               # as stored: reused
    st.lists(st.tuples(st.sampled_from(LISTING_PATHS), weighted(numbers, json_any, share=4)),
             min_size=1, max_size=3), share=1).map(_replace)


def files(kind: str, data: st.SearchStrategy) -> st.SearchStrategy:
    """Whole files: the right frame around generated data, other frames, JSON, raw bytes."""
    def frame(d: Any, version: Any = 1, k: str = kind) -> bytes:
        return json.dumps({"kind": k, "version": version, "data": d}).encode()
    framed = data.map(frame)
    return weighted(framed,
                     st.builds(frame, json_any, st.one_of(st.just(1), json_any),
                               st.one_of(st.just(kind), st.text(max_size=6))),
                     json_any.map(lambda d: json.dumps(d).encode()),
                     st.binary(max_size=200),
                     st.integers(1, 20_000).map(lambda n: b'{"kind":"%s","version":1,"data":'
                                                % kind.encode() + b"[" * n + b"]" * n + b"}"))


# -- the runs ----------------------------------------------------------------------------------

FIGURES: Counter[str] = Counter()


@pytest.fixture(scope="module")
def base() -> Iterator[Path]:
    """State dirs on tmpfs where there is one (100,000 fsyncs on a disk take minutes)."""
    root = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    path = Path(tempfile.mkdtemp(prefix="pqm-fuzz-", dir=root))
    yield path
    shutil.rmtree(path, ignore_errors=True)
    for line in sorted(FIGURES):
        print(f"fuzz {line}: {FIGURES[line]}")


def _fresh(base: Path, name: str) -> Path:
    d = base / name
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(mode=0o700)
    return d


def _twice(loader: str, run: Callable[[], Any]) -> Any:
    """A run uses the file or says StateError once; the run after it always works."""
    FIGURES[f"{loader} files"] += 1
    try:
        out = run()
        FIGURES[f"{loader} accepted"] += 1
        return out
    except StateError as exc:
        assert "\n" not in str(exc) and "the next run starts afresh" in str(exc), exc
        FIGURES[f"{loader} moved aside"] += 1
        if os.environ.get("FUZZ_WHY"):
            FIGURES[f"{loader} why " + str(exc).split("(", 1)[1][:30]] += 1
    return run()


@SETTINGS
@given(content=files("growth", growth_data))
def test_growth_loader(base: Path, content: bytes) -> None:
    d = _fresh(base, "growth")
    (d / "growth-default.json").write_bytes(content)
    g = _twice("growth", lambda: G.measure_growth(str(d), None, 7, NOW, lambda: NOW, 900.0))
    assert g.rate is None or isinstance(g.rate, float)


@SETTINGS
@given(content=files("bounce-rate", bounce_data))
def test_bounce_loader(base: Path, content: bytes) -> None:
    d = _fresh(base, "bounce")
    log = d / "mail.log"
    log.write_bytes(b"Nov 29 15:39:00 vm postfix/smtp[1]: A1: to=<u@d.example>, relay=x, "
                    b"delay=1, delays=1/0/0/0, dsn=2.0.0, status=sent (ok)\n")
    state = d / "st"
    state.mkdir(mode=0o700)
    (state / D.state_name(str(log), None, 3600)).write_bytes(content)
    moved_before = FIGURES["bounce moved aside"]
    try:
        st_ = _twice("bounce", lambda: D.measure_deliveries(str(log), False, None, 3600,
                                                             str(state), NOW, 5))
    except D.MonitorError as exc:     # e.g. a state recording unreadable lines: said again
        assert "\n" not in str(exc)
        FIGURES["bounce refused"] += 1
        return
    counts = (st_.sent, st_.bounced, st_.expired, st_.deferred)
    assert all(isinstance(n, int) and n >= 0 for n in counts), counts
    assert 0 <= st_.bounce_rate <= 100 and 0 <= st_.deferral_rate <= 100, st_
    if FIGURES["bounce moved aside"] > moved_before:
        # afresh: nothing of the file moved aside survives; the log holds one status line
        assert sum(counts) <= 1, counts


@SETTINGS
@given(content=files("delivery-counters", counters_data))
def test_counters_loader(base: Path, content: bytes) -> None:
    d = _fresh(base, "counters")
    log = d / "mail.log"
    log.write_bytes(b"")
    state = d / "st"
    state.mkdir(mode=0o700)
    (state / C.state_name(str(log), None)).write_bytes(content)
    try:
        totals = _twice("counters", lambda: C.read_totals(str(log), False, None, str(state),
                                                          NOW, Deadline(5)))
    except C.MonitorError as exc:      # totals the exporter refuses: one line, then afresh
        assert "\n" not in str(exc)
        FIGURES["counters refused"] += 1
        return
    assert all(v >= 0 for v in totals.values())


@SETTINGS
@given(content=files(sender.SPOOL_KIND, spool_data))
def test_spool_loader(base: Path, content: bytes) -> None:
    from postfix_queue_monitor.state import StateDir

    d = _fresh(base, "spool")
    nodes = [CLOSED]
    (d / sender.spool_name(nodes)).write_bytes(content)
    FIGURES["spool files"] += 1
    out = sender.send_to(nodes, [sender.Value.at("h", "k", "v", NOW)], StateDir(str(d)),
                         timeout=0.5, deadline=Deadline(5))
    # never an exception: unreachable, this run's value spooled with the good old ones
    assert out.unreachable is not None and out.spooled >= 1
    FIGURES["spool bad entries dropped"] += out.bad_spooled
    FIGURES["spool moved aside"] += out.spool_error is not None


@SETTINGS
@given(content=files(L.KIND, listing_data))
def test_listing_loader(base: Path, content: bytes) -> None:
    """Whatever the stored listing holds, the exporter's run either reuses it (then its
    histograms count exactly each queue's messages) or moves it aside and lists afresh."""
    d = _fresh(base, "listing")
    pq = base / "postqueue"
    if not pq.exists():
        pq.write_text(f"#!/bin/sh\ncat {LISTING_FIXTURE}\n")
        pq.chmod(0o755)
    (d / L.file_name(None)).write_bytes(content.replace(json.dumps(LISTING_PQ).encode(),
                                                        json.dumps(str(pq)).encode()))
    FIGURES["listing files"] += 1
    snap = L.get_listing(str(pq), None, Deadline(5), NOW, state_dir=str(d),
                         max_age=60, clock=lambda: NOW, histograms=True)
    FIGURES["listing reused" if snap.reused_age is not None else "listing listed afresh"] += 1
    FIGURES["listing moved aside"] += any(".corrupt-" in f.name for f in d.iterdir())
    for q in QUEUES:
        stats = snap.queues[q]
        assert isinstance(stats, HistogramStats)
        assert sum(stats.ages) == sum(stats.sizes) == stats.messages >= 0
    again = L.get_listing(str(pq), None, Deadline(5), NOW + 1, state_dir=str(d), max_age=60,
                          clock=lambda: NOW + 1, histograms=True)
    assert again.reused_age is not None            # the next run reuses what this one left
