"""The journald reader: journalctl with a stored cursor."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from typing import Optional

from .. import linebound
from ..deadline import MIN_CHILD, Deadline
from ..errors import MonitorError
from ..proc import Child
from .feeder import LineFeeder
from .patterns import LINE, UNMATCHED, WRAPPED, parse_message, program_matcher

_CURSOR = re.compile(rb'"__CURSOR"\s*:\s*"([^"\\]{1,1000})"')
JOURNAL_HINT = ("add the user to group systemd-journal or adm (usermod -aG systemd-journal USER)")


def _journal_error(stderr: str, rc: int) -> Optional[str]:
    low = stderr.lower()
    if ("insufficient permissions" in low or "not seeing messages from other users" in low
            or "permission denied" in low):
        return f"this user may not read the system journal: {JOURNAL_HINT}"
    if "no journal files were found" in low:
        return ("no journal files were found (no systemd-journald here?): pass --log-file "
                "PATH, or set maillog_file in Postfix")
    if rc != 0:
        first = stderr.strip().splitlines()[0] if stderr.strip() else f"exit {rc}"
        return f"journalctl failed: {first}"
    return None


class JournalReader:
    """journalctl with a cursor: the first run asks for the window (``--since @epoch``), later
    runs for what follows the stored cursor, filtered on the SYSLOG_IDENTIFIERs that start with
    the syslog name (journalctl matches exact values, so the identifiers are listed first)."""

    def __init__(self, feeder: LineFeeder, syslog_name: Optional[str], timeout: float,
                 files: Sequence[str] = (), journalctl: str = "journalctl"):
        self.feeder = feeder
        self.is_postfix = program_matcher(syslog_name)
        self.deadline = Deadline(timeout)
        self.base = [journalctl, "--no-pager"] + [f"--file={f}" for f in files]
        self.long_entries = 0
        self.skipped_cursor: Optional[str] = None

    def _long_entry(self, head: bytes) -> None:
        """An entry longer than linebound.MAX_LINE, skipped: counted, and its cursor (JSON
        output names it first) kept, so the next run starts after it."""
        self.long_entries += 1
        m = _CURSOR.search(head)
        if m:
            self.skipped_cursor = m[1].decode("utf-8", "replace")

    def _left(self) -> float:
        return max(MIN_CHILD, self.deadline.remaining())

    def _run(self, argv: list[str]) -> Iterator[bytes]:
        try:
            child = Child(argv, self._left())
        except MonitorError as exc:
            raise MonitorError(f"cannot read the journal: {exc} (install systemd's journalctl, "
                               f"or pass --log-file PATH)") from None
        with child:
            yield from child.lines(on_long=self._long_entry)
            rc, err = child.finish()
        problem = _journal_error(err, rc)
        if problem:
            raise MonitorError(problem)

    def identifiers(self) -> list[str]:
        every = [raw.rstrip(b"\n").decode("utf-8", "surrogateescape")
                 for raw in self._run(self.base + ["-F", "SYSLOG_IDENTIFIER"])]
        self.feeder.identifiers(every)        # is --syslog-name among them, else who is
        return sorted(i for i in every if self.is_postfix(i.encode("utf-8", "surrogateescape")))

    def read(self, cursor: Optional[str], since: float) -> Optional[str]:
        idents = self.identifiers()
        if not idents:
            return cursor
        try:
            return self._read(idents, cursor, since)
        except MonitorError as exc:
            if not cursor or "cursor" not in str(exc):
                raise
        # the stored cursor is unusable (journal rotated away, machine id changed): the window
        tally = self.feeder.tally
        tally.buckets.clear()        # the window is read again: start its counts afresh
        tally.texts.clear()
        tally.notes.append("the stored journal cursor was refused: read the window again")
        return self._read(idents, None, since)

    def _read(self, idents: list[str], cursor: Optional[str], since: float) -> Optional[str]:
        argv = self.base + ["-o", "json", "--output-fields=MESSAGE,SYSLOG_IDENTIFIER"]
        argv += [f"--after-cursor={cursor}"] if cursor else [f"--since=@{int(since)}"]
        argv += [f"SYSLOG_IDENTIFIER={i}" for i in idents]
        tally = self.feeder.tally
        now = self.feeder.clock.now
        for raw in self._run(argv):
            try:
                entry = json.loads(raw)
            except ValueError:
                entry = None
            if not isinstance(entry, dict):
                # journalctl was asked for Postfix entries only: one it did not write as JSON
                # is a Postfix line not understood, never a line skipped in silence
                tally.lines += 1
                tally.unreadable_line(b"journalctl -o json: " + raw, b"status=" in raw, now)
                continue
            cursor = entry.get("__CURSOR", cursor)
            self.skipped_cursor = None         # a later entry's cursor supersedes it
            tally.lines += 1
            msg = entry.get("MESSAGE")
            ident = entry.get("SYSLOG_IDENTIFIER")
            if isinstance(msg, list):          # not UTF-8: journalctl gives the bytes
                msg = bytes(b & 0xFF for b in msg if isinstance(b, int))
            elif isinstance(msg, str):
                msg = msg.encode("utf-8", "surrogateescape")
            else:
                continue                       # an entry without a message says nothing
            if isinstance(ident, list):
                ident = bytes(b & 0xFF for b in ident if isinstance(b, int)).decode(
                    "utf-8", "replace")
            try:
                if not isinstance(ident, str):
                    raise ValueError("no SYSLOG_IDENTIFIER")
                ts = int(entry["__REALTIME_TIMESTAMP"]) / 1e6
            except (KeyError, ValueError, TypeError):
                tally.unreadable_line(b"journal entry without a usable __REALTIME_TIMESTAMP or "
                                      b"SYSLOG_IDENTIFIER: " + msg, b"status=" in msg, now)
                continue
            program = ident.encode("utf-8", "surrogateescape")
            if WRAPPED.match(msg):
                # a container's stdout line (docker's journald log driver, tag "postfix"):
                # the Postfix line inside it, at the journal's time
                inner = LINE.match(msg)
                if inner is not None and inner["p5"] is None and \
                        self.feeder.is_postfix(inner["prog"]):
                    program, msg = inner["prog"], inner["msg"]
            res = parse_message(program, msg, ts)
            if res is None:
                continue
            if res is UNMATCHED:
                tally.unmatched_line(program + b": " + msg)
            else:
                tally.add(res)  # type: ignore[arg-type]
        if self.skipped_cursor:                # the last entries were too long: past them
            cursor = self.skipped_cursor
        if self.long_entries:
            tally.notes.append(f"skipped {self.long_entries} journal entries longer than "
                               f"{linebound.MAX_LINE // 1024} KiB")
        return cursor
