"""The mail log: line parsing (a named regex table), the rotation-aware reader, the journald
reader, and the windowed delivery counts behind ``check_postfix_bounce_rate``.

Measure stage only: parsing is pure (bytes in, events out, given ``now``); the readers remember
where they stopped; the counts live in per-minute buckets kept with the read position in ONE
state file, written once after the result is computed, so position and counts always agree.

Definitions (CONTRACT.md): the unit is the recipient. ``sent``/``bounced``/``deferred`` are
delivery status lines (``<QID>: to=<…>, … status=<s> (…)``) from any delivery agent;
``expired`` are qmgr ``status=expired|force-expired`` lines; address-verification probes
(``deliverable``/``undeliverable``) count nowhere.
"""

from __future__ import annotations

import calendar
import gzip
import hashlib
import json
import os
import re
import stat
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Optional

from . import reasons
from .errors import MonitorError
from .proc import Child
from .state import StateDir, instance_key

DEFAULT_LOGS: tuple[str, ...] = ("/var/log/mail.log", "/var/log/maillog", "/var/log/postfix.log")
STATE_KIND = "bounce-rate"
COUNTS: tuple[str, ...] = ("sent", "bounced", "expired", "deferred")
DELIVERY_AGENTS: tuple[str, ...] = ("smtp", "lmtp", "local", "virtual", "pipe", "error", "retry",
                                    "discard")
CHUNK = 1024 * 1024
FP_LEN = 1024            # bytes of a log's head that identify it across renames
MAX_SAMPLES = 5          # unmatched Postfix lines kept for -v

# -- timestamps --------------------------------------------------------------------------------

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


# -- the named regex table -----------------------------------------------------------------------

_TS = rb"(?:[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[^ \n]*)"
#: ``<timestamp> <host> <program>[<pid>]: <message>`` (pid optional)
LINE = re.compile(rb"(?P<ts>" + _TS + rb") +(?P<host>\S+) (?P<prog>[^\s\[:]+)(?:\[\d+\])?: "
                  rb"(?P<msg>[^\r\n]*)")

_QID = rb"[0-9A-Za-z]+"
_STATUS_LINE = (rb"(?P<qid>" + _QID + rb"): to=<.*, status=(?P<status>[a-z-]+)"
                rb"(?: \((?P<text>.*)\))?\s*$")
DELIVERY = re.compile(_STATUS_LINE, re.S)
EXPIRED = re.compile(rb"(?P<qid>" + _QID + rb"): from=<.*>, status=(?P<status>expired|"
                     rb"force-expired)(?:, (?P<text>.*?))?\s*$", re.S)

