"""The longest line any reader takes in: 64 KiB. Longer lines are skipped and counted.

The log file reader (maillog.reader) and every child's output (proc.Child.lines: postqueue,
journalctl) use it.

No Postfix log line or journal entry of interest comes near it (syslog daemons cut lines at
8 KiB by default, journald stream lines at 48 KiB); without a bound, a log that ends in a crash's
NUL hole, a runaway line or ``--log-file /dev/zero`` was read into memory whole (24 GB before
the kernel killed the check). A skipped line is counted, and its head (at most HEAD bytes) is
kept for whoever wants to say what it was. See docs/reference.md, "Limits".
"""

from __future__ import annotations

MAX_LINE = 64 * 1024
HEAD = 4096
