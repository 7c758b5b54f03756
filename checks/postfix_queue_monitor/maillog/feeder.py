"""Blocks of log lines into a Tally, with the scanning done in the regex engine."""

from __future__ import annotations

import re
import sys
from typing import Optional

from .patterns import (
    _KNOWN_PLAIN,
    _KNOWN_QID,
    _QID,
    ASL_LEVEL,
    FALLBACK,
    TABLE,
    UNMATCHED,
    UNREADABLE,
    WRAPPED,
    parse_line,
    program_matcher,
)
from .tally import Tally
from .timestamps import READABLE_START, Clock

#: status= values counted from a delivery status line (expiries are qmgr's own lines)
_STATUS_INDEX: dict[bytes, int] = {name.encode(): i for name, i in Tally.INDEX.items()
                                   if name != "expired"}
#: soft_bounce = yes: what would have bounced stays queued, logged "status=SOFTBOUNCE": a deferral
_STATUS_INDEX[b"SOFTBOUNCE"] = Tally.INDEX["deferred"]


def _has_delivery(program: bytes) -> bool:
    """Whether this program's table counts status lines first (delivery agents, qmgr, any
    renamed or unknown service)."""
    if b"/" not in program:
        return True                          # an RFC 5424 APP-NAME without the sub-process
    sub = program.rpartition(b"/")[2].decode("ascii", "replace")
    table = TABLE.get(sub, FALLBACK)
    return any(name == "delivery" for name, _ in table[:2])


#: a program tag's end: syslog's ``[pid]: `` or ``: ``, or RFC 5424's `` PROCID MSGID SD``
_TAG_END = rb"(?:/[^\s\[:]+)?(?:\[\d+\](?:" + ASL_LEVEL + rb")?: |: | \S+ \S+ [-\[])"
#: Postfix programs by name: ``postfix…`` or ``NAME/<a Postfix daemon>`` (any syslog_name)
_DAEMONS = rb"master|qmgr|smtpd?|cleanup|pickup|local|lmtp|virtual|pipe|bounce|postscreen|anvil"
_NAME = rb"(postfix[^\s\[:/]*|[^\s\[:/]+(?=/(?:" + _DAEMONS + rb")\[))" + _TAG_END
#: what an unreadable journal export line's example starts with (the fix, in a short prefix)
JOURNAL_EXPORT = b"journal export, read with --journal: "
MAX_NAMES = 8            # other Postfix names kept to say which ones were seen


def tag_of(syslog_name: str) -> re.Pattern[bytes]:
    """A line of this syslog name anywhere in a block (any of its programs, any message)."""
    return re.compile(rb" " + re.escape(syslog_name.encode("utf-8", "surrogateescape")
                                        .rstrip(b"/")) + _TAG_END)


