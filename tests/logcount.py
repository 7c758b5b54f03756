#!/usr/bin/env python3
"""An independent count of Postfix delivery outcomes in a mail log, to check the parser against.

Written apart from ``postfix_queue_monitor.maillog`` on purpose: it imports nothing from the
project and shares none of its regexes. It is grep-like: a line counts when a Postfix program
tag (``postfix…/sub[pid]:`` as syslog writes it, or ``postfix… PID MSGID SD`` as RFC 5424 does)
is followed by a queue ID and a recipient status (``to=<…>, … status=sent|bounced|deferred``)
or a message expiry (``from=<…>, status=expired|force-expired``). Timestamps are not read at
all, so a whole file is counted; the window is the caller's business.

    python tests/logcount.py FILE...      # prints sent bounced deferred expired per file
"""

from __future__ import annotations

import gzip
import re
import sys
from collections import Counter
from collections.abc import Iterable

# the program tag, syslog style: " postfix/smtp[123]: " (pid optional)
_SYSLOG_TAG = r"(?:^|\s)postfix[\w./-]*(?:\[\d+\])?: "
# the program tag, RFC 5424 style: "<22>1 TS HOST APP-NAME PROCID MSGID SD " then the message
_RFC5424_TAG = (r"^<\d{1,3}>1 \S+ \S+ postfix[\w./-]* \S+ \S+ "
                r"(?:-|(?:\[(?:[^\]\\]|\\.)*\])+) +")
_QUEUE_ID = r"[0-9A-Za-z]+: "
_RECIPIENT = re.compile(r"(?:" + _SYSLOG_TAG + "|" + _RFC5424_TAG + ")" + _QUEUE_ID
                        + r"to=<.*, status=(sent|bounced|deferred)\b")
_EXPIRY = re.compile(r"(?:" + _SYSLOG_TAG + "|" + _RFC5424_TAG + ")" + _QUEUE_ID
                     + r"from=<[^>]*>, status=(?:force-)?expired\b")

KINDS = ("sent", "bounced", "deferred", "expired")


def count_lines(lines: Iterable[str]) -> dict[str, int]:
    """sent/bounced/deferred/expired over the lines (str, newline or not)."""
    c: Counter[str] = Counter()
    for line in lines:
        if "status=" not in line:
            continue
        m = _RECIPIENT.search(line)
        if m:
            c[m.group(1)] += 1
        elif _EXPIRY.search(line):
            c["expired"] += 1
    return {k: c[k] for k in KINDS}


def count_file(path: str) -> dict[str, int]:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as fh:  # type: ignore[operator]
        return count_lines(fh)


if __name__ == "__main__":
    for p in sys.argv[1:]:
        r = count_file(p)
        print(p, *(f"{k}={r[k]}" for k in KINDS))