#: Lines every Postfix program may write, recognised and not counted.
COMMON: dict[str, bytes] = {
    "diagnostic": rb"(?:warning|error|fatal|panic|using backwards-compatible default setting)\b",
    "statistics": rb"statistics: ",
    "noqueue": rb"NOQUEUE: ",
}
#: Per sub-process (the last part of the program name: ``postfix/relay/smtp`` is ``smtp``):
#: name -> regex of the message. ``delivery`` and ``expired`` are counted, the rest recognised.
TABLE_SOURCES: dict[str, dict[str, bytes]] = {
    "delivery_agent": {
        "delivery": _STATUS_LINE,
        "connect": rb"(?:connect to|lost connection with|conversation with|SSL_connect error|"
                   rb"host \S+ (?:said|refused to talk)|Host offered STARTTLS|"
                   rb"(?:Trusted|Untrusted|Anonymous|Verified) TLS connection|"
                   rb"server certificate|certificate verification|enabling PIX)",
        "qid_note": _QID + rb": (?:host \S+ said|lost connection|conversation with|"
                    rb"enabling PIX|sender non-delivery|breaking line)",
    },
    "qmgr": {
        "expired": rb"(?P<qid>" + _QID + rb"): from=<.*>, status=(?:expired|force-expired)",
        "delivery": _STATUS_LINE,
        "active": _QID + rb": from=<.*>, size=\d+, nrcpt=\d+ \(queue active\)",
        "removed": _QID + rb": (?:removed|skipped, still being delivered)",
    },
    "smtpd": {
        "connect": rb"(?:connect from|disconnect from|lost connection after|timeout after|"
                   rb"too many errors after|improper command pipelining|SSL_accept error|"
                   rb"(?:Anonymous|Trusted|Untrusted) TLS connection|reject:|"
                   rb"Anonymous TLS|hangup after|" + _QID + rb": (?:client=|reject:|"
                   rb"filter:|hold:|discard:|redirect:|warning:))",
    },
    "cleanup": {
        "message": _QID + rb": (?:message-id=|resent-message-id=|reject:|warning:|hold:|"
                          rb"discard:|redirect:|filter:|replace:|milter-|info:|prepend:|"
                          rb"header |body |to=<)",
    },
    "pickup": {"pickup": _QID + rb": uid=\d+ from=<"},
    "bounce": {"notice": _QID + rb": (?:sender|postmaster) (?:non-delivery|delivery status|"
                                 rb"delay) notification"},
    "master": {"daemon": rb"(?:daemon started|reload|terminating on signal|master exit|"
                         rb"process .* pid \d+ (?:exit|killed)|daemon ready|"
                         rb"service .* exceeds)"},
    "postfix-script": {"script": rb"(?:starting|stopping|refreshing|the Postfix mail system|"
                                 rb"waiting for|terminating|reload)"},
    "anvil": {"anvil": rb"statistics: "},
    "scache": {"scache": rb"statistics: "},
    "tlsmgr": {"tlsmgr": rb"(?:warning|prng|request to update)"},
    "tlsproxy": {"tlsproxy": rb"(?:CONNECT|DISCONNECT|connect|disconnect)"},
    "postscreen": {"postscreen": rb"(?:CONNECT|PASS|DNSBL|PREGREET|HANGUP|DISCONNECT|"
                                 rb"COMMAND|NOQUEUE|WHITELISTED|ALLOWLISTED|BARE NEWLINE)"},
    "verify": {"verify": rb"(?:cache|warning)"},
    "postlog": {"postlog": rb""},
    "dnsblog": {"dnsblog": rb"addr "},
}
#: The administrative commands' log lines (names as keywords: these are program names in the
#: log; nothing in this package runs those commands).
TABLE_SOURCES.update(dict(
    postsuper={"admin": rb"(?:" + _QID + rb": (?:placed on hold|released from hold|expired|"
                        rb"requeued|removed)|Deleted: |Released from hold: |Placed on hold: |"
                        rb"Requeued: |Expired: |Force-expired: )"},
    postqueue={"admin": rb"(?:fatal|warning)"},
    sendmail={"admin": rb"(?:fatal|warning|" + _QID + rb": )"},
    postdrop={"admin": rb"(?:fatal|warning)"},
))
for _agent in DELIVERY_AGENTS:
    TABLE_SOURCES.setdefault(_agent, TABLE_SOURCES["delivery_agent"])
TABLE: dict[str, tuple[tuple[str, re.Pattern[bytes]], ...]] = {
    sub: tuple((name, re.compile(src, re.S)) for name, src in (*table.items(), *COMMON.items()))
    for sub, table in TABLE_SOURCES.items()
}
#: sub-processes not in the table (renamed master.cf services, new programs): status lines
#: still count wherever they come from, the rest is "unmatched".
FALLBACK = TABLE["delivery_agent"]


#: Message starts every Postfix program's table recognises (the bulk of a busy log), for the
#: scan that looks for unmatched lines inside the regex engine; what it lets through is checked
#: line by line against the sub-process's own table, so this only has to be cheap, not complete.
_KNOWN_QID = (rb"client=|message-id=|from=<|to=<|removed|uid=|placed on hold|"
              rb"sender non-delivery")
_KNOWN_PLAIN = rb"(?:dis)?connect (?:from|to) "


@dataclass(frozen=True)
class Event:
    """One counted thing: a recipient's delivery status or a message's expiry."""
    ts: float
    kind: str           # sent, bounced, deferred, expired, deliverable, undeliverable, other
    text: str           # the reason in parentheses (decoded, undecodable bytes replaced)
    program: str


UNMATCHED = "unmatched"
_TABLE_BY_PROGRAM: dict[bytes, tuple[tuple[str, re.Pattern[bytes]], ...]] = {}


def program_matcher(syslog_name: Optional[str]) -> Callable[[bytes], bool]:
    """Which program names are this Postfix: ``NAME/…`` (renamed services included, other
    instances' ``NAME-out/…`` not), or every name that starts with ``postfix``."""
    if syslog_name:
        prefix = syslog_name.encode("utf-8", "surrogateescape").rstrip(b"/") + b"/"
        return lambda prog: prog.startswith(prefix)
    return lambda prog: prog.startswith(b"postfix")


