"""The named regex table of Postfix log lines, per sub-process, and the pure line parser
that dispatches through it (bytes in, an Event or a verdict out, time passed in as a Clock)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Optional

from .timestamps import READABLE_START, Clock

DELIVERY_AGENTS: tuple[str, ...] = ("smtp", "lmtp", "local", "virtual", "pipe", "error", "retry",
                                    "discard")

#: ``<head> <program>[<pid>]: <message>``: the head (a timestamp in any style the Clock reads,
#: then a host, a level word, or nothing) up to the first ``word[pid]: `` or ``word: ``; or an
#: RFC 5424 record ``<PRI>1 TIMESTAMP HOST APP-NAME PROCID MSGID STRUCTURED-DATA MESSAGE``, whose
#: UTF-8 MESSAGE starts with a BOM (RFC 5424 section 6.4) when the sender follows the RFC.
#: macOS' syslogd writes the message's level after the pid: ``postfix/smtp[123] <Info>: ``
ASL_LEVEL = rb" <(?:Emergency|Alert|Critical|Error|Warning|Notice|Info|Debug)>"
LINE = re.compile(rb"(?:(?P<h5><\d{1,3}>\d{1,2} \S+ \S+) (?P<p5>[^\s\[:]+) \S+ \S+ "
                  rb"(?:-|(?:\[(?:[^\]\\\r\n]|\\.)*\])+) ?(?:\xef\xbb\xbf)?"  # MSG's BOM
                  rb"|(?P<head>[^\r\n]*?) (?P<prog>[^\s\[:]+)"
                  rb"(?:\[\d+\](?:" + ASL_LEVEL + rb")?)?: )"
                  rb"(?P<msg>[^\r\n]*)")
#: A message that starts with a stamp: a container's stdout line that a syslog received as the
#: message of its own tag (docker's syslog log driver: ``… dockerhost 3a1b2c3d4e5f[987]:
#: 2026-12-03T10:00:00+01:00 INFO    postfix/smtp[12]: …``); the line inside is read instead.
WRAPPED = re.compile(rb"(?:" + READABLE_START + rb")")
#: Solaris' syslog puts a message ID and the facility before the message
SOLARIS_ID = re.compile(rb"\[ID \d+ [a-z0-9]+\.[a-z]+\] ")

_QID = rb"[0-9A-Za-z]+"
#: (the closing parenthesis may be missing: syslogs cut long lines, e.g. at 1024 bytes)
_STATUS_LINE = (rb"(?P<qid>" + _QID + rb"): to=<.*, status=(?P<status>[a-z-]+|SOFTBOUNCE)"
                rb"(?: \((?P<text>.*?)\)?)?\s*$")

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
#: a program name without its sub-process (``postfix``: rsyslog's RFC 5424 APP-NAME stops at the
#: first ``/`` by default): every table's entries, counted ones first
UNION: tuple[tuple[str, re.Pattern[bytes]], ...] = tuple(
    {(name, pat.pattern): (name, pat) for table in (TABLE["qmgr"], *TABLE.values())
     for name, pat in table}.values())


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
#: a Postfix line whose timestamp is in no style the Clock reads
UNREADABLE = "unreadable"
_TABLE_BY_PROGRAM: dict[bytes, tuple[tuple[str, re.Pattern[bytes]], ...]] = {}


def program_matcher(syslog_name: Optional[str]) -> Callable[[bytes], bool]:
    """Which program names are this Postfix: ``NAME/…`` (renamed services included, other
    instances' ``NAME-out/…`` not) and ``NAME`` alone (an RFC 5424 APP-NAME), or every name
    that starts with ``postfix``."""
    if syslog_name:
        name = syslog_name.encode("utf-8", "surrogateescape").rstrip(b"/")
        prefix = name + b"/"
        return lambda prog: prog.startswith(prefix) or prog == name
    return lambda prog: prog.startswith(b"postfix")


def parse_message(program: bytes, msg: bytes, ts: float) -> Event | str | None:
    """Dispatch one Postfix message by sub-process through the table.

    Returns an Event for a status or expiry line, None for a recognised line that counts
    nowhere, ``UNMATCHED`` for a Postfix line the table does not know."""
    table = _TABLE_BY_PROGRAM.get(program)
    if table is None:
        if b"/" not in program:
            table = UNION
        else:
            sub = program.rpartition(b"/")[2].decode("ascii", "replace")
            table = TABLE.get(sub, FALLBACK)
        _TABLE_BY_PROGRAM[program] = table
    if msg[:4] == b"[ID ":
        sm = SOLARIS_ID.match(msg)
        if sm:
            msg = msg[sm.end():]
    for name, pattern in table:
        m = pattern.match(msg)
        if not m:
            continue
        if name == "delivery":
            kind = m["status"].decode("ascii")
            if kind == "SOFTBOUNCE":
                kind = "deferred"     # soft_bounce = yes: kept in the queue, retried
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
    """One log line (bytes, any encoding, any timestamp style) → Event, None (not ours or
    counts nowhere), ``UNMATCHED`` (a Postfix line the table does not know) or ``UNREADABLE``
    (a Postfix line whose timestamp is not understood)."""
    m = LINE.match(line)
    if not m:
        return None
    prog, head = (m["prog"], m["head"]) if m["p5"] is None else (m["p5"], m["h5"])
    if m["p5"] is None and WRAPPED.match(m["msg"]):
        inner = parse_line(m["msg"], clock, is_postfix)
        if inner is not None:
            return inner
    if not is_postfix(prog):
        return None
    ts = clock.parse(head)
    if ts is None:
        return UNREADABLE
    return parse_message(prog, m["msg"].lstrip(b" "), ts)
