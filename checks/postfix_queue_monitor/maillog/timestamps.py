"""Log timestamps to epoch seconds, whatever style the log writes them in.

A line's (or a line head's) timestamp is read from its start, the style recognised per line
with no configuration: classic syslog (``Nov 29 14:29:02``, day space- or zero-padded, with an
optional fraction as ``journalctl -o short-precise`` writes it), the same with a year before
the month or after the day, RFC 3339 (``T`` or space, fraction and offset optional: rsyslog's
RSYSLOG_FileFormat, ``journalctl -o short-iso[-precise]``, a container's stdout), ``journalctl
-o short-full`` (``Sun 2026-11-29 14:29:02 CET``), ``journalctl -o short-unix`` (epoch
seconds), an RFC 5424 header (``<22>1 `` before an RFC 3339 stamp) and a ``docker compose
logs`` prefix (``postfix-1  | ``). Times without an offset are local time; classic syslog has
no year either: it is the year that puts the line at most a week after ``now``. Month names are
English (syslog's); a stamp not understood is None, which the readers report, never skip.
"""

from __future__ import annotations

import calendar
import re
import time
from typing import Optional

_MONTHS = {m.encode(): i for i, m in enumerate(calendar.month_abbr) if m}

#: One regex for every style; the named groups say which one matched. It only has to find the
#: stamp at the start: what follows (host, level word, program) is the caller's business.
STAMP = re.compile(
    rb"(?:[^\s|]+ +\| )?"                             # docker compose logs: "postfix-1  | "
    rb"(?:<\d{1,3}>\d{1,2} )?"                        # RFC 5424: "<PRI>VERSION "
    rb"(?:"
    # RFC 3339 / ISO 8601: 2026-11-29T14:29:02[.123456][Z|+01:00|+0100]
    rb"(?P<iso>\d{4}-\d\d-\d\d[T ]\d\d:\d\d):(?P<isec>\d\d)(?P<ifr>\.\d{1,9})?"
    rb"(?P<off>[Zz]|[+-]\d\d:?\d\d)?"
    # journalctl -o short-full: Sun 2026-11-29 14:29:02 CET
    rb"|[A-Z][a-z]{2} (?P<full>\d{4}-\d\d-\d\d \d\d:\d\d):(?P<fsec>\d\d)(?P<ffr>\.\d{1,9})?"
    rb" (?P<zone>[A-Za-z+-][A-Za-z0-9+-]{0,9})"
    # classic syslog, optionally with a year before or after: [2026 ]Nov 29[ 2026] 14:29:02[.f]
    rb"|(?:(?P<y1>\d{4}) )?(?P<mon>[A-Z][a-z]{2}) {1,2}(?P<day>\d{1,2}) (?:(?P<y2>\d{4}) )?"
    rb"(?P<hm>\d\d:\d\d):(?P<csec>\d\d)(?P<cfr>\.\d{1,9})?"
    # journalctl -o short-unix: 1764426542.123456
    rb"|(?P<unix>\d{9,11})(?P<ufr>\.\d{1,9})?"
    rb")(?=[ \t]|$)")

#: How a line in one of STAMP's styles starts, checked only up to the hour (each further regex
#: step costs the feeder's whole-block pass a few per cent): the feeder takes a line that starts
#: like this as readable; any other line naming the program is parsed, and a stamp STAMP does
#: not read is reported. Styles STAMP reads that are missing here are only slower.
_M = rb"(?:" + b"|".join(_MONTHS) + rb")"
READABLE_START = (
    _M + rb" {1,2}\d{1,2} \d\d:"                            # classic (day " 1", "01", "1")
    rb"|\d{4}-\d\d-\d\d[T ]\d\d:"                          # RFC 3339, short-iso, docker
    rb"|" + _M + rb" {1,2}\d{1,2} \d{4} \d\d:"               # year after the day
    rb"|\d{4} " + _M + rb" {1,2}\d{1,2} \d\d:"               # year first
    rb"|\d{10}[. ]"                                         # short-unix
    rb"|<\d{1,3}>\d{1,2} \d{4}-\d\d-\d\d[T ]\d\d:"           # RFC 5424
    rb"|[A-Z][a-z]{2} \d{4}-\d\d-\d\d \d\d:"                # short-full
    rb"|[\w.-]+ +\| (?:\d{4}-\d\d-\d\d[T ]\d\d:"               # docker compose logs, of
    rb"|" + _M + rb" {1,2}\d{1,2} \d\d:)")                 # ISO or classic lines

_MISSING = -1.0