def parse_message(program: bytes, msg: bytes, ts: float) -> Event | str | None:
    """Dispatch one Postfix message by sub-process through the table.

    Returns an Event for a status or expiry line, None for a recognised line that counts
    nowhere, ``UNMATCHED`` for a Postfix line the table does not know."""
    table = _TABLE_BY_PROGRAM.get(program)
    if table is None:
        sub = program.rpartition(b"/")[2].decode("ascii", "replace")
        table = _TABLE_BY_PROGRAM[program] = TABLE.get(sub, FALLBACK)
    for name, pattern in table:
        m = pattern.match(msg)
        if not m:
            continue
        if name == "delivery":
            kind = m["status"].decode("ascii")
            if kind not in ("sent", "bounced", "deferred", "deliverable", "undeliverable"):
                kind = "other"        # counts nowhere; "expired" is qmgr's per-message line
            text = (m["text"] or b"").decode("utf-8", "replace")
            return Event(ts, kind, text, program.decode("utf-8", "replace"))
        if name == "expired":
            return Event(ts, "expired", "", program.decode("utf-8", "replace"))
        return None
    return UNMATCHED


_ANY_POSTFIX = program_matcher(None)


def parse_line(line: bytes, clock: Clock, is_postfix: Callable[[bytes], bool] = _ANY_POSTFIX
               ) -> Event | str | None:
    """One log line (bytes, any encoding) → Event, None (not ours or counts nowhere), or
    ``UNMATCHED`` (a Postfix line the table does not know)."""
    m = LINE.match(line)
    if not m:
        return None
    prog = m["prog"]
    if not is_postfix(prog):
        return None
    ts = clock.parse(m["ts"])
    if ts is None:
        return UNMATCHED
    return parse_message(prog, m["msg"], ts)


# -- windowed counts ---------------------------------------------------------------------------

