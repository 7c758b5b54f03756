"""Log timestamps to epoch seconds: classic syslog (no year, local time) and RFC 3339."""

from __future__ import annotations

import calendar
import re
import time
from typing import Optional

_MONTHS = {m.encode(): i for i, m in enumerate(calendar.month_abbr) if m}
_CLASSIC = re.compile(rb"([A-Z][a-z]{2}) +(\d{1,2}) (\d\d):(\d\d):(\d\d)")
_RFC3339 = re.compile(rb"(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(\.\d+)?(Z|[+-]\d\d:?\d\d)?")


class Clock:
    """Turns log timestamps into epoch seconds, relative to ``now`` (classic syslog has no year:
    it is the year that puts the line at most a week after ``now``, so Dec lines read in January
    land in the old year). Classic times are local time; results are cached per minute."""

    def __init__(self, now: float):
        self.now = now
        self._year = time.localtime(now).tm_year
        self._cache: dict[bytes, Optional[float]] = {}
        self._minutes: dict[bytes, Optional[int]] = {}

    def parse(self, ts: bytes) -> Optional[float]:
        if ts[:1].isdigit():
            return self._rfc3339(ts)
        key = ts[:-3]                      # "Nov 29 14:29" -> whole minute, cached
        base = self._cache.get(key, -1.0)
        if base == -1.0:
            base = self._cache[key] = self._classic_minute(key)
        if base is None:
            return None
        try:
            return base + int(ts[-2:])
        except ValueError:
            return None

    def minute_of(self, ts: bytes) -> Optional[int]:
        """The start of the minute of a timestamp (buckets need no more), cached per minute."""
        if ts[:1].isdigit():
            if ts.endswith((b"Z", b"z")):
                key = ts[:16] + b"Z"
            elif ts[-3:-2] == b":" and ts[-6:-5] in (b"+", b"-"):
                key = ts[:16] + ts[-6:]
            else:
                t = self.parse(ts)
                return None if t is None else int(t // 60 * 60)
        else:
            key = ts[:-3]
        mi = self._minutes.get(key, -1)
        if mi == -1:
            t = self.parse(ts)
            mi = self._minutes[key] = None if t is None else int(t // 60 * 60)
        return mi

    def _classic_minute(self, key: bytes) -> Optional[float]:
        m = _CLASSIC.fullmatch(key + b":00")
        if not m or m[1] not in _MONTHS:
            return None
        mon, day, hh, mm = _MONTHS[m[1]], int(m[2]), int(m[3]), int(m[4])
        for year in (self._year, self._year - 1):
            try:
                t = time.mktime((year, mon, day, hh, mm, 0, 0, 0, -1))
            except (OverflowError, ValueError):
                return None
            if t <= self.now + 7 * 86400:
                return t
        return t

    def _rfc3339(self, ts: bytes) -> Optional[float]:
        m = _RFC3339.fullmatch(ts)
        if not m:
            return None
        key = ts[:16] + (m[8] or b"")          # the minute and the offset
        base = self._cache.get(key, -1.0)
        if base == -1.0:
            y, mo, d, hh, mi = (int(m[i]) for i in range(1, 6))
            off = m[8]
            try:
                if off is None:        # no offset: local time
                    base = time.mktime((y, mo, d, hh, mi, 0, 0, 0, -1))
                else:
                    base = float(calendar.timegm((y, mo, d, hh, mi, 0, 0, 0, 0)))
                    if off not in (b"Z", b"z"):
                        sign = -1 if off[:1] == b"-" else 1
                        digits = off[1:].replace(b":", b"")
                        base -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
            except (OverflowError, ValueError):
                base = None
            self._cache[key] = base
        if base is None:
            return None
        return base + int(m[6]) + (float(m[7]) if m[7] else 0.0)


def minute(ts: float) -> int:
    """The start of the minute of an epoch time (the buckets' key)."""
    return int(ts // 60 * 60)
