"""``make bench``: our checks against what a mail administrator would run instead, on the same
data in the same run, alternating, medians with min–max; writes benchmarks/RESULTS.md.

    python benchmarks/run.py [--sizes 1000,10000,100000] [--runs 5] [--quick]
                             [--only stream,empty,queues,storm] [--out benchmarks/RESULTS.md]

Needs root (a private Postfix instance: tools/postfix_lab.py; qshape reads the spool) and
Debian's postfix, monitoring-plugins-standard (check_mailq), pflogsumm. Generated data lives in
benchmarks/data/ (gitignored); the spools are removed at the end, the 1M-line stream is kept
for the next run. --quick: 1k and 10k messages, 3 runs, a 200k-line stream.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = HERE / "data"
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(HERE))

import gen_stream  # noqa: E402
from harness import RSS_FILE, Series, alternate, load_note  # noqa: E402

# The checks are timed as users run them: installed (not editable) into a venv made from
# /usr/bin/python3. The development .venv's editable install adds a meta-path finder that cost
# ~8 ms of every start-up.
VENV = DATA / "venv" / "bin"
PY = str(VENV / "python")


def install_venv() -> None:
    """(Re)install this checkout into DATA/venv, as ``pip install .`` would for a user."""
    pip = [str(VENV / "pip"), "install", "-q", "--disable-pip-version-check"]
    if not (VENV / "python").exists():
        subprocess.run(["/usr/bin/python3", "-m", "venv", str(VENV.parent)], check=True)
        subprocess.run([*pip, str(ROOT)], check=True, capture_output=True)
    subprocess.run([*pip, "--force-reinstall", "--no-deps", str(ROOT)], check=True,
                   capture_output=True)


if __name__ == "__main__" and "--render" not in sys.argv:
    DATA.mkdir(exist_ok=True)
    install_venv()
CHECK_MAILQ = "/usr/lib/nagios/plugins/check_mailq"
QSHAPE = "/usr/sbin/qshape"
SMTPD_PORT = 25301     # the lab's smtpd (smtp-source injects there)
RELAY_PORT = 25302     # nothing listens: every delivery defers ("Connection refused")
MB = 1024.0
HAVE_ORJSON = subprocess.run([PY, "-c", "import orjson"], capture_output=True).returncode == 0


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# -- formatting --------------------------------------------------------------------------------

def fmt_s(s: Series, attr: str = "wall") -> str:
    unit_ms = s.med(attr) < 1.0
    k, u = (1000.0, " ms") if unit_ms else (1.0, " s")
    dec = 1 if unit_ms else 2
    return (f"{s.med(attr) * k:.{dec}f}{u} ({s.lo(attr) * k:.{dec}f}–"
            f"{s.hi(attr) * k:.{dec}f})")


def fmt_rss(s: Series) -> str:
    return f"{s.med('rss_kb') / MB:.1f} MB ({s.lo('rss_kb') / MB:.1f}–{s.hi('rss_kb') / MB:.1f})"


def table(series: list[Series], base: dict[str, str], daemon: bool = False) -> list[str]:
    """One row per tool; ratio columns against the named baselines (label → series name)."""
    by = {s.name: s for s in series}
    head = ["tool", "wall median (min–max)", "CPU user+sys median (min–max)"]
    if daemon:
        head.append("showq etc. CPU")
    head.append("peak RSS")
    head += [f"wall ÷ {lbl}" for lbl in base] + [f"CPU ÷ {lbl}" for lbl in base]
    if daemon:
        head += [f"CPU with showq ÷ {lbl}" for lbl in base]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in series:
        cells = [f"`{s.name}`", fmt_s(s, "wall"), fmt_s(s, "cpu")]
        if daemon:
            cells.append(f"{s.med('daemon_cpu'):.2f} s")
        cells.append(fmt_rss(s))
        for attr in ("wall", "cpu"):
            for name in base.values():
                b = by[name].med(attr)
                cells.append(f"{s.med(attr) / b:.2f}×" if b > 0 else "–")
        if daemon:
            for name in base.values():
                b = by[name].med("cpu") + by[name].med("daemon_cpu")
                mine = s.med("cpu") + s.med("daemon_cpu")
                cells.append(f"{mine / b:.2f}×" if b > 0 else "–")
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def commands(series: list[Series]) -> list[str]:
    out = ["", "<details><summary>commands and first output lines</summary>", ""]
    for s in series:
        argv = " ".join(a if " " not in a else repr(a) for a in s.argv)
        argv = argv.replace(str(ROOT) + "/", "")
        out.append(f"- `{s.name}`: `{argv}` → `{s.first_line}` (exit {s.runs[-1].rc})")
    out += ["", "</details>", ""]
    return out


def ratio(a: Series, b: Series, attr: str = "wall") -> float:
    return a.med(attr) / b.med(attr)


def verdict(value: float, goal: float, fmt: str = "{:.2f}×", cpu: float | None = None) -> str:
    shown = fmt.format(value)
    also = f" (CPU {cpu:.2f}×)" if cpu is not None else ""
    if value <= goal:
        return f"{shown}{also} — met"
    return f"{shown}{also} — **missed by {100 * (value / goal - 1):.1f}%**"


# -- sections ----------------------------------------------------------------------------------

def stream_section(args, results: dict) -> list[str]:
    lines_n = 200_000 if args.quick else 1_000_000
    path = DATA / f"stream-{lines_n // 1000}k.jsonl"
    meta_path = path.with_suffix(".meta.json")
    if not path.exists() or not meta_path.exists():
        log(f"generating {path.name}")
        with open(path, "w", encoding="utf-8") as f:
            counts = gen_stream.generate(f, lines_n)
        meta_path.write_text(json.dumps(counts))
    counts = json.loads(meta_path.read_text())
    size_mb = path.stat().st_size / 1e6
    fake = DATA / "fake-postqueue"
    fake.write_text(f"#!/bin/sh\nexec cat {path}\n")
    fake.chmod(0o755)
    series = [
        Series("json.loads loop", [PY, str(HERE / "stream_tools.py"), "naive", str(path)]),
        Series("parse_json_lines + cause", [PY, str(HERE / "stream_tools.py"), "ours", str(path)]),
        Series("check_postfix_queue -w 10 -c 20", [str(VENV / "check_postfix_queue"),
                                                   "--postqueue", str(fake), "-w", "10", "-c",
                                                   "20", "-t", "900"]),
    ]
    if HAVE_ORJSON:
        series.insert(1, Series("orjson.loads loop", [PY, str(HERE / "stream_tools.py"),
                                                      "naive-orjson", str(path)]))
        series.insert(3, Series("parse_json_lines + cause, orjson hidden",
                                [PY, str(HERE / "stream_tools.py"), "ours", str(path)],
                                env=no_orjson_env()))
    for label, env in args.proposal_envs:
        series.append(Series(f"{label}: parse + cause", [PY, str(HERE / "stream_tools.py"),
                                                         "ours", str(path)], env=env))
    log(f"stream: {lines_n} lines, {size_mb:.0f} MB, {args.runs} runs")
    alternate(series, args.runs, progress=log)
    by = {s.name: s for s in series}
    naive = by["json.loads loop"]
    ours = by["parse_json_lines + cause"]
    check = by["check_postfix_queue -w 10 -c 20"]
    results["stream"] = {s.name: [r.__dict__ for r in s.runs] for s in series}
    prof = subprocess.run([PY, str(HERE / "stream_tools.py"), "profile", str(path),
                           str(min(lines_n, 200_000))], capture_output=True, text=True).stdout
    prof_lines = [ln for ln in prof.splitlines() if re.match(r"\s+\d", ln)][:12]
    rate = lines_n / ours.med("wall")
    out = [
        f"## {lines_n:,}-line synthetic `postqueue -j` stream", "",
        f"`benchmarks/gen_stream.py` (seed 7): {size_mb:.0f} MB, {counts['deferred']:,} deferred "
        f"/ {counts['active']:,} active / {counts['incoming']:,} incoming / {counts['hold']:,} "
        f"hold / {counts['maildrop']:,} maildrop messages, {counts['recipients']:,} recipients, "
        f"{counts['domains']:,} destination domains with reasons, reason texts of 14 kinds "
        "written per domain (MX name and IP in them, some with the recipient's address). "
        "The check runs with its thresholds crossed, so the cause summary is computed; "
        "`--postqueue` is a script that `cat`s the file.", "",
        *table(series, {"json.loads loop": naive.name}),
        *commands(series),
        f"Parse rate: ours {rate:,.0f} lines/s, naive loop "
        f"{lines_n / naive.med('wall'):,.0f} lines/s; whole check "
        f"{lines_n / check.med('wall'):,.0f} lines/s.", "",
        f"Goal ≤ 1.0× the naive loop (wall): "
        f"{verdict(ratio(ours, naive), 1.0, cpu=ratio(ours, naive, 'cpu'))}.", "",
        *[f"Without orjson (as the Debian package runs), goal ≤ 1.0× the naive loop (wall): "
          f"{verdict(ratio(sc, naive), 1.0, cpu=ratio(sc, naive, 'cpu'))}.\n"
          for sc in series if sc.name == "parse_json_lines + cause, orjson hidden"],
        "cProfile of `parse_json_lines` + cause on the first "
        f"{min(lines_n, 200_000):,} lines (top by own time):", "", "```",
        *prof_lines, "```", "",
    ]
    for sc in series:
        if sc.env is not None:
            out.append(f"- {sc.name}: {ratio(sc, naive):.2f}× the naive loop "
                       f"(CPU {ratio(sc, naive, 'cpu'):.2f}×), {ratio(sc, ours):.2f}× the "
                       f"parser with orjson, {lines_n / sc.med('wall'):,.0f} lines/s.")
    out.append("")
    out += few_texts_table(args)
    results["stream_summary"] = {"lines": lines_n, "ours_vs_naive": ratio(ours, naive),
                                 "ours_rss_mb": ours.med("rss_kb") / MB,
                                 "check_rss_mb": check.med("rss_kb") / MB}
    return out


def no_orjson_env() -> dict[str, str]:
    """An environment in which ``import orjson`` fails: queue.py's stdlib fallback."""
    block = DATA / "no-orjson"
    block.mkdir(exist_ok=True)
    (block / "orjson.py").write_text('raise ImportError("hidden by the benchmark")\n')
    return dict(os.environ, PYTHONPATH=str(block))