class Clock:
    """Turns log timestamps into epoch seconds, relative to ``now``. The work is done once per
    minute of log time (cached); a line costs one regex match and a dict lookup."""

    def __init__(self, now: float):
        self.now = now
        self._year = time.localtime(now).tm_year
        self._cache: dict[bytes, Optional[float]] = {}
        # minute_of's fast path: the byte layout of the last stamp read (end of its minute,
        # span of its offset) and the minutes already seen in that layout, keyed by those bytes
        self._layout = (0, 0, 0)
        self._minutes: dict[bytes, int] = {}

    def parse(self, text: bytes) -> Optional[float]:
        """Epoch seconds of the timestamp at the start of ``text`` (a line, a line's head, or
        the bare timestamp), or None when it is not a timestamp this reads."""
        m = STAMP.match(text.lstrip(b"\0") if text[:1] == b"\0" else text)
        if m is None:
            return None
        base, sec, frac = self._minute_base(m)
        if base is None:
            return None
        return base + int(sec) + (float(frac) if frac else 0.0)

    def minute_of(self, text: bytes) -> Optional[int]:
        """The start of the minute of the timestamp at the start of ``text`` (buckets need no
        more), or None.

        The fast path: a log's lines share one layout, so the bytes up to the minute (and the
        offset's) are a key to the minute, found without a regex. A key is only stored from a
        stamp the regex read in that very layout, so a line of another style misses (its bytes
        at those places differ) and goes the regex's way."""
        end, o0, o1 = self._layout
        mi = self._minutes.get(text[:end] + text[o0:o1])
        if mi is not None:
            return mi
        if text[:1] == b"\0":
            text = text.lstrip(b"\0")         # a syslog's NUL padding after a crash
        if text[10:11] in (b".", b" ") and text[:10].isdigit():   # short-unix, no regex
            return int(text[:10]) // 60 * 60
        m = STAMP.match(text)
        if m is None:
            return None
        base, sec, frac = self._minute_base(m)
        if base is None:
            return None
        if m["unix"] is not None:
            return int((base + int(sec)) // 60 * 60)
        mi = int(base)                 # a whole minute: the seconds cannot cross it
        layout = (m.start("csec" if m["hm"] else "isec" if m["iso"] else "fsec") - 1,
                  *(m.span("off") if m["off"] else m.span("zone") if m["full"] else (0, 0)))
        if layout != self._layout:
            self._layout = layout
            self._minutes = {}
        end, o0, o1 = layout
        self._minutes[text[:end] + text[o0:o1]] = mi
        return mi

    def _minute_base(self, m: re.Match[bytes]) -> tuple[Optional[float], bytes, Optional[bytes]]:
        """(epoch of the stamp's minute, its seconds, its fraction); cached per minute."""
        if m["hm"] is not None:
            key = m.group(0)[:m.start("csec") - m.start()]
            sec, frac = m["csec"], m["cfr"]
        elif m["iso"] is not None:
            key = m["iso"] + (m["off"] or b"")
            sec, frac = m["isec"], m["ifr"]
        elif m["full"] is not None:
            key = m["full"] + b" " + m["zone"]
            sec, frac = m["fsec"], m["ffr"]
        else:
            return 0.0, m["unix"], m["ufr"]
        base = self._cache.get(key, _MISSING)
        if base == _MISSING:
            base = self._cache[key] = self._compute(m)
        return base, sec, frac

    def _compute(self, m: re.Match[bytes]) -> Optional[float]:
        try:
            if m["iso"] is not None:
                return _iso_minute(m["iso"], m["off"])
            if m["full"] is not None:
                return _full_minute(m["full"], m["zone"])
            return self._classic_minute(m)
        except (OverflowError, ValueError):
            return None

    def _classic_minute(self, m: re.Match[bytes]) -> Optional[float]:
        mon = _MONTHS.get(m["mon"])
        if mon is None:                     # not an English month name
            return None
        day = int(m["day"])
        hh, mm = int(m["hm"][:2]), int(m["hm"][3:])
        given = m["y1"] or m["y2"]
        if given is not None:
            return _local(int(given), mon, day, hh, mm)
        t = 0.0
        for year in (self._year, self._year - 1):
            t = _local(year, mon, day, hh, mm)
            if t <= self.now + 7 * 86400:
                return t
        return t


def _local(year: int, mon: int, day: int, hh: int, mm: int, isdst: int = -1) -> float:
    if not (1 <= day <= 31 and hh < 24 and mm < 60):
        raise ValueError("not a time")
    return time.mktime((year, mon, day, hh, mm, 0, 0, 0, isdst))


def _iso_minute(iso: bytes, off: Optional[bytes]) -> float:
    y, mo, d, hh, mi = int(iso[:4]), int(iso[5:7]), int(iso[8:10]), int(iso[11:13]), \
        int(iso[14:16])
    if off is None:                          # no offset: local time
        return _local(y, mo, d, hh, mi)
    if not (1 <= mo <= 12 and 1 <= d <= 31 and hh < 24 and mi < 60):
        raise ValueError("not a time")
    base = float(calendar.timegm((y, mo, d, hh, mi, 0, 0, 0, 0)))
    if off not in (b"Z", b"z"):
        sign = -1 if off[:1] == b"-" else 1
        digits = off[1:].replace(b":", b"")
        base -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    return base


def _full_minute(full: bytes, zone: bytes) -> float:
    """``journalctl -o short-full`` prints local time with the zone's abbreviation: UTC/GMT are
    read as such, the local zone's standard or summer name picks that side of a DST change, any
    other name is read as local time (journalctl prints the reading machine's zone)."""
    y, mo, d, hh, mi = int(full[:4]), int(full[5:7]), int(full[8:10]), int(full[11:13]), \
        int(full[14:16])
    name = zone.decode("ascii")
    iso = full[:10] + b"T" + full[11:]
    if name in ("UTC", "GMT", "UCT", "Z"):
        return _iso_minute(iso, b"Z")
    if re.fullmatch(r"[+-]\d\d(?:\d\d)?", name):   # zones named by their offset ("+04")
        return _iso_minute(iso, zone if len(zone) == 5 else zone + b"00")
    isdst = 0 if name == time.tzname[0] else 1 if name == time.tzname[1] else -1
    return _local(y, mo, d, hh, mi, isdst)


def minute(ts: float) -> int:
    """The start of the minute of an epoch time (the buckets' key)."""
    return int(ts // 60 * 60)
