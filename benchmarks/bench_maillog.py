#!/usr/bin/env python3
"""check_postfix_bounce_rate on a big mail log, against pflogsumm on the same file.

Not a timed test: run it by hand (``python benchmarks/bench_maillog.py``). It writes a log of
``--size-mb`` (default 1100 MB) to benchmarks/data/ (gitignored) whose lines are shaped like the
real Postfix 3.7 captures in tests/fixtures (per message: smtpd connect/client, cleanup, qmgr,
one delivery status per recipient, qmgr removed, disconnect; 85% sent, 5% bounced, 10% deferred,
a few expiries), spread over the days before now, and measures with the real console script:

1. first run, ``--window 1h`` (the window is the log's end): wall time, peak RSS;
2. incremental run after 1 MB is appended: wall time, peak RSS;
3. full-log throughput: a fresh state and a window wider than the log, so every line is read;
   and ``pflogsumm`` on the same file in the same run (MB/s both, and the ratio).

Peak RSS is each child's own ``ru_maxrss`` (``os.wait4``).

``--style STYLE`` rewrites the log (and what is appended) into another timestamp style with
tests/logstyles.py (``rfc5424``, ``short-iso``, ``docker``, …; the zone is UTC for the run),
to see what the style costs the same measurements.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHECK = str(Path(sys.executable).parent / "check_postfix_bounce_rate")

REASONS = {
    "sent": ("2.0.0", "250 2.0.0 Ok: queued as {q2}"),
    "bounced": ("5.1.1", "host mx.{dom}[192.0.2.7] said: 550 5.1.1 <{rcpt}>: Recipient address "
                         "rejected: User unknown in virtual mailbox table (in reply to RCPT TO "
                         "command)"),
    "deferred": ("4.4.1", "connect to mx.{dom}[192.0.2.9]:25: Connection timed out"),
}


def _qid(rng: random.Random) -> str:
    return f"{rng.getrandbits(44):011X}"


def message_lines(rng: random.Random, stamp: str, n: int) -> list[str]:
    q, q2 = _qid(rng), _qid(rng)
    dom = f"d{n % 97:02d}.example"
    rcpt = f"user{n}@{dom}"
    pid = 20000 + n % 5000
    st = rng.choices(("sent", "bounced", "deferred"), (85, 5, 10))[0]
    dsn, text = REASONS[st]
    text = text.format(q2=q2, dom=dom, rcpt=rcpt)
    relay = ("none" if st == "deferred" else f"mx.{dom}[192.0.2.7]:25")
    out = [
        f"{stamp} mx1 postfix/smtpd[{pid}]: connect from client.example[198.51.100.{n % 250}]",
        f"{stamp} mx1 postfix/smtpd[{pid}]: {q}: client=client.example[198.51.100.{n % 250}]",
        f"{stamp} mx1 postfix/cleanup[{pid + 1}]: {q}: message-id=<{n}.{q}@src.example>",
        f"{stamp} mx1 postfix/qmgr[1234]: {q}: from=<sender{n % 13}@src.example>, "
        f"size={1000 + n % 9000}, nrcpt=1 (queue active)",
        f"{stamp} mx1 postfix/smtpd[{pid}]: disconnect from client.example[198.51.100.{n % 250}]"
        f" ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5",
        f"{stamp} mx1 postfix/smtp[{pid + 2}]: {q}: to=<{rcpt}>, relay={relay}, delay=0.{n % 9}, "
        f"delays=0.01/0/0.{n % 7}/0.1, dsn={dsn}, status={st} ({text})",
    ]
    if st != "deferred":
        out.append(f"{stamp} mx1 postfix/qmgr[1234]: {q}: removed")
    if n % 997 == 0:
        out.append(f"{stamp} mx1 postfix/qmgr[1234]: {_qid(rng)}: from=<sender@src.example>, "
                   f"status=expired, returned to sender")
    return out


def stamp_of(ts: float) -> str:
    return time.strftime("%b %e %H:%M:%S", time.localtime(ts))


def generate(path: Path, size_mb: int, end: float, seed: int = 7) -> None:
    """A week of mail ending at ``end``: the time advances with the bytes written, so the log's
    last line is at ``end`` whatever the line sizes turn out to be."""
    rng = random.Random(seed)
    target = size_mb * 1024 * 1024
    span = 7 * 86400
    n = 0
    written = 0
    with open(path, "w", encoding="utf-8", buffering=8 * 1024 * 1024) as fh:
        last_sec, stamp = -1, ""
        while written < target:
            sec = int(end - span + span * written / target)
            if sec != last_sec:
                stamp, last_sec = stamp_of(sec), sec
            block = "\n".join(message_lines(rng, stamp, n)) + "\n"
            fh.write(block)
            written += len(block)
            n += 1


def append(path: Path, size: int, ts: float, seed: int) -> None:
    rng = random.Random(seed)
    with open(path, "a", encoding="utf-8") as fh:
        written, n = 0, 10_000_000 + seed
        while written < size:
            block = "\n".join(message_lines(rng, stamp_of(ts), n)) + "\n"
            fh.write(block)
            written += len(block)
            n += 1


def timed(argv: list[str]) -> tuple[float, float, str, int]:
    """Wall seconds, peak RSS (MB) of the child, its stdout, its exit code."""
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - start
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
    return wall, usage.ru_maxrss / 1024, text, p.returncode


def restyle(path: Path, style: str, start: int = 0) -> None:
    """Rewrite ``path`` from byte ``start`` on into ``style`` with tests/logstyles.py (UTC), in
    a child process: a big parent would show in the measured children's peak RSS (Linux counts
    the parent's pages at fork into the child's ``ru_maxrss``)."""
    tail, styled = path.with_suffix(".tail"), path.with_suffix(".styled")
    with open(path, "rb") as src, open(tail, "wb") as dst:
        src.seek(start)
        shutil.copyfileobj(src, dst, 1 << 20)
    with open(tail, "rb") as src, open(styled, "wb") as dst:
        subprocess.run([sys.executable, str(HERE.parent / "tests" / "logstyles.py"), style,
                        str(time.gmtime().tm_year), "UTC"], stdin=src, stdout=dst, check=True)
    with open(path, "r+b") as out, open(styled, "rb") as src:
        out.truncate(start)
        out.seek(start)
        shutil.copyfileobj(src, out, 1 << 20)
    tail.unlink()
    styled.unlink()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=int, default=1100)
    ap.add_argument("--data", default=str(HERE / "data"))
    ap.add_argument("--no-pflogsumm", action="store_true")
    ap.add_argument("--regenerate", action="store_true")
    ap.add_argument("--style", default="classic",
                    help="timestamp style of the log (tests/logstyles.py; default classic)")
    args = ap.parse_args()
    if args.style != "classic":
        os.environ["TZ"] = "UTC"          # generated and restyled in UTC, read in UTC
        time.tzset()

    data = Path(args.data)
    data.mkdir(parents=True, exist_ok=True)
    log = data / f"mail-{args.size_mb}mb.log"
    if args.regenerate or not log.exists():
        t = time.perf_counter()
        generate(log, args.size_mb, time.time())
        print(f"generated {log} ({log.stat().st_size / 1e6:.0f} MB) in "
              f"{time.perf_counter() - t:.0f} s")
    work = data / "work.log"
    shutil.copyfile(log, work)
    # the log ends now: shift nothing, append a minute of "now" so the window is the end
    append(work, 64 * 1024, time.time(), 1)
    if args.style != "classic":
        t = time.perf_counter()
        restyle(work, args.style)
        print(f"rewritten as {args.style} in {time.perf_counter() - t:.0f} s")
    size_mb = work.stat().st_size / 1e6
    state = Path(tempfile.mkdtemp(prefix="bench-state-", dir=data))
    rows = []
    try:
        base = [CHECK, "--log-file", str(work), "--state-dir", str(state), "-t", "600"]
        wall, rss, out, rc = timed(base + ["--window", "1h"])
        rows.append(("first run, --window 1h", wall, rss, out.splitlines()[0]))
        before = work.stat().st_size
        append(work, 1024 * 1024, time.time(), 2)
        if args.style != "classic":
            restyle(work, args.style, before)
        wall, rss, out, rc = timed(base + ["--window", "1h"])
        rows.append(("incremental, 1 MB appended", wall, rss, out.splitlines()[0]))

        full_state = Path(tempfile.mkdtemp(prefix="bench-full-", dir=data))
        wall, rss, out, rc = timed([CHECK, "--log-file", str(work), "--state-dir",
                                    str(full_state), "-t", "600", "--window", "30d", "-v"])
        ours = wall
        rows.append((f"full log ({size_mb:.0f} MB), --window 30d", wall, rss,
                     out.splitlines()[0]))
        shutil.rmtree(full_state)
        print(f"full-log run: {out.splitlines()[1] if len(out.splitlines()) > 1 else ''}")
        theirs = None
        if not args.no_pflogsumm and shutil.which("pflogsumm"):
            wall, rss, out, rc = timed(["pflogsumm", str(work)])
            theirs = wall
            rows.append(("pflogsumm, same file", wall, rss, f"exit {rc}"))
    finally:
        shutil.rmtree(state, ignore_errors=True)
        work.unlink(missing_ok=True)

    print(f"\n{'what':38} {'wall s':>8} {'MB/s':>7} {'peak RSS MB':>12}")
    for what, wall, rss, first in rows:
        rate = f"{size_mb / wall:7.1f}" if "full" in what or "pflogsumm" in what else "       "
        print(f"{what:38} {wall:8.2f} {rate} {rss:12.1f}   {first[:70]}")
    if theirs:
        print(f"\nthroughput: {theirs / ours:.1f}x pflogsumm")
    print("goals: first run <= 2 s, incremental <= 0.3 s, >= 5x pflogsumm, RSS <= 50 MB")


if __name__ == "__main__":
    main()