class LineFeeder:
    """Feeds blocks of complete lines into a Tally: only lines that can matter are parsed in
    Python (those with ``status=`` and Postfix lines the table's union does not recognise);
    the scanning itself runs in the regex engine."""

    def __init__(self, tally: Tally, clock: Clock, syslog_name: Optional[str], *,
                 name_seen: Optional[bool] = None):
        self.tally = tally
        self.clock = clock
        self.is_postfix = program_matcher(syslog_name)
        #: --syslog-name: whether a line of that name was read (any line: an idle instance's
        #: master "daemon started" counts), and until then the other Postfix names read, so
        #: that a mistyped name is UNKNOWN naming them instead of "too few deliveries" forever
        #: (``name_seen``: a former run saw it, nothing to look for)
        self.name_seen = bool(name_seen) or not syslog_name
        #: no run recorded the search (a first run, or a state written before it existed): the
        #: file reader also looks for the name before what it reads, once
        self.look_back = name_seen is None
        self.other_names: set[str] = set()
        self._own = tag_of(syslog_name) if syslog_name else None
        self._delivery_table: dict[bytes, bool] = {}
        if syslog_name:
            prog = re.escape(syslog_name.encode("utf-8", "surrogateescape").rstrip(b"/")) + \
                rb"(?:/[^\s\[:]+)?"
        else:
            prog = rb"postfix[^\s\[:]*"
        # possessive quantifiers (Python >= 3.11) make the many failing lines fail fast
        q = b"+" if sys.version_info >= (3, 11) else b""
        # The scan starts at the program name, a literal the regex engine searches for fast;
        # lines of other programs are skipped without a match attempt.
        self._scan = re.compile(
            rb" (?P<prog>" + prog + q + rb")"
            # syslog's "[pid]: " (macOS: "[pid] <Info>: "), or RFC 5424's " PROCID MSGID
            # STRUCTURED-DATA " (and MSG's BOM)
            + rb"(?:(?:\[\d+\](?:" + ASL_LEVEL + rb")?)?: "
            + rb"|(?P<r5> \S+ \S+ (?:-|(?:\[(?:[^\]\\\n]|\\.)*\])+) +(?=\S)"
            + rb"(?:\xef\xbb\xbf)?))(?:"
            # a queue ID: a status line, an expiry, or a message start no table entry knows
            + _QID + q + rb": (?:to=<[^\n]*, status=(?P<st>[a-z-]+|SOFTBOUNCE)"
            + rb"(?: \((?P<tx>[^\n]*(?=\)[ \t\r]*$)|[^\n]*?(?=[ \t\r]*$))\)?)?"
            # (a sender may hold ">, ": quoted local parts; the last ">, status=" ends it; a
            # line cut by the syslog's size limit lacks the reason's closing parenthesis: the
            # lazy branch reads it; the greedy one first, as a lazy group tried at every byte of
            # every reason made this scan 1.75x slower)
            + rb"[ \t\r]*$|from=<[^\n]*>, status=(?:force-)?expired"
            + rb"[^\n]*" + q
            + rb"|(?!" + _KNOWN_QID + rb")[^\n]*" + q + rb")"
            # no queue ID
            + rb"|(?!" + _QID + rb": )(?!" + _KNOWN_PLAIN + rb")[^\n]*" + q + rb")", re.M)
        # The lines the scan passes over (the common known ones) have their stamp checked here,
        # in a second pass of the regex engine: a line that does not start like a stamp the
        # Clock reads but names the program goes to parse_line, which tells a Postfix line
        # not understood (UNREADABLE) from another program's line that quotes Postfix. Lines
        # in a readable style stop at their first bytes, so the pass costs little.
        literal = re.escape(syslog_name.encode("utf-8", "surrogateescape").rstrip(b"/")) \
            if syslog_name else rb"postfix"
        self._odd = re.compile(rb"\n(?!" + READABLE_START + rb")(?=[^\n]* " + literal + rb")")
        # A journal export (journalctl -o export, json, json-pretty, json-seq or json-sse) given
        # as a log file: the program is a SYSLOG_IDENTIFIER field, not a syslog tag, so neither
        # pass above sees a Postfix line (before: "too few deliveries", a silent OK); --journal
        # reads the journal itself.
        ident = (re.escape(syslog_name.encode("utf-8", "surrogateescape").rstrip(b"/"))
                 + rb'(?:/[^"\s]*)?' if syslog_name else rb'postfix[^"\s]*')
        # (the literal first, so that the regex engine searches for it fast; the line's start is
        # checked in _unreadable_lines)
        self._export = re.compile(rb'SYSLOG_IDENTIFIER(?:" ?: ?"' + ident + rb'"|=' + ident
                                  + rb"$)", re.M)

    def feed_line(self, line: bytes) -> None:
        """One line, parsed through the table (the reference path; the journal uses
        parse_message directly)."""
        self.tally.lines += 1
        self._names(line)
        res = parse_line(line, self.clock, self.is_postfix)
        if res is None:
            return
        self._result(res, line)

    def _result(self, res: object, line: bytes) -> None:
        if res is UNMATCHED:
            self.tally.unmatched_line(line)
        elif res is UNREADABLE:
            self.tally.unreadable_line(line, b"status=" in line, self.clock.now)
        else:
            self.tally.add(res)  # type: ignore[arg-type]

    def feed_block(self, data: bytes) -> None:
        """A block of whole lines (the last one may lack its newline).

        One pass of the regex engine over the block finds the Postfix lines whose stamp is not
        understood, another the delivery status lines, the qmgr expiries and the Postfix lines
        the common table entries do not recognise; Python only sees those. Lines of other
        programs never leave the regex engine."""
        tally = self.tally
        self._names(data)
        tally.lines += data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)
        clock, is_postfix, count = self.clock, self.is_postfix, tally.count
        delivery_table, minute_of = self._delivery_table, clock.minute_of
        rfind = data.rfind
        odd = self._unreadable_lines(data)
        for m in self._scan.finditer(data):
            start = m.start()
            ls = rfind(b"\n", 0, start) + 1
            head = data[ls:start]                   # "<timestamp> <host>", any style
            if m["r5"] is not None and head[:1] != b"<":
                continue                            # " postfix…" inside another line's text
            if b": " in head:
                head = head.rpartition(b": ")[2]
                if not WRAPPED.match(head):
                    continue                        # " postfix…" inside another line's text
                # a container's line that a syslog wrapped (patterns.WRAPPED): its own stamp
            if ls in odd:
                continue                            # reported: its stamp is not understood
            st = m["st"]
            if st is not None:
                prog = m["prog"]
                ok = delivery_table.get(prog)
                if ok is None:
                    ok = delivery_table[prog] = bool(is_postfix(prog) and _has_delivery(prog))
                if ok:
                    # exactly what parse_line would return, without building an Event
                    mi = minute_of(head)
                    if mi is not None:
                        idx = _STATUS_INDEX.get(st, None)
                        if idx is not None:
                            text = m["tx"]
                            count(mi, idx, text.decode("utf-8", "replace") if text and idx
                                  else "")
                        continue
            line = data[ls:m.end()]
            res = parse_line(line, clock, is_postfix)
            if res is not None:
                self._result(res, line)

    def look_for_name(self, data: bytes) -> bool:
        """Lines that are not counted (a log's part before the window): do they carry
        --syslog-name? (An idle instance's older lines say the name is not mistyped.) Only the
        name's own search, a literal one: the other names' search costs ~20x as much per MiB
        (13 ms, 6.7 s over the 512 MiB look-back against the default -t 8), and the lines read
        say them anyway."""
        if self.name_seen or self._own is None:
            return True
        if self._own.search(data):
            self.name_seen = True
            self.other_names.clear()
            return True
        return False

    def _names(self, data: bytes) -> None:
        """Until a line of --syslog-name is read: is it in ``data``, and which other Postfix
        names are (one regex pass each, and none once the name was seen)."""
        if self.look_for_name(data):
            return
        names = self.other_names
        while len(names) < MAX_NAMES:
            # the names known so far are excluded in the regex: a search per new name, not a
            # Python step per line
            known = b"|".join(re.escape(n.encode("utf-8", "surrogateescape")) for n in names)
            m = re.search(rb" (?!(?:" + known + rb")(?:[/\[:]| ))" + _NAME if names
                          else rb" " + _NAME, data)
            if m is None:
                break
            names.add(m[1].decode("utf-8", "surrogateescape"))

    def identifiers(self, idents: list[str]) -> None:
        """The journal's SYSLOG_IDENTIFIERs (every one it holds, not only the window's): the
        same as _names, for ``--journal``."""
        if self.name_seen:
            return
        if any(self.is_postfix(i.encode("utf-8", "surrogateescape")) for i in idents):
            self.name_seen = True
            return
        for ident in idents:
            name, _, sub = ident.partition("/")
            if name.startswith("postfix") or re.fullmatch(_DAEMONS.decode(), sub):
                if len(self.other_names) < MAX_NAMES:
                    self.other_names.add(name)

    def _unreadable_lines(self, data: bytes) -> set[int]:
        """The Postfix lines of ``data`` whose stamp is in no style the Clock reads, whatever
        their message, into the tally's odd lines (in the order of the log, so the example is
        the first one); returns their starts. The scan passes over the common lines (connects,
        cleanup, qmgr) in the regex engine: without this a log whose Postfix lines are all of
        those kinds would be read as empty, a silent OK."""
        clock, is_postfix, find = self.clock, self.is_postfix, data.find
        found: set[int] = set()
        for m in self._export.finditer(data):
            ls = data.rfind(b"\n", 0, m.start()) + 1
            head = data[ls:m.start()]
            if head.strip(b" \t\"") and not head.lstrip(b"\x1e").startswith((b"{", b"data: {")):
                continue                       # quoted in a syslog line's text
            le = find(b"\n", ls)
            line = data[ls:] if le < 0 else data[ls:le]
            self.tally.unreadable_line(JOURNAL_EXPORT + line, b"status=" in line, clock.now)
        # a newline before the block, so that its first line is checked like the others
        for m in self._odd.finditer(b"\n" + data):
            ls = m.start()                     # the line's start in data
            le = find(b"\n", ls)
            line = data[ls:] if le < 0 else data[ls:le + 1]
            if parse_line(line, clock, is_postfix) is UNREADABLE:
                self.tally.unreadable_line(line, b"status=" in line, clock.now)
                found.add(ls)
        return found