def few_texts_table(args) -> list[str]:
    """The same shape with the diversity of an ordinary outage: 200 domains, no per-address
    texts (a few hundred distinct reasons), 200k lines."""
    path = DATA / "stream-200k-few-texts.jsonl"
    meta_path = path.with_suffix(".meta.json")
    if not path.exists() or not meta_path.exists():
        log(f"generating {path.name}")
        with open(path, "w", encoding="utf-8") as f:
            counts = gen_stream.generate(f, 200_000, domains=200, address_texts=False)
        meta_path.write_text(json.dumps(counts))
    counts = json.loads(meta_path.read_text())
    tool = str(HERE / "stream_tools.py")
    series = [Series("json.loads loop", [PY, tool, "naive", str(path)]),
              Series("parse_json_lines + cause", [PY, tool, "ours", str(path)])]
    if HAVE_ORJSON:
        series.insert(1, Series("orjson.loads loop", [PY, tool, "naive-orjson", str(path)]))
        series.append(Series("parse_json_lines + cause, orjson hidden", [PY, tool, "ours",
                                                                          str(path)],
                             env=no_orjson_env()))
    for label, env in args.proposal_envs:
        series.append(Series(f"{label}: parse + cause", [PY, tool, "ours", str(path)], env=env))
    log(f"stream, few texts: {args.runs} runs")
    alternate(series, args.runs, progress=log)
    naive, ours = series[0], series[2 if HAVE_ORJSON else 1]
    hidden = [sc for sc in series if sc.name == "parse_json_lines + cause, orjson hidden"]
    return [
        "### The same stream with few distinct reasons", "",
        f"200,000 lines, {counts['domains']} destination domains, no texts that carry an "
        "address: the diversity of an ordinary outage (a few hundred distinct reasons).", "",
        *table(series, {"json.loads loop": naive.name}),
        "", f"Goal ≤ 1.0× the naive loop: "
        f"{verdict(ratio(ours, naive), 1.0, cpu=ratio(ours, naive, 'cpu'))}.", "",
        *[f"Without orjson (as the Debian package runs), goal ≤ 1.0× the naive loop: "
          f"{verdict(ratio(h, naive), 1.0, cpu=ratio(h, naive, 'cpu'))}." for h in hidden],
        "",
    ]


