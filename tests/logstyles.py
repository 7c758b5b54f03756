#!/usr/bin/env python3
"""Rewrite a classic syslog mail log into the other timestamp styles a Postfix host writes.

Each line ``Mmm dd hh:mm:ss host tag[pid]: message`` is read as a record (the year and the
zone are given: classic syslog has neither); lines that are not syslog lines are passed through
unchanged. Every record keeps its second; the precise styles get a microsecond part made from
the line number (stable, so the output is reproducible). The styles follow the real programs:

- ``classic``/``classic-zero``: rsyslog's RSYSLOG_TraditionalFileFormat (space-padded day), and
  the zero-padded day ``journalctl -o short`` writes;
- ``rfc3339``: rsyslog's RSYSLOG_FileFormat (``2026-11-29T14:29:02.123456+01:00``);
  ``rfc3339-nofrac`` (what RSYSLOG_FileFormat writes for a message's own, second-resolution
  time, and syslog-ng's ISO stamp); ``rfc3339-utc`` (``…Z``); ``rfc3339-local`` (no offset);
- ``short-iso``, ``short-iso-precise``, ``short-precise``, ``short-full``, ``short-unix``:
  ``journalctl -o MODE`` as systemd 252 prints them (checked against the real journalctl in
  tests/integration/test_log_formats_real.py);
- ``rfc5424``: RSYSLOG_SyslogProtocol23Format as rsyslog writes it by default (APP-NAME is the
  program name up to its first ``/``, so ``postfix``; the message keeps its leading space), and
  ``rfc5424-slash`` with ``parser.permitSlashInProgramName="on"`` (APP-NAME ``postfix/smtp``);
  both checked against rsyslogd 8.2302 captures in tests/fixtures/realworld-logs/rsyslog-8.2302;
- ``year-first`` (``2026 Nov 29 14:29:02 host …``, an rsyslog ``%$YEAR% %TIMESTAMP%``
  template) and ``year-after`` (``Nov 29 2026 14:29:02 host …``);
- ``docker``: a container's stdout as boky/postfix writes it (``2021-01-26T17:47:29.762763+01:00
  INFO    postfix/smtpd[134]: …``: ISO time, no host, a level word padded to 8 columns);
  ``compose``: the same under ``docker compose logs`` (``postfix-1  | …``).

    python tests/logstyles.py STYLE YEAR ZONE < classic.log > styled.log
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Optional
from zoneinfo import ZoneInfo

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_LINE = re.compile(r"(?P<mon>[A-Z][a-z]{2}) (?P<day>[ \d]\d) (?P<h>\d\d):(?P<m>\d\d):(?P<s>\d\d) "
                   r"(?P<host>\S+) (?P<prog>[^\s\[:]+)(?:\[(?P<pid>\d+)\])?: (?P<msg>.*)")


@dataclass(frozen=True)
class Record:
    """One syslog line: when (aware, in the log's zone), where from, and what it said."""
    when: datetime
    host: str
    prog: str
    pid: Optional[str]
    msg: str
    precise: bool = True      # has a sub-second part (False: the time is whole seconds)

    @property
    def epoch(self) -> float:
        return self.when.timestamp()

    @property
    def tag(self) -> str:
        return f"{self.prog}[{self.pid}]" if self.pid else self.prog


def records(lines: Iterable[str], year: int, zone: str, host: Optional[str] = None,
            precise: bool = True) -> Iterator[Record | str]:
    """Records of the classic lines (str lines without their newline); other lines as they are.
    ``host`` replaces the lines' host name when given; ``precise=False`` keeps whole seconds
    (what rsyslog writes for a message's own classic timestamp)."""
    tz = ZoneInfo(zone)
    for i, line in enumerate(lines):
        m = _LINE.fullmatch(line)
        if not m or m["mon"] not in _MONTHS:
            yield line
            continue
        when = datetime(year, _MONTHS.index(m["mon"]) + 1, int(m["day"]), int(m["h"]),
                        int(m["m"]), int(m["s"]), (i * 7919) % 1_000_000 if precise else 0,
                        tzinfo=tz)
        yield Record(when, host or m["host"], m["prog"], m["pid"], m["msg"], precise)


def _classic(w: datetime) -> str:
    return f"{_MONTHS[w.month - 1]} {w.day:2d} {w:%H:%M:%S}"


def _iso(r: Record, frac: bool = True) -> str:
    return r.when.isoformat(timespec="microseconds" if frac and r.precise else "seconds")


def _5424(r: Record, app: str) -> str:
    # RSYSLOG_SyslogProtocol23Format: "<%PRI%>1 %TIMESTAMP:::date-rfc3339% %HOSTNAME%
    # %APP-NAME% %PROCID% %MSGID% %STRUCTURED-DATA% %msg%\n"; %msg% keeps the space that
    # followed the legacy tag's colon; mail.info is PRI 22
    return f"<22>1 {_iso(r)} {r.host} {app} {r.pid or '-'} - -  {r.msg}"


STYLES: dict[str, Callable[[Record], str]] = {
    "classic": lambda r: f"{_classic(r.when)} {r.host} {r.tag}: {r.msg}",
    "classic-zero": lambda r: (f"{_MONTHS[r.when.month - 1]} {r.when:%d %H:%M:%S} {r.host} "
                               f"{r.tag}: {r.msg}"),
    "rfc3339": lambda r: f"{_iso(r)} {r.host} {r.tag}: {r.msg}",
    "rfc3339-nofrac": lambda r: f"{_iso(r, False)} {r.host} {r.tag}: {r.msg}",
    "rfc3339-utc": lambda r: (f"{r.when.astimezone(timezone.utc):%Y-%m-%dT%H:%M:%S.%f}Z "
                              f"{r.host} {r.tag}: {r.msg}"),
    "rfc3339-local": lambda r: f"{r.when:%Y-%m-%dT%H:%M:%S} {r.host} {r.tag}: {r.msg}",
    "short-iso": lambda r: f"{r.when:%Y-%m-%dT%H:%M:%S%z} {r.host} {r.tag}: {r.msg}",
    "short-iso-precise": lambda r: f"{r.when:%Y-%m-%dT%H:%M:%S.%f%z} {r.host} {r.tag}: {r.msg}",
    # journalctl pads the day with a zero ("Nov 01"), rsyslog with a space
    "short-precise": lambda r: (f"{_MONTHS[r.when.month - 1]} {r.when:%d %H:%M:%S.%f} {r.host} "
                                f"{r.tag}: {r.msg}"),
    "short-full": lambda r: (f"{_DAYS[r.when.weekday()]} {r.when:%Y-%m-%d %H:%M:%S %Z} "
                             f"{r.host} {r.tag}: {r.msg}"),
    "short-unix": lambda r: f"{r.epoch:.6f} {r.host} {r.tag}: {r.msg}",
    "rfc5424": lambda r: _5424(r, r.prog.split("/")[0]),
    "rfc5424-slash": lambda r: _5424(r, r.prog),
    "year-first": lambda r: f"{r.when.year} {_classic(r.when)} {r.host} {r.tag}: {r.msg}",
    "year-after": lambda r: (f"{_MONTHS[r.when.month - 1]} {r.when.day:2d} {r.when.year} "
                             f"{r.when:%H:%M:%S} {r.host} {r.tag}: {r.msg}"),
    "docker": lambda r: f"{_iso(r)} INFO    {r.tag}: {r.msg}",
    "compose": lambda r: f"postfix-1  | {_iso(r)} INFO    {r.tag}: {r.msg}",
}


def render(recs: Iterable[Record | str], style: str) -> Iterator[str]:
    """The lines (without newline) of the records in ``style``; non-syslog lines unchanged."""
    fmt = STYLES[style]
    for r in recs:
        yield r if isinstance(r, str) else fmt(r)


if __name__ == "__main__":
    style, year, zone = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    src = (line.rstrip("\n") for line in sys.stdin)
    try:
        sys.stdout.writelines(out + "\n" for out in render(records(src, year, zone), style))
    except BrokenPipeError:            # "| head": the reader has seen enough
        sys.stderr.close()