def minute(ts: float) -> int:
    return int(ts // 60 * 60)


@dataclass
class Tally:
    """Per-minute buckets: ``{minute: [sent, bounced, expired, deferred, {bounce class: n},
    {deferral class: n}]}``, plus the last reason text per class and this run's parse notes."""
    buckets: dict[int, list[Any]] = field(default_factory=dict)
    texts: dict[str, list[Any]] = field(default_factory=dict)    # "b:class" -> [text, minute]
    since: int = 0                # nothing older than this minute is kept
    lines: int = 0                # lines read this run
    events: int = 0
    unmatched: int = 0
    unmatched_samples: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    _INDEX = {"sent": 0, "bounced": 1, "expired": 2, "deferred": 3}

    def add(self, ev: Event) -> None:
        idx = self._INDEX.get(ev.kind)
        if idx is None:           # probes and unknown statuses count nowhere
            return
        self.count(int(ev.ts // 60 * 60), idx, ev.text)

    def count(self, mi: int, idx: int, text: str) -> None:
        """One recipient (or expired message) in minute ``mi``: idx 0 sent, 1 bounced,
        2 expired, 3 deferred."""
        if mi < self.since:
            return
        b = self.buckets.get(mi)
        if b is None:
            b = self.buckets[mi] = [0, 0, 0, 0, {}, {}]
        b[idx] += 1
        self.events += 1
        if idx in (1, 3):
            cls = reasons.classify(text)
            classes = b[4 if idx == 1 else 5]
            classes[cls] = classes.get(cls, 0) + 1
            key = f"{'b' if idx == 1 else 'd'}:{cls}"
            old = self.texts.get(key)
            if old is None or old[1] <= mi:
                self.texts[key] = [text[:300], mi]

    def unmatched_line(self, line: bytes) -> None:
        self.unmatched += 1
        if len(self.unmatched_samples) < MAX_SAMPLES:
            self.unmatched_samples.append(line.rstrip(b"\r\n")[:200].decode("utf-8", "replace"))

    def prune(self, since: int) -> None:
        self.since = since
        for mi in [m for m in self.buckets if m < since]:
            del self.buckets[mi]
        for key in [k for k, v in self.texts.items() if v[1] < since]:
            del self.texts[key]

    def dump(self) -> dict[str, Any]:
        return {"buckets": {str(k): v for k, v in sorted(self.buckets.items())},
                "texts": self.texts}

    @classmethod
    def load(cls, data: dict[str, Any]) -> Tally:
        t = cls()
        try:
            for k, v in data.get("buckets", {}).items():
                if not (isinstance(v, list) and len(v) == 6):
                    raise ValueError(k)
                t.buckets[int(k)] = [int(v[0]), int(v[1]), int(v[2]), int(v[3]),
                                     dict(v[4]), dict(v[5])]
            t.texts = {str(k): [str(v[0]), int(v[1])]
                       for k, v in data.get("texts", {}).items()}
        except (TypeError, ValueError, IndexError, AttributeError) as exc:
            raise MonitorError(f"bounce-rate state holds malformed counts ({exc}): delete the "
                               f"state file or pass another --state-dir") from None
        return t


_STATUS_INDEX: dict[bytes, int] = {b"sent": 0, b"bounced": 1, b"deferred": 3}


def _has_delivery(program: bytes) -> bool:
    """Whether this program's table counts status lines first (delivery agents, qmgr, any
    renamed or unknown service)."""
    sub = program.rpartition(b"/")[2].decode("ascii", "replace")
    table = TABLE.get(sub, FALLBACK)
    return any(name == "delivery" for name, _ in table[:2])


class LineFeeder:
    """Feeds blocks of complete lines into a Tally: only lines that can matter are parsed in
    Python (those with ``status=`` and Postfix lines the table's union does not recognise);
    the scanning itself runs in the regex engine."""

    def __init__(self, tally: Tally, clock: Clock, syslog_name: Optional[str]):
        self.tally = tally
        self.clock = clock
        self.is_postfix = program_matcher(syslog_name)
        self._delivery_table: dict[bytes, bool] = {}
        if syslog_name:
            prog = re.escape(syslog_name.encode("utf-8", "surrogateescape").rstrip(b"/")) + \
                rb"/[^\s\[:]+"
        else:
            prog = rb"postfix[^\s\[:]*"
        # possessive quantifiers (Python >= 3.11) make the many failing lines fail fast
        q = b"+" if sys.version_info >= (3, 11) else b""
        # The scan starts at the program name, a literal the regex engine searches for fast;
        # lines of other programs are skipped without a match attempt.
        self._scan = re.compile(
            rb" (?P<prog>" + prog + q + rb")(?:\[\d+\])?: (?:"
            # a queue ID: a status line, an expiry, or a message start no table entry knows
            + _QID + q + rb": (?:to=<[^\n]*, status=(?P<st>[a-z-]+)(?: \((?P<tx>[^\n]*)\))?"
            + rb"[ \t\r]*$|from=<(?:[^>\n]|>(?!, ))*>, status=(?:force-)?expired"
            + rb"[^\n]*" + q
            + rb"|(?!" + _KNOWN_QID + rb")[^\n]*" + q + rb")"
            # no queue ID
            + rb"|(?!" + _QID + rb": )(?!" + _KNOWN_PLAIN + rb")[^\n]*" + q + rb")", re.M)

    def feed_line(self, line: bytes) -> None:
        """One line, parsed through the table (the reference path; the journal uses
        parse_message directly)."""
        self.tally.lines += 1
        res = parse_line(line, self.clock, self.is_postfix)
        if res is None:
            return
        if res is UNMATCHED:
            self.tally.unmatched_line(line)
        else:
            self.tally.add(res)  # type: ignore[arg-type]

    def feed_block(self, data: bytes) -> None:
        """A block of whole lines (the last one may lack its newline).

        One pass of the regex engine over the block finds the delivery status lines, the qmgr
        expiries and the Postfix lines the common table entries do not recognise; Python only
        sees those. Lines of other programs never leave the regex engine."""
        tally = self.tally
        tally.lines += data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)
        clock, is_postfix, count = self.clock, self.is_postfix, tally.count
        delivery_table, minute_of = self._delivery_table, clock.minute_of
        rfind = data.rfind
        for m in self._scan.finditer(data):
            start = m.start()
            ls = rfind(b"\n", 0, start) + 1
            head = data[ls:start]                   # "<timestamp> <host>"
            if b": " in head:
                continue                            # " postfix…" inside another line's text
            st = m["st"]
            if st is not None:
                prog = m["prog"]
                ok = delivery_table.get(prog)
                if ok is None:
                    ok = delivery_table[prog] = bool(is_postfix(prog) and _has_delivery(prog))
                if ok:
                    # exactly what parse_line would return, without building an Event
                    mi = minute_of(head.rpartition(b" ")[0].rstrip(b" "))
                    if mi is not None:
                        idx = _STATUS_INDEX.get(st, None)
                        if idx is not None:
                            text = m["tx"]
                            count(mi, idx, text.decode("utf-8", "replace") if text and idx
                                  else "")
                        continue
            line = data[ls:m.end()]
            res = parse_line(line, clock, is_postfix)
            if res is None:
                continue
            if res is UNMATCHED:
                tally.unmatched_line(line)
            else:
                tally.add(res)  # type: ignore[arg-type]


# -- the rotation-aware file reader ------------------------------------------------------------

@dataclass
class Position:
    """Where the last run stopped in a log file: its identity and the offset after the last
    complete line, plus a fingerprint of its first bytes (to recognise it after a rename or a
    compression, and to notice copytruncate)."""
    path: str
    dev: int
    ino: int
    offset: int
    fp: str
    fp_len: int

    def dump(self) -> dict[str, Any]:
        return {"path": self.path, "dev": self.dev, "ino": self.ino, "offset": self.offset,
                "fp": self.fp, "fp_len": self.fp_len}

    @classmethod
    def load(cls, d: dict[str, Any]) -> Position:
        try:
            return cls(str(d["path"]), int(d["dev"]), int(d["ino"]), int(d["offset"]),
                       str(d["fp"]), int(d["fp_len"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise MonitorError(f"bounce-rate state holds a malformed log position ({exc}): "
                               f"delete the state file or pass another --state-dir") from None


def _open_log(path: str) -> BinaryIO:
    try:
        if path.endswith(".gz"):
            return gzip.open(path, "rb")  # type: ignore[return-value]
        return open(path, "rb")  # noqa: SIM115
    except FileNotFoundError:
        raise MonitorError(f"log file {path} does not exist (pass --log-file PATH, or "
                           f"--journal)") from None
    except PermissionError:
        raise MonitorError(f"log file {path} is not readable by this user (uid "
                           f"{os.geteuid()}): add the user to group adm (usermod -aG adm USER) "
                           f"or pass a readable --log-file") from None
    except IsADirectoryError:
        raise MonitorError(f"log file {path} is a directory: pass the log file itself") from None
    except OSError as exc:
        raise MonitorError(f"cannot open log file {path}: {exc.strerror}") from None


def _fingerprint(fh: BinaryIO, length: int) -> str:
    fh.seek(0)
    head = fh.read(length)
    if len(head) < length:
        return ""
    return hashlib.sha256(head).hexdigest()[:32]


def _head_fp(path: str, length: int) -> str:
    try:
        with _open_log(path) as fh:
            return _fingerprint(fh, length)
    except (MonitorError, OSError, EOFError, gzip.BadGzipFile):
        return ""


def rotated_candidates(path: str) -> list[str]:
    """Files a rotation may have made of ``path``: ``path.1``, ``path.1.gz``, ``path.0``,
    ``path-20261129``, ``path-20261129.gz`` …, newest first (by mtime)."""
    directory, base = os.path.split(os.path.abspath(path))
    out = []
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    for name in names:
        if name != base and (name.startswith(base + ".") or name.startswith(base + "-")):
            full = os.path.join(directory, name)
            try:
                st = os.stat(full)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                out.append((st.st_mtime, full))
    out.sort(reverse=True)
    return [p for _, p in out[:20]]


_NUMBERED = re.compile(r"\.(\d+)(?:\.gz)?")
_DATED = re.compile(r"-(\d{8,})(?:\.gz)?")


def rotation_rank(path: str, base: str) -> tuple[str, float]:
    """How new a rotated file is, comparable within one naming scheme: ``.1`` is newer than
    ``.2``, ``-20261130`` newer than ``-20261129``; other names go by mtime."""
    suffix = os.path.basename(path)[len(os.path.basename(base)):]
    m = _NUMBERED.fullmatch(suffix)
    if m:
        return ("numbered", -int(m[1]))
    m = _DATED.fullmatch(suffix)
    if m:
        return ("dated", float(m[1]))
    try:
        return ("mtime", os.stat(path).st_mtime)
    except OSError:
        return ("mtime", 0.0)


class FileReader:
    """Reads new complete lines of a log file into a LineFeeder, across rotations."""

    def __init__(self, path: str, feeder: LineFeeder):
        self.path = path
        self.feeder = feeder

    def _read_from(self, fh: BinaryIO, offset: int, final: bool) -> int:
        """Feed complete lines from ``offset``; return the offset after the last one fed.
        ``final``: a rotated file no one writes to any more — its unterminated tail counts."""
        if isinstance(fh, gzip.GzipFile):
            remaining = offset
            while remaining > 0:
                got = fh.read(min(CHUNK, remaining))
                if not got:
                    break
                remaining -= len(got)
        else:
            fh.seek(offset)
        pos = offset
        rest = b""
        while True:
            chunk = fh.read(CHUNK)
            if not chunk:
                break
            data = rest + chunk
            cut = data.rfind(b"\n") + 1
            if cut:
                self.feeder.feed_block(data[:cut])
                pos += cut
                rest = data[cut:]
            else:
                rest = data
        if rest and final:
            self.feeder.feed_block(rest)
            pos += len(rest)
        return pos

    def _window_offset(self, fh: BinaryIO, size: int, since: float) -> int:
        """Binary search for the first line at or after ``since`` (lines in order of time);
        lands on a line start at most one probe block before it."""
        clock = self.feeder.clock
        lo, hi = 0, size
        while hi - lo > 65536:
            mid = (lo + hi) // 2
            fh.seek(mid)
            fh.readline()
            ts = None
            for _ in range(50):
                line = fh.readline()
                if not line:
                    break
                m = LINE.match(line)
                if m:
                    ts = clock.parse(m["ts"])
                    if ts is not None:
                        break
            if ts is None or ts >= since:
                hi = mid
            else:
                lo = mid
        if lo == 0:
            return 0
        fh.seek(lo)
        fh.readline()
        return fh.tell()

    def _first_ts(self, path: str) -> Optional[float]:
        try:
            with _open_log(path) as fh:
                for _ in range(50):
                    line = fh.readline()
                    if not line:
                        return None
                    m = LINE.match(line)
                    if m:
                        ts = self.feeder.clock.parse(m["ts"])
                        if ts is not None:
                            return ts
        except (MonitorError, OSError, EOFError, gzip.BadGzipFile):
            return None
        return None

    def first_run(self, since: float) -> Position:
        """No position yet: read only the window — the tail of the newest rotated file when
        the window reaches back before the current file, then the current file from the
        window's start (found by binary search, not by reading the whole file)."""
        with _open_log(self.path) as fh:
            st = os.fstat(fh.fileno())
            first = self._first_ts(self.path)
            if first is None or first > since:
                older = rotated_candidates(self.path)
                if older:
                    with _open_log(older[0]) as ofh:
                        if isinstance(ofh, gzip.GzipFile):
                            self._read_from(ofh, 0, final=True)
                        else:
                            size = os.fstat(ofh.fileno()).st_size
                            self._read_from(ofh, self._window_offset(ofh, size, since), True)
                    self.feeder.tally.notes.append(f"first run also read {older[0]}")
            start = self._window_offset(fh, st.st_size, since)
            end = self._read_from(fh, start, final=False)
            return self._position(fh, st, end)

    def _position(self, fh: BinaryIO, st: os.stat_result, offset: int) -> Position:
        fp_len = min(offset, FP_LEN)
        return Position(self.path, st.st_dev, st.st_ino, offset, _fingerprint(fh, fp_len),
                        fp_len)

    def _find_old(self, pos: Position, current_ino: tuple[int, int]) -> Optional[str]:
        """The rotated file that was ``pos`` when we last read it: same inode (a rename, maybe
        with late writes), else same first bytes (compressed, or copytruncate's copy)."""
        candidates = rotated_candidates(self.path)
        for cand in candidates:
            if cand.endswith(".gz"):
                continue
            try:
                st = os.stat(cand)
            except OSError:
                continue
            if (st.st_dev, st.st_ino) == (pos.dev, pos.ino) and (st.st_dev, st.st_ino) != \
                    current_ino:
                return cand
        if pos.fp_len == 0:
            return None
        for cand in candidates:
            if _head_fp(cand, pos.fp_len) == pos.fp:
                return cand
        return None

    def incremental(self, pos: Position, since: float) -> Position:
        with _open_log(self.path) as fh:
            st = os.fstat(fh.fileno())
            same_file = (st.st_dev, st.st_ino) == (pos.dev, pos.ino)
            if (same_file and st.st_size >= pos.offset
                    and _fingerprint(fh, pos.fp_len) == pos.fp):
                end = self._read_from(fh, pos.offset, final=False)
                return self._position(fh, st, end)
            # rotated (rename: new inode) or truncated in place (copytruncate)
            how = "renamed" if not same_file else "truncated (copytruncate)"
            old = self._find_old(pos, (st.st_dev, st.st_ino))
            tally = self.feeder.tally
            if old is None:
                tally.notes.append(f"{self.path} was {how} and the old file was not found "
                                   f"next to it: lines written to it after the last run are "
                                   f"not counted")
            else:
                with _open_log(old) as ofh:
                    self._read_from(ofh, pos.offset, final=True)
                tally.notes.append(f"{self.path} was {how}: finished {old} from offset "
                                   f"{pos.offset}")
                # rotations since then (newer names in the same scheme): whole, oldest first
                kind, rank = rotation_rank(old, self.path)
                newer = []
                for cand in rotated_candidates(self.path):
                    ck, cr = rotation_rank(cand, self.path)
                    if cand != old and ck == kind and cr > rank:
                        newer.append((cr, cand))
                for _, cand in sorted(newer):
                    with _open_log(cand) as cfh:
                        self._read_from(cfh, 0, final=True)
                    tally.notes.append(f"read rotated {cand} whole")
            end = self._read_from(fh, 0, final=False)
            return self._position(fh, st, end)


# -- the journald reader -------------------------------------------------------------------------

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
        self.deadline = time.monotonic() + timeout
        self.base = [journalctl, "--no-pager"] + [f"--file={f}" for f in files]

    def _left(self) -> float:
        return max(0.2, self.deadline - time.monotonic())

    def _run(self, argv: list[str]) -> Iterator[bytes]:
        try:
            child = Child(argv, self._left())
        except MonitorError as exc:
            raise MonitorError(f"cannot read the journal: {exc} (install systemd's journalctl, "
                               f"or pass --log-file PATH)") from None
        with child:
            yield from child.lines()
            rc, err = child.finish()
        problem = _journal_error(err, rc)
        if problem:
            raise MonitorError(problem)

    def identifiers(self) -> list[str]:
        out = []
        for raw in self._run(self.base + ["-F", "SYSLOG_IDENTIFIER"]):
            ident = raw.rstrip(b"\n")
            if self.is_postfix(ident):
                out.append(ident.decode("utf-8", "surrogateescape"))
        return sorted(out)

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
        for raw in self._run(argv):
            try:
                entry = json.loads(raw)
            except ValueError:
                continue
            cursor = entry.get("__CURSOR", cursor)
            tally.lines += 1
            msg = entry.get("MESSAGE")
            ident = entry.get("SYSLOG_IDENTIFIER")
            if isinstance(msg, list):          # not UTF-8: journalctl gives the bytes
                msg = bytes(b & 0xFF for b in msg if isinstance(b, int))
            elif isinstance(msg, str):
                msg = msg.encode("utf-8", "surrogateescape")
            else:
                continue
            if isinstance(ident, list):
                ident = bytes(ident).decode("utf-8", "replace")
            if not isinstance(ident, str):
                continue
            try:
                ts = int(entry["__REALTIME_TIMESTAMP"]) / 1e6
            except (KeyError, ValueError, TypeError):
                continue
            res = parse_message(ident.encode("utf-8", "surrogateescape"), msg, ts)
            if res is None:
                continue
            if res is UNMATCHED:
                tally.unmatched_line(ident.encode() + b": " + msg)
            else:
                tally.add(res)  # type: ignore[arg-type]
        return cursor


# -- the one entry point: measure ----------------------------------------------------------------

@dataclass
class DeliveryStats:
    """Recipients in the window, the two rates, and what the bounces and deferrals say."""
    sent: int
    bounced: int
    expired: int
    deferred: int
    bounce_rate: float
    deferral_rate: float
    window: float
    source: str
    bounce_classes: Counter[str] = field(default_factory=Counter)
    deferral_classes: Counter[str] = field(default_factory=Counter)
    bounce_texts: dict[str, str] = field(default_factory=dict)
    deferral_texts: dict[str, str] = field(default_factory=dict)
    lines_read: int = 0
    unmatched: int = 0
    unmatched_samples: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    first_run: bool = False

    @property
    def deliveries(self) -> int:
        """What --min-deliveries compares against: sent + bounced + expired."""
        return self.sent + self.bounced + self.expired

    def top_bounce_class(self) -> Optional[tuple[str, int]]:
        if self.bounce_classes:
            return self.bounce_classes.most_common(1)[0]
        return None


def rates(sent: int, bounced: int, expired: int, deferred: int) -> tuple[float, float]:
    """bounce_rate = 100 (bounced + expired) / (sent + bounced + expired);
    deferral_rate = 100 deferred / (sent + bounced + deferred); 0 with nothing to divide by."""
    den_b = sent + bounced + expired
    den_d = sent + bounced + deferred
    br = 100.0 * (bounced + expired) / den_b if den_b else 0.0
    dr = 100.0 * deferred / den_d if den_d else 0.0
    return round(br, 3), round(dr, 3)


def stats_of(tally: Tally, since: int, window: float, source: str) -> DeliveryStats:
    counts = [0, 0, 0, 0]
    bc: Counter[str] = Counter()
    dc: Counter[str] = Counter()
    for mi, b in tally.buckets.items():
        if mi < since:
            continue
        for i in range(4):
            counts[i] += b[i]
        bc.update(b[4])
        dc.update(b[5])
    sent, bounced, expired, deferred = counts
    br, dr = rates(sent, bounced, expired, deferred)
    bt = {k[2:]: v[0] for k, v in tally.texts.items() if k.startswith("b:") and v[1] >= since}
    dt = {k[2:]: v[0] for k, v in tally.texts.items() if k.startswith("d:") and v[1] >= since}
    return DeliveryStats(sent, bounced, expired, deferred, br, dr, window, source, bc, dc, bt, dt,
                         tally.lines, tally.unmatched, list(tally.unmatched_samples),
                         list(tally.notes))


def default_log() -> Optional[str]:
    """The first of /var/log/mail.log, /var/log/maillog, /var/log/postfix.log that exists."""
    for path in DEFAULT_LOGS:
        if os.path.exists(path):
            return path
    return None


def state_name(source: str, syslog_name: Optional[str], window: float) -> str:
    """One state file per log (or journal) × syslog name × window."""
    key = instance_key(f"{source}|{syslog_name or 'postfix*'}|{window:g}")
    return f"bounce-{key}.json"


def resolve_source(log_file: Optional[str], journal: bool,
                   journal_files: Sequence[str] = ()) -> tuple[bool, str]:
    """(read the journal?, the source's name: an absolute log path or ``journal[:files]``);
    a log file that is missing or unreadable is a MonitorError saying what to fix."""
    use_journal = journal or bool(journal_files)
    if not use_journal and log_file is None:
        log_file = default_log()
        use_journal = log_file is None
    if use_journal:
        return True, "journal:" + ",".join(journal_files) if journal_files else "journal"
    assert log_file is not None
    source = os.path.abspath(log_file)
    try:
        os.stat(source)
        readable = os.access(source, os.R_OK)
    except FileNotFoundError:
        raise MonitorError(f"log file {log_file} does not exist (pass --log-file PATH, "
                           f"or --journal)") from None
    except PermissionError:
        readable = False
    if not readable:
        raise MonitorError(f"log file {log_file} is not readable by this user (uid "
                           f"{os.geteuid()}): add the user to group adm (usermod -aG adm "
                           f"USER) or pass a readable --log-file")
    return False, source


def measure_deliveries(log_file: Optional[str], journal: bool, syslog_name: Optional[str],
                       window: float, state_dir: Optional[str], now: float, timeout: float,
                       *, journal_files: Sequence[str] = (),
                       journalctl: str = "journalctl") -> DeliveryStats:
    """Read what is new in the log (or the journal), update the windowed counts and return the
    window's DeliveryStats. Position and counts are written together, once, after the result is
    computed, under the state lock (concurrent runs wait for each other)."""
    use_journal, source = resolve_source(log_file, journal, journal_files)
    since = minute(now - window)
    started = time.monotonic()
    with StateDir(state_dir).locked(state_name(source, syslog_name, window),
                                    max(0.5, timeout / 2)) as sf:
        data = sf.read(STATE_KIND)
        tally = Tally.load(data) if data else Tally()
        tally.prune(since)
        clock = Clock(now)
        feeder = LineFeeder(tally, clock, syslog_name)
        left = max(0.5, timeout - (time.monotonic() - started))
        new_state: dict[str, Any]
        if use_journal:
            reader = JournalReader(feeder, syslog_name, left, journal_files, journalctl)
            cursor = data.get("cursor") if data else None
            if data and not isinstance(cursor, (str, type(None))):
                raise MonitorError("bounce-rate state holds a malformed journal cursor: delete "
                                   "the state file or pass another --state-dir")
            cursor = reader.read(cursor, since)
            new_state = {"source": source, "cursor": cursor}
        else:
            freader = FileReader(source, feeder)
            if data and data.get("position"):
                pos = freader.incremental(Position.load(data["position"]), since)
            else:
                pos = freader.first_run(since)
            new_state = {"source": source, "position": pos.dump()}
        stats = stats_of(tally, since, window, source)
        stats.first_run = data is None
        new_state.update(tally.dump())
        new_state["updated"] = now
        sf.write(STATE_KIND, new_state)
    return stats


def read_counts(lines: Iterable[bytes], now: float, window: float,
                syslog_name: Optional[str] = None) -> DeliveryStats:
    """Stateless: the window's counts of some lines (tests, the benchmark, a one-off)."""
    since = minute(now - window)
    tally = Tally(since=since)
    feeder = LineFeeder(tally, Clock(now), syslog_name)
    for line in lines:
        feeder.feed_line(line)
    return stats_of(tally, since, window, "lines")


__all__ = [
    "COUNTS", "DEFAULT_LOGS", "DELIVERY_AGENTS", "Clock", "DeliveryStats", "Event", "FileReader",
    "JournalReader", "LineFeeder", "Position", "Tally", "UNMATCHED",
    "measure_deliveries", "parse_line", "parse_message", "rates", "read_counts", "resolve_source",
]
