"""A ``postqueue -j`` listing whose deferred recipients each carry a distinct, long delay reason:
the worst case for the reason memo (every text new, none repeated).

Each text is a real reply shape (a multi-line SMTP reply, joined by Postfix) whose cause is in
its first line, padded with continuation lines that carry a per-text reference (not an address
or a host name, so normalising does not merge them), and ends in Postfix's
``(in reply to … command)`` note. The class each text must land in is in ``CLASSES`` order.

Usage: python benchmarks/gen_long_reasons.py OUT [--lines 60000] [--chars 4096]
"""

from __future__ import annotations

import argparse
import json
import time

#: (first reply line, continuation code, command, the class the text means)
SHAPES = (
    ("550-5.1.1 The email account that you tried to reach does not exist.", "550-5.1.1",
     "RCPT TO", "recipient_unknown"),
    ("554-5.7.1 Service unavailable; Client host [203.0.113.5] blocked using "
     "zen.spamhaus.org", "554-5.7.1", "MAIL FROM", "policy"),
    ("450-4.2.0 Recipient address rejected: Greylisted, please try again in 300 seconds",
     "450-4.2.0", "RCPT TO", "greylisted"),
    ("452-4.2.2 The email account that you tried to reach is over quota.", "452-4.2.2",
     "RCPT TO", "mailbox_full"),
    ("421-4.7.28 Our system has detected an unusual rate of unsolicited mail.", "421-4.7.28",
     "end of DATA", "rate_limited"),
)


def text(i: int, chars: int) -> tuple[str, str]:
    """The i-th text (about ``chars`` characters) and its class."""
    first, cont, command, cls = SHAPES[i % len(SHAPES)]
    head = f"host mx{i % 50}.example{i % 300}.net[192.0.2.{i % 250 + 1}] said: {first} "
    tail = f"{cont[:3]} {cont[4:]} Reference R{i:08d}. (in reply to {command} command)"
    body = ""
    n = 0
    while True:
        line = f"{cont} Reference R{i:08d} line {n}: see the postmaster pages. "
        if len(head) + len(body) + len(line) + len(tail) > chars:
            return head + body + tail, cls
        body += line
        n += 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--lines", type=int, default=60_000)
    ap.add_argument("--chars", type=int, default=4096)
    args = ap.parse_args()
    now = int(time.time())
    with open(args.out, "w", encoding="utf-8") as f:
        for i in range(args.lines):
            reason, _ = text(i, args.chars)
            f.write(json.dumps({
                "queue_name": "deferred", "queue_id": f"{i:010X}", "arrival_time": now - i,
                "message_size": 2048, "forced_expire": False, "sender": "s@example.org",
                "recipients": [{"address": f"r{i}@example{i % 300}.net",
                                "delay_reason": reason}]}, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