def proposal_envs(args) -> list[tuple[str, dict[str, str]]]:
    """Each benchmarks/proposals/*.diff (if any) applied to a scratch copy of the package;
    skipped when it no longer applies (merged already)."""
    if not args.proposals:
        return []
    out = []
    for diff in sorted((HERE / "proposals").glob("*.diff")):
        dest = DATA / "scratch" / diff.stem
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(ROOT / "checks", dest / "checks")
        r = subprocess.run(["patch", "-s", "-p1", "-d", str(dest), "-i", str(diff)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            log(f"proposal {diff.name} does not apply (merged already?): skipped")
            continue
        out.append((f"proposal {diff.stem}", dict(os.environ, PYTHONPATH=str(dest / "checks"))))
    return out


def baseline_envs(args) -> list[tuple[str, dict[str, str]]]:
    """With ``--baseline REV``: the package as it was at REV (``git archive``, a scratch copy
    put first on PYTHONPATH), with orjson and with it hidden, so that the stream's parser
    before a change is timed in the same run, alternating with the one after it."""
    if not args.baseline:
        return []
    dest = DATA / "scratch" / "baseline"
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    tree = subprocess.run(["git", "-C", str(ROOT), "archive", args.baseline, "checks"],
                          check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=tree, check=True)
    rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", args.baseline],
                         check=True, capture_output=True, text=True).stdout.strip()
    hidden = no_orjson_env()["PYTHONPATH"]
    return [(f"before ({rev})", dict(os.environ, PYTHONPATH=str(dest / "checks"))),
            (f"before ({rev}), orjson hidden",
             dict(os.environ, PYTHONPATH=f"{hidden}:{dest / 'checks'}"))]


def queue_tools(lab, args) -> list[Series]:
    cdir = str(lab.config_dir)
    w, c = "10", "20"
    extra = []
    if HAVE_ORJSON:
        extra.append(Series("check_postfix_queue, orjson hidden",
                            [str(VENV / "check_postfix_queue"), "--config-dir", cdir, "-w", w,
                             "-c", c, "-t", "300"], env=no_orjson_env()))
    for label, env in args.proposal_envs:
        extra.append(Series(f"check_postfix_queue, {label}",
                            [str(VENV / "check_postfix_queue"), "--config-dir", cdir, "-w", w,
                             "-c", c, "-t", "300"], env=env))
    return [
        Series("postqueue -j >/dev/null", ["/usr/sbin/postqueue", "-c", cdir, "-j"]),
        Series("check_postfix_queue", [str(VENV / "check_postfix_queue"), "--config-dir", cdir,
                                       "-w", w, "-c", c, "-t", "300"]),
        Series("check_postfix_oldest_message", [str(VENV / "check_postfix_oldest_message"),
                                                "--config-dir", cdir, "-w", "1", "-c", "2",
                                                "-t", "300"]),
        Series("check_mailq -M postfix", [CHECK_MAILQ, "-M", "postfix", "-d", cdir, "-w", w,
                                          "-c", c, "-t", "300"]),
        Series("qshape (all queues)", [QSHAPE, "-c", cdir, "hold", "incoming", "active",
                                       "deferred"]),
        *extra,
    ]


def empty_section(lab, args, results: dict) -> list[str]:
    runs = max(args.runs, 5 if args.quick else 15)
    cdir = str(lab.config_dir)
    series = [
        Series("check_postfix_queue", [str(VENV / "check_postfix_queue"), "--config-dir", cdir,
                                       "-w", "10", "-c", "20"]),
        Series("check_mailq -M postfix", [CHECK_MAILQ, "-M", "postfix", "-d", cdir, "-w", "10",
                                          "-c", "20"]),
        Series("postqueue -j >/dev/null", ["/usr/sbin/postqueue", "-c", cdir, "-j"]),
        Series("check_postfix_oldest_message", [str(VENV / "check_postfix_oldest_message"),
                                                "--config-dir", cdir, "-w", "1h", "-c", "1d"]),
        Series("/usr/bin/python3 -c pass", ["/usr/bin/python3", "-c", "pass"]),
        Series("python -c 'import nagiosplugin'", [PY, "-c", "import nagiosplugin"]),
    ]
    for label, env in args.proposal_envs:
        series.append(Series(f"check_postfix_queue, {label}",
                             [*series[0].argv], env=env))
    log(f"empty queue: {runs} runs")
    alternate(series, runs, master_pid=lab.master_pid(), warmup=2, progress=log)
    results["empty"] = {s.name: [r.__dict__ for r in s.runs] for s in series}
    ours, mailq = series[0], series[1]
    extra = [f"- {s.name}: {ratio(s, mailq):.2f}× check_mailq (CPU "
             f"{ratio(s, mailq, 'cpu'):.2f}×)." for s in series[6:]]
    imp = subprocess.run([PY, "-X", "importtime", "-c",
                          "import postfix_queue_monitor.plugins.queue_size"],
                         capture_output=True, text=True).stderr
    rows = []
    for ln in imp.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", ln)
        if m:
            rows.append((int(m[2]), int(m[1]), len(m[3]), m[4]))
    top = [r for r in rows if r[2] <= 3]
    total = sum(r[0] for r in rows if r[2] == 1)
    top.sort(reverse=True)
    out = [
        "## Empty queue: start-up", "",
        f"The lab instance with nothing queued; {runs} alternating runs after 2 warm-up rounds.",
        "",
        *table(series, {"check_mailq": mailq.name, "postqueue": series[2].name},
               daemon=True),
        *commands(series),
        f"Goal ≤ 2× check_mailq (wall): "
        f"{verdict(ratio(ours, mailq), 2.0, cpu=ratio(ours, mailq, 'cpu'))}.", "", *extra, "",
        f"`python -X importtime -c 'import postfix_queue_monitor.plugins.queue_size'`: "
        f"{total / 1000:.1f} ms of imports in all; the biggest (cumulative µs, top-level and "
        "their direct children):", "", "| cumulative µs | self µs | module |", "|---|---|---|",
        *[f"| {c} | {s} | `{'  ' * (d // 2 - 1) + name}` |" for c, s, d, name in top[:14]], "",
    ]
    results["empty_summary"] = {"ours_vs_mailq": ratio(ours, mailq),
                                "import_ms": total / 1000}
    return out


def inject(lab, total_before: int, target: int, domain_base: int) -> int:
    """Adds messages up to ``target`` spread over 50 domains; returns the next domain index."""
    want = target - total_before
    ndom = max(1, min(50, want // 20))
    per, extra = divmod(want, ndom)
    for i in range(ndom):
        n = per + (1 if i < extra else 0)
        if n:
            lab.smtp_source(n, to=f"user@d{domain_base + i}.example", sessions=20)
    return domain_base + ndom


def queues_section(lab, sizes: list[int], args, results: dict, out: list[str],
                   flush) -> None:
    total, dom = 0, 0
    for size in sizes:
        t0 = time.monotonic()
        log(f"injecting {size - total} messages (queue → {size})")
        dom = inject(lab, total, size, dom)
        counts = lab.wait_settled(expect_total=size, timeout=1800)
        total = sum(counts.values())
        took = time.monotonic() - t0
        log(f"queue settled: {counts} in {took:.0f} s")
        series = queue_tools(lab, args)
        alternate(series, args.runs, master_pid=lab.master_pid(), progress=log)
        results.setdefault("queues", {})[str(size)] = {
            "spool": counts, "series": {s.name: [r.__dict__ for r in s.runs] for s in series}}
        pq, ours, oldest, mailq, qs = series[:5]
        out += [
            f"## Real queue: {size:,} messages", "",
            f"Lab instance, spool {counts} (all deferred: the relay port refuses connections), "
            f"{dom} destination domains, injected with `smtp-source` (+settling) in {took:.0f} s. "
            f"{args.runs} alternating runs after a warm-up round; thresholds crossed "
            "(`-w 10 -c 20`; oldest `-w 1 -c 2` s) so the cause summary is computed.", "",
            *table(series, {"postqueue": pq.name, "check_mailq": mailq.name}, daemon=True),
            *commands(series),
            "Goals: check_postfix_queue ≤ 1.15× postqueue: "
            f"{verdict(ratio(ours, pq), 1.15, cpu=ratio(ours, pq, 'cpu'))}; ≤ 1.0× check_mailq: "
            f"{verdict(ratio(ours, mailq), 1.0, cpu=ratio(ours, mailq, 'cpu'))}; RSS ≤ 80 MB: "
            f"{verdict(ours.med('rss_kb') / MB, 80, '{:.1f} MB')}. "
            f"check_postfix_oldest_message: {ratio(oldest, pq):.2f}× postqueue, "
            f"{ratio(oldest, mailq):.2f}× check_mailq.", "",
        ]
        for sc in series[5:]:
            out += [f"{sc.name}: {ratio(sc, pq):.2f}× postqueue, {ratio(sc, mailq):.2f}× "
                    f"check_mailq, {sc.med('rss_kb') / MB:.1f} MB.", ""]
        results.setdefault("queue_summary", {})[str(size)] = {
            "ours_vs_postqueue": ratio(ours, pq), "ours_vs_mailq": ratio(ours, mailq),
            "oldest_vs_postqueue": ratio(oldest, pq), "oldest_vs_mailq": ratio(oldest, mailq),
            "ours_rss_mb": ours.med("rss_kb") / MB, "mailq_rss_mb": mailq.med("rss_kb") / MB,
            "qshape_vs_ours": ratio(qs, ours)}
        flush()


def log_section(args, results: dict) -> list[str]:
    """Our own side-by-side on the bounce issue's generated log (its generator, ≥ 1 GB): the
    bounce check's first, incremental and full-log runs against pflogsumm and grep -c,
    alternating (3 runs: pflogsumm alone takes about a minute per run)."""
    sys.path.insert(0, str(HERE))
    import bench_maillog as bm
    src = DATA / "mail-1100mb.log"
    if not src.exists():
        log(f"generating {src.name}")
        bm.generate(src, 1100, time.time())
    work = DATA / "work-bench.log"
    shutil.copyfile(src, work)
    bm.append(work, 64 * 1024, time.time(), 1)      # the log ends now: the window is its end
    states = DATA / "log-states"
    shutil.rmtree(states, ignore_errors=True)
    states.mkdir()
    check = str(VENV / "check_postfix_bounce_rate")
    base = ["--log-file", str(work), "-t", "900", "-w", "5", "-c", "15"]
    inc_state = states / "incremental"
    subprocess.run([check, *base, "--state-dir", str(inc_state), "--window", "1h"],
                   capture_output=True)
    seed = [100]

    def fresh(name: str):
        def prepare() -> None:
            shutil.rmtree(states / name, ignore_errors=True)
        return prepare

    def grow() -> None:
        seed[0] += 1
        bm.append(work, 1024 * 1024, time.time(), seed[0])

    series = [
        Series("check_postfix_bounce_rate, first run --window 1h",
               [check, *base, "--state-dir", str(states / "first"), "--window", "1h"],
               prepare=fresh("first")),
        Series("check_postfix_bounce_rate, incremental (1 MB appended)",
               [check, *base, "--state-dir", str(inc_state), "--window", "1h"], prepare=grow),
        Series("check_postfix_bounce_rate, whole log (--window 30d, fresh state)",
               [check, *base, "--state-dir", str(states / "full"), "--window", "30d"],
               prepare=fresh("full")),
        Series("grep -c status=bounced (whole log)", ["grep", "-c", "status=bounced", str(work)],
               pipe_stdout=True),
        Series("pflogsumm (whole log)", ["/usr/sbin/pflogsumm", str(work)]),
    ]
    size_mb = work.stat().st_size / 1e6
    runs = 3
    log(f"mail log: {size_mb:.0f} MB, {runs} runs")
    try:
        alternate(series, runs, warmup=0, progress=log)
    finally:
        work.unlink(missing_ok=True)
        shutil.rmtree(states, ignore_errors=True)
    results["log"] = {s.name: [r.__dict__ for r in s.runs] for s in series}
    first, inc, full, grep, pfl = series
    peak = max(first.med("rss_kb"), inc.med("rss_kb"), full.med("rss_kb")) / MB
    return [
        f"### Side by side on the same {size_mb:,.0f} MB log (this page's harness)", "",
        f"The log `benchmarks/bench_maillog.py` generates, copied and ended at the time of the "
        f"run; {runs} alternating runs, no warm-up (pflogsumm alone takes about a minute per "
        "run); the incremental run appends 1 MB before each run. `grep -c` counts bounce lines "
        "in the whole file (no window: what an administrator types); pflogsumm summarises the "
        "whole file.", "",
        *table(series, {"grep -c": grep.name, "pflogsumm": pfl.name}),
        *commands(series),
        f"Whole-log throughput: {size_mb / full.med('wall'):.0f} MB/s against pflogsumm's "
        f"{size_mb / pfl.med('wall'):.0f} MB/s ({pfl.med('wall') / full.med('wall'):.1f}×) and "
        f"`grep -c`'s {size_mb / grep.med('wall'):.0f} MB/s. The bounce issue's goals: first run "
        f"≤ 2 s: {verdict(first.med('wall'), 2.0, '{:.2f} s')}; incremental ≤ 0.3 s: "
        f"{verdict(inc.med('wall'), 0.3, '{:.2f} s')}; ≥ 5× pflogsumm: "
        f"{pfl.med('wall') / full.med('wall'):.1f}× — "
        f"{'met' if pfl.med('wall') / full.med('wall') >= 5 else '**missed**'}; "
        f"RSS ≤ 50 MB: {verdict(peak, 50, '{:.1f} MB')}.",
        "",
    ]


def run_maillog() -> None:
    """The bounce-rate issue's own log benchmark, when it has landed: its output kept for the
    page (it generates and times its ≥ 1 GB log itself)."""
    bench = HERE / "bench_maillog.py"
    if not bench.exists() or not (VENV / "check_postfix_bounce_rate").exists():
        return
    log("running benchmarks/bench_maillog.py")
    r = subprocess.run([PY, str(bench)], capture_output=True, text=True)
    (DATA / "maillog-results.md").write_text(
        f"`python benchmarks/bench_maillog.py` (exit {r.returncode}), "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {load_note()}:\n\n"
        "```\n" + (r.stdout + r.stderr[-2000:]).strip() + "\n```\n")


def maillog_section() -> list[str]:
    res = HERE / "data" / "maillog-results.md"
    bench = HERE / "bench_maillog.py"
    side = HERE / "data" / "maillog-side-by-side.md"
    if bench.exists() and res.exists():
        return ["## Mail log: check_postfix_bounce_rate against pflogsumm and grep -c", "",
                "### The bounce-rate issue's benchmark (one run of each)", "",
                res.read_text(), "", *([side.read_text(), ""] if side.exists() else [])]
    return ["## Mail log: check_postfix_bounce_rate against pflogsumm and grep -c", "",
            "**Pending.** The bounce-rate check and its log benchmark "
            "(`benchmarks/bench_maillog.py`, ≥ 1 GB generated log, first and incremental runs "
            "against `pflogsumm` and `grep -c`) come with the bounce-rate issue and had not "
            "landed on main when these figures were taken.", ""]


def _med(runs: list[dict], attr: str) -> float:
    return statistics.median(r[attr] for r in runs)


def goals_summary(results: dict, page: str) -> list[str]:
    """'Goals at a glance', from results.json (and the few-texts verdict already on the page)."""
    rows = ["## Goals at a glance", "",
            "Medians of this run; wall time with CPU in brackets; details and the reasons for "
            "each miss in the tables and the notes below.", "",
            "| goal | measured | verdict |", "|---|---|---|"]

    def row(goal: str, runs_a: list[dict], runs_b: list[dict], limit: float) -> None:
        w = _med(runs_a, "wall") / _med(runs_b, "wall")
        c = _med(runs_a, "cpu") / _med(runs_b, "cpu")
        ok = "met" if w <= limit else f"**missed by {100 * (w / limit - 1):.0f}%**"
        rows.append(f"| {goal} | {w:.2f}× ({c:.2f}×) | {ok} |")

    for size, q in sorted(results.get("queues", {}).items(), key=lambda kv: int(kv[0])):
        ser = q["series"]
        ours, pq, mq = ser["check_postfix_queue"], ser["postqueue -j >/dev/null"], \
            ser["check_mailq -M postfix"]
        n = f"{int(size):,}"
        row(f"{n} messages: check_postfix_queue ≤ 1.15× `postqueue -j`", ours, pq, 1.15)
        row(f"{n} messages: check_postfix_queue ≤ 1.0× check_mailq", ours, mq, 1.0)
        old = ser["check_postfix_oldest_message"]
        row(f"{n} messages: check_postfix_oldest_message ≤ 1.15× `postqueue -j`", old, pq, 1.15)
        rss = _med(ours, "rss_kb") / MB
        rows.append(f"| {n} messages: peak RSS ≤ 80 MB | {rss:.1f} MB (check_mailq "
                    f"{_med(mq, 'rss_kb') / MB:.1f} MB) | {'met' if rss <= 80 else '**missed**'} |")
    st = results.get("stream")
    if st:
        n = results.get("stream_summary", {}).get("lines", 1_000_000)
        name = "1M" if n == 1_000_000 else f"{n // 1000}k"
        row(f"{name}-line stream: parse + cause ≤ 1.0× a naive `json.loads` loop",
            st["parse_json_lines + cause"], st["json.loads loop"], 1.0)
        if "parse_json_lines + cause, orjson hidden" in st:
            row(f"{name}-line stream, without orjson: parse + cause ≤ 1.0× the naive loop",
                st["parse_json_lines + cause, orjson hidden"], st["json.loads loop"], 1.0)
        rss = _med(st["check_postfix_queue -w 10 -c 20"], "rss_kb") / MB
        rows.append(f"| {name}-line stream: peak RSS ≤ 80 MB | {rss:.1f} MB | "
                    f"{'met' if rss <= 80 else '**missed**'} |")
    m = re.search(r"### The same stream with few distinct reasons.*?Goal ≤ 1\.0× the naive loop: "
                  r"([^\n]*)", page, re.S)
    if m:
        rows.append(f"| 200k-line stream, few distinct reasons: ≤ 1.0× the naive loop | "
                    f"{m[1].split(' — ')[0]} | {m[1].split(' — ')[-1].rstrip('.')} |")
    m = re.search(r"### The same stream with few distinct reasons.*?Without orjson \(as the "
                  r"Debian package runs\), goal ≤ 1\.0× the naive loop: ([^\n]*)", page, re.S)
    if m:
        rows.append(f"| 200k-line stream, few distinct reasons, without orjson: ≤ 1.0× the "
                    f"naive loop | {m[1].split(' — ')[0]} | "
                    f"{m[1].split(' — ')[-1].rstrip('.')} |")
    m = re.search(r"Goal: with sharing ≤ 1\.3× one listing's showq CPU: \*\*([\d.]+×), (\w+)\*\* "
                  r"\(without sharing ([\d.]+×)\)", page)
    if m:
        rows.append(f"| 100,000 messages, six pollers with `--listing-max-age`: showq CPU ≤ 1.3× "
                    f"one listing | {m[1]} (without sharing {m[3]}) | "
                    f"{'met' if m[2] == 'met' else '**missed**'} |")
    em = results.get("empty")
    if em:
        row("empty queue: check_postfix_queue ≤ 2× check_mailq", em["check_postfix_queue"],
            em["check_mailq -M postfix"], 2.0)
    rows += log_goal_rows(page)
    rows.append("")
    return rows


def log_goal_rows(page: str) -> list[str]:
    """The bounce issue's goals as goal rows, from the side-by-side verdict on the page."""
    rows: list[str] = []
    m = re.search(r"The bounce issue's goals: ([^\n]*)", page)
    if m:
        for part in m[1].rstrip(".").split("; "):
            goal, _, rest = part.partition(": ")
            measured, _, ok = rest.partition(" — ")
            if not ok:
                ratio_m = re.search(r"pflogsumm's [\d.]+ MB/s \(([\d.]+×)\)", page)
                measured, ok = (ratio_m[1] if ratio_m else "–"), measured
            rows.append(f"| mail log, 1.1 GB: {goal} | {measured} | {ok} |")
    else:
        rows.append("| log goals (bounce-rate issue) | see the mail log section | – |")
    return rows


def with_goals(page: str, results: dict) -> str:
    """The page with its 'Goals at a glance' section (re)placed after 'Machine and load'."""
    start = page.find("\n## Goals at a glance")
    if start >= 0:
        end = page.find("\n## ", start + 5)
        page = page[:start] + page[end:]
    anchor = page.find("\n## ", page.find("## Machine and load") + 5)
    if anchor < 0:
        return page
    return page[:anchor] + "\n" + "\n".join(goals_summary(results, page)) + page[anchor:]


def closing() -> list[str]:
    """The log section (the bounce issue's) and the hand-written analysis, NOTES.md."""
    notes = HERE / "NOTES.md"
    return maillog_section() + (["", notes.read_text()] if notes.exists() else [])


def environment() -> list[str]:
    pf = subprocess.run(["/usr/sbin/postconf", "-h", "mail_version"], capture_output=True,
                        text=True).stdout.strip()
    others = subprocess.run(["ps", "-eo", "pcpu,comm", "--sort=-pcpu"], capture_output=True,
                            text=True).stdout.splitlines()[1:6]
    return [
        f"- {platform.platform()}, {os.cpu_count()} CPUs; Python "
        f"{platform.python_version()} (`/usr/bin/python3` venv); Postfix {pf}; "
        "monitoring-plugins 2.3.3 `check_mailq`; qshape from Postfix.",
        f"- {load_note()} at the start; busiest processes then: "
        + ", ".join(f"{x.split()[1]} {x.split()[0]}%" for x in others if len(x.split()) >= 2),
    ]


# -- main --------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="benchmarks → benchmarks/RESULTS.md")
    p.add_argument("--sizes", default=None, help="queue sizes (default 1000,10000,100000)")
    p.add_argument("--runs", type=int, default=None, help="runs per tool (default 5; quick 3)")
    p.add_argument("--quick", action="store_true", help="1k/10k, 3 runs, 200k-line stream")
    p.add_argument("--only", default="stream,empty,queues,storm,maillog",
                   help="sections: stream, empty, queues, storm (bench_storm.py: six pollers "
                        "sharing a listing, a 1M-message queue under -t), maillog (the bounce "
                        "issue's bench_maillog.py, then our side by side), logside (only the "
                        "latter)")
    p.add_argument("--no-proposals", dest="proposals", action="store_false",
                   help="skip timing benchmarks/proposals/*.diff (if any) on scratch copies")
    p.add_argument("--baseline", metavar="REV", default=None,
                   help="also time the stream's parser as it was at this git revision (with "
                        "and without orjson), alternating with the current one")
    p.add_argument("--render", action="store_true",
                   help="only re-render RESULTS.md's closing sections (log, notes)")
    p.add_argument("--out", default=str(HERE / "RESULTS.md"))
    args = p.parse_args(argv)
    if args.runs is None:
        args.runs = 3 if args.quick else 5
    sizes = [int(x) for x in (args.sizes or ("1000,10000" if args.quick
                                             else "1000,10000,100000")).split(",")]
    only = set(args.only.split(","))
    if os.geteuid() != 0:
        print("benchmarks need root (a private Postfix instance; qshape reads the spool)")
        return 2
    for prog in (CHECK_MAILQ, QSHAPE, "/usr/sbin/postqueue", "/usr/bin/smtp-source"):
        if not os.path.exists(prog) and not shutil.which(os.path.basename(prog)):
            print(f"{prog} missing: run scripts/install-deps.sh")
            return 2
    DATA.mkdir(exist_ok=True)
    if args.render:
        page = Path(args.out).read_text()
        cut = page.find("\n## Mail log")
        page = page[:cut] if cut >= 0 else page
        page = page + "\n" + "\n".join(closing()) + "\n"
        results_path = DATA / f"{Path(args.out).stem}.json"
        if results_path.exists():      # else the page keeps the goals it has, but the log's
            page = with_goals(page, json.loads(results_path.read_text()))
        else:
            lines = page.split("\n")
            at = [i for i, ln in enumerate(lines)
                  if ln.startswith(("| log goals", "| mail log, 1.1 GB"))]
            if at:
                lines[at[0]:at[-1] + 1] = log_goal_rows(page)
            page = "\n".join(lines)
        Path(args.out).write_text(page)
        return 0
    args.proposal_envs = proposal_envs(args) + baseline_envs(args)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    results: dict = {"started": started}
    head = ["# Benchmarks", "",
            f"Generated by `python benchmarks/run.py {' '.join(argv or sys.argv[1:])}` "
            f"(`make bench`), {started}. Every figure is a median of the runs shown, with "
            "min–max; the tools of a table ran alternately (A B C A B C …) on the same data. "
            "Wall time is what a monitoring system waits for; CPU (user+sys of the tool and "
            "its children, from `wait4`) is less sensitive to the load of other processes; "
            "\"showq etc.\" is the CPU the Postfix daemons spent meanwhile (listing the queue "
            "is mostly showq's work). Peak RSS is the largest process of the tool's tree.", "",
            "## Machine and load", "", *environment(), ""]
    body: list[str] = []
    tail: list[str] = []
    out_path = Path(args.out)

    def flush() -> None:
        page = "\n".join(head + [f"- {load_note()} at the end."] + [""] + body + tail
                         + closing()) + "\n"
        out_path.write_text(with_goals(page, results))
        (DATA / f"{out_path.stem}.json").write_text(json.dumps(results, indent=1))

    if "stream" in only:
        body += stream_section(args, results)
        flush()
    if only & {"empty", "queues"}:
        from postfix_lab import Lab, available
        why = available()
        if why:
            print(why)
            return 2
        lab = Lab("bench", smtpd_port=SMTPD_PORT, relay_port=RELAY_PORT)
        try:
            lab.setup().start()
            if "empty" in only:
                body += empty_section(lab, args, results)
                flush()
            if "queues" in only:
                queues_section(lab, sizes, args, results, body, flush)
        finally:
            log("destroying the lab instance")
            lab.destroy()
    if "storm" in only:
        import bench_storm
        body += bench_storm.storm_section(VENV, 2 if args.quick else 3, log=log)
        flush()
    if "maillog" in only:
        run_maillog()
    if only & {"maillog", "logside"}:
        if (VENV / "check_postfix_bounce_rate").exists() and (HERE / "bench_maillog.py").exists():
            (DATA / "maillog-side-by-side.md").write_text("\n".join(log_section(args, results)))
    flush()
    shutil.rmtree(DATA / "scratch", ignore_errors=True)
    if os.path.exists(RSS_FILE):
        os.unlink(RSS_FILE)
    log(f"wrote {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
