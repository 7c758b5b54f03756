"""The longest line any reader takes in: 64 KiB. Longer lines are skipped and counted.

No Postfix log line or journal entry of interest comes near it (syslog daemons cut lines at
8 KiB by default, journald stream lines at 48 KiB); without a bound, a log that ends in a crash's
NUL hole, a runaway line or ``--log-file /dev/zero`` was read into memory whole (24 GB before
the kernel killed the check). A skipped line is counted, and its head (at most HEAD bytes) is
kept for whoever wants to say what it was. See docs/reference.md, "Limits".
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import IO

MAX_LINE = 64 * 1024
HEAD = 4096
READ = 64 * 1024


def bounded_lines(stream: IO[bytes], on_long: Callable[[bytes], None],
                  limit: int = MAX_LINE) -> Iterator[bytes]:
    """The lines of ``stream`` (each with its newline; the last may lack it), except those
    longer than ``limit`` bytes: ``on_long(head)`` is called for each of these instead.
    Memory stays within ``limit`` + one read, whatever the stream holds."""
    read = getattr(stream, "read1", stream.read)
    rest = b""
    head = b""                 # the head of a line being skipped
    skipping = False
    while True:
        chunk = read(READ)
        if not chunk:
            break
        start = 0
        while True:
            nl = chunk.find(b"\n", start)
            if nl < 0:
                piece = chunk[start:]
                if skipping:
                    pass
                elif len(rest) + len(piece) > limit:
                    head, rest, skipping = (rest + piece)[:HEAD], b"", True
                else:
                    rest += piece
                break
            piece = chunk[start:nl + 1]
            start = nl + 1
            if skipping:
                on_long(head)
                head, skipping = b"", False
            elif len(rest) + len(piece) > limit + 1:
                on_long((rest + piece)[:HEAD])
                rest = b""
            else:
                yield rest + piece
                rest = b""
    if skipping:
        on_long(head)
    elif rest:
        yield rest
