"""Log line parsing: the regex table, every delivery agent, names, timestamps, bytes."""

from __future__ import annotations

import calendar
import re
import time

import pytest

from postfix_queue_monitor import deliveries as D
from postfix_queue_monitor import maillog as M

NOW = time.mktime((2026, 11, 29, 15, 0, 0, 0, 0, -1))
DAY = 86400


def event(line: bytes, now: float = NOW, syslog_name: str | None = None):
    return M.parse_line(line, M.Clock(now), M.program_matcher(syslog_name))


def status(agent: str, st: str = "sent", text: str = "250 2.0.0 Ok") -> bytes:
    return (f"Nov 29 14:29:02 vm {agent}[123]: 4C8F41601D1: to=<u@d.example>, "
            f"relay=127.0.0.1[127.0.0.1]:25, delay=0.1, delays=0/0/0/0.1, dsn=2.0.0, "
            f"status={st} ({text})\n").encode()


@pytest.mark.parametrize("agent", M.DELIVERY_AGENTS)
@pytest.mark.parametrize("st", ["sent", "bounced", "deferred"])
def test_every_delivery_agent_counts(agent, st):
    ev = event(status(f"postfix/{agent}", st))
    assert isinstance(ev, M.Event)
    assert (ev.kind, ev.text) == (st, "250 2.0.0 Ok")
    assert ev.ts == time.mktime((2026, 11, 29, 14, 29, 2, 0, 0, -1))


@pytest.mark.parametrize("prog,name,counted", [
    ("postfix/relay/smtp", None, True),             # renamed service (master.cf)
    ("postfix/submission/smtp", None, True),
    ("postfix-out/smtp", None, True),               # another instance: default takes every postfix*
    ("postfix-out/smtp", "postfix", False),         # NAME/… only, not NAME-out/…
    ("postfix/relay/smtp", "postfix", True),
    ("postfix-out/smtp", "postfix-out", True),
    ("postfix/smtp", "postfix-out", False),
    ("mta/smtp", "mta", True),                      # any syslog_name
    ("mta/smtp", None, False),
    ("amavis", None, False),                        # other programs, even with status=sent
    ("sm-mta", None, False),
    ("opendkim", None, False),
])
def test_program_names_and_syslog_name(prog, name, counted):
    ev = event(status(prog), syslog_name=name)
    assert isinstance(ev, M.Event) is counted


def test_other_programs_status_lines_ignored_even_when_shaped_alike():
    lines = [status("amavis"), b"Nov 29 14:29:02 vm dovecot: lmtp(u): status=sent\n",
             b"Nov 29 14:29:02 vm sshd[1]: x status=bounced (no)\n"]
    st = D.read_counts(lines, NOW, DAY)
    assert (st.sent, st.bounced, st.unmatched) == (0, 0, 0)


def test_probes_count_nowhere():
    lines = [status("postfix/smtp", "deliverable"), status("postfix/smtp", "undeliverable"),
             status("postfix/smtp", "sent")]
    st = D.read_counts(lines, NOW, DAY)
    assert (st.sent, st.bounced, st.deferred, st.expired) == (1, 0, 0, 0)
    assert st.unmatched == 0


@pytest.mark.parametrize("line,kind", [
    (b"Nov 29 14:29:52 vm postfix/qmgr[27894]: 5BB3216017F: from=<s@src.example>, "
     b"status=expired, returned to sender\n", "expired"),
    (b"Nov 29 14:30:52 vm postfix/qmgr[19933]: 7C1D2160078: from=<s@src.example>, "
     b"status=force-expired, returned to sender\n", "expired"),
    (b"Nov 29 14:30:52 vm postfix/qmgr[19933]: 7C1D2160078: from=<>, status=expired, "
     b"returned to sender\n", "expired"),
    (b"Nov 29 14:30:52 vm postfix/qmgr[19933]: 7C1D2160078: to=<u@d>, relay=none, delay=1, "
     b"delays=1/0/0/0, dsn=4.3.0, status=deferred (mail transport unavailable)\n", "deferred"),
])
def test_qmgr_expiry_and_status(line, kind):
    ev = event(line)
    assert isinstance(ev, M.Event) and ev.kind == kind


def test_real_capture_counts_equal_a_plain_count(fixtures):
    """The reference capture, through the table line by line and through the block scanner."""
    raw = (fixtures / "postfix-3.7-mixed.log").read_bytes()
    plain = {k: len(re.findall(rb"\]: \w+: to=<.*, status=" + k.encode() + rb" ", raw))
             for k in ("sent", "bounced", "deferred")}
    plain["expired"] = len(re.findall(rb"/qmgr\[\d+\]: \w+: from=<.*>, status=(?:force-)?expired",
                                      raw))
    st = D.read_counts(raw.splitlines(True), NOW, DAY)
    got = {"sent": st.sent, "bounced": st.bounced, "deferred": st.deferred, "expired": st.expired}
    assert got == plain == {"sent": 38, "bounced": 7, "deferred": 29, "expired": 10}
    assert st.unmatched == 0, st.unmatched_samples
    tally = M.Tally(since=M.minute(NOW - DAY))
    M.LineFeeder(tally, M.Clock(NOW), None).feed_block(raw)
    block = D.stats_of(tally, M.minute(NOW - DAY), DAY, "x")
    assert (block.sent, block.bounced, block.deferred, block.expired) == (38, 7, 29, 10)
    assert block.lines_read == st.lines_read == raw.count(b"\n")
    assert block.bounce_classes == {"recipient_unknown": 7}


def test_lab_capture_all_agents_seen(fixtures):
    """A real log of the integration lab: smtp, error (also as retry), discard, qmgr expiry."""
    raw = (fixtures / "maillog-lab-smtp-sink-flush-expire.log").read_bytes()
    st = D.read_counts(raw.splitlines(True), NOW, 3 * 365 * DAY)
    plain = {k: len(re.findall(rb"\]: \w+: to=<.*, status=" + k.encode() + rb" ", raw))
             for k in ("sent", "bounced", "deferred")}
    assert (st.sent, st.bounced, st.deferred) == (plain["sent"], plain["bounced"],
                                                  plain["deferred"])
    assert st.expired == 3 and st.unmatched == 0, st.unmatched_samples
    assert b"postfix-bounce/discard" in raw and b"postfix-bounce/error" in raw


# -- timestamps -----------------------------------------------------------------------------

@pytest.mark.parametrize("ts,expect", [
    ("2026-11-29T14:29:02.123456+00:00", calendar.timegm((2026, 11, 29, 14, 29, 2)) + 0.123456),
    ("2026-11-29T14:29:02.123456+01:00", calendar.timegm((2026, 11, 29, 13, 29, 2)) + 0.123456),
    ("2026-11-29T14:29:02-05:30", calendar.timegm((2026, 11, 29, 19, 59, 2))),
    ("2026-11-29T14:29:02Z", calendar.timegm((2026, 11, 29, 14, 29, 2))),
    ("2026-11-29T14:29:02+0100", calendar.timegm((2026, 11, 29, 13, 29, 2))),
])
def test_rfc3339_any_offset(ts, expect):
    line = status("postfix/smtp").replace(b"Nov 29 14:29:02", ts.encode())
    ev = event(line)
    assert isinstance(ev, M.Event)
    assert ev.ts == pytest.approx(expect, abs=1e-6)


def test_classic_day_padded_and_local_time():
    line = status("postfix/smtp").replace(b"Nov 29", b"Nov  9")
    ev = event(line)
    assert ev.ts == time.mktime((2026, 11, 9, 14, 29, 2, 0, 0, -1))


def test_classic_december_read_in_january_is_last_year():
    now = time.mktime((2027, 1, 1, 0, 30, 0, 0, 0, -1))
    line = status("postfix/smtp").replace(b"Nov 29 14:29:02", b"Dec 31 23:59:30")
    ev = event(line, now=now)
    assert ev.ts == time.mktime((2026, 12, 31, 23, 59, 30, 0, 0, -1))
    st = D.read_counts([line, status("postfix/smtp").replace(b"Nov 29 14:29:02",
                                                             b"Jan  1 00:10:00")], now, 3600)
    assert st.sent == 2


def test_classic_later_in_year_than_now_is_last_year():
    now = time.mktime((2026, 3, 1, 0, 0, 0, 0, 0, -1))
    ev = event(status("postfix/smtp"), now=now)     # Nov 29 read in March: last November
    assert time.localtime(ev.ts).tm_year == 2025


# -- bytes, unmatched, window ---------------------------------------------------------------

def test_non_utf8_bytes_survive():
    line = status("postfix/smtp", "bounced", "550 5.1.1 \xff\xfe user unknown").replace(
        "\xff\xfe".encode(), b"\xff\xfe")
    line = line.replace(b"u@d.example", b"\xe9t\xe9@d.example")
    ev = event(line)
    assert ev.kind == "bounced" and "\ufffd" in ev.text
    st = D.read_counts([line, b"\xff\xfe\n", b"Nov 29 14:29:02 vm postfix/smtpd[1]: \xff\n"],
                       NOW, DAY)
    assert st.bounced == 1 and st.unmatched == 1


def test_unmatched_postfix_lines_counted_with_samples():
    lines = [b"Nov 29 14:29:02 vm postfix/smtp[1]: something new in Postfix 9\n",
             b"Nov 29 14:29:02 vm postfix/qmgr[1]: ABC: odd\n",
             b"Nov 29 14:29:02 vm postfix/smtpd[1]: connect from x[1.2.3.4]\n",
             b"Nov 29 14:29:02 vm postfix/smtp[1]: warning: whatever\n",
             b"Nov 29 14:29:02 vm other[1]: something new\n"]
    st = D.read_counts(lines, NOW, DAY)
    assert st.unmatched == 2
    assert st.unmatched_samples[0].endswith("something new in Postfix 9")
    tally = M.Tally(since=0)
    M.LineFeeder(tally, M.Clock(NOW), None).feed_block(b"".join(lines))
    assert tally.unmatched == 2


def test_out_of_window_lines_not_counted():
    old = status("postfix/smtp").replace(b"14:29:02", b"12:29:02")    # 2.5 h before NOW
    st = D.read_counts([old, status("postfix/smtp")], NOW, 3600)
    assert st.sent == 1


@pytest.mark.parametrize("counts,expect", [
    ((0, 0, 0, 0), (0.0, 0.0)),
    ((90, 5, 5, 10), (10.0, 100 * 10 / 105)),
    ((0, 0, 3, 0), (100.0, 0.0)),
    ((0, 0, 0, 4), (0.0, 100.0)),
])
def test_rates_definitions(counts, expect):
    br, dr = D.rates(*counts)
    assert br == pytest.approx(expect[0], abs=1e-3) and dr == pytest.approx(expect[1], abs=1e-3)


def test_bounce_classes_use_reasons_classify():
    lines = [status("postfix/smtp", "bounced", "host x said: 550 5.1.1 User unknown"),
             status("postfix/smtp", "bounced", "host x said: 552 5.2.2 Mailbox full"),
             status("postfix/smtp", "bounced", "host x said: 550 5.1.1 no such user")]
    st = D.read_counts(lines, NOW, DAY)
    assert st.top_bounce_class() == ("recipient_unknown", 2)
    assert st.bounce_texts["mailbox_full"] == "host x said: 552 5.2.2 Mailbox full"


@pytest.mark.parametrize("ts", [b"Nov 29 14:29:59", b"Nov  9 00:00:00", b"Dec 31 23:59:59",
                                b"2026-11-29T14:29:59.999999+05:30", b"2026-11-29T14:29:00Z",
                                b"2026-11-29T14:29:01-03:00", b"2026-11-29T14:29:01+0100",
                                b"2026-11-29T14:29:01", b"Nov 31 10:00:00",
                                b"2026-13-01T00:00:00Z"])
def test_minute_of_agrees_with_parse(ts):
    clock = M.Clock(NOW)
    t = clock.parse(ts)
    assert clock.minute_of(ts) == (None if t is None else int(t // 60 * 60))
    assert clock.minute_of(ts) == clock.minute_of(ts)      # cached, same answer


TRICKY = [
    status("postfix/smtp"),
    status("postfix/smtp", "bounced",
           "550 rejected by postfix/smtp[2]: X: to=<a>, status=sent (y)"),
    b"Nov 29 14:29:02 vm amavis[9]: relayed postfix/smtp[1]: AB1: to=<a@b>, relay=x, "
    b"status=sent (250 ok)\n",
    b"Nov 29 14:29:02 vm postfix/smtpd[1]: AB2: to=<a@b>, status=sent (smtpd never says this)\n",
    b"Nov 29 14:29:02 vm postfix/submission/smtpd[1]: warning: hostname x does not resolve\n",
    b"Nov 29 14:29:02 vm postfix/qmgr[1]: AB3: from=<a>b@c>, status=expired, returned to sender\n",
    b"Nov 29 14:29:02 vm postfix/qmgr[1]: AB3: from=<a@c>, size=12, nrcpt=1 (queue active)\n",
    b"Nov 29 14:29:02 vm postfix/anvil[1]: statistics: max connection rate 1/60s\n",
    b"Nov 29 14:29:02 vm postfix/newthing[1]: AB4: something\n",
    b"Nov 29 14:29:02 vm postfix/newthing[1]: AB5: to=<a@b>, relay=x, status=deferred (later)\n",
    b"Nov 29 14:29:02 vm postfix-out/smtp[1]: AB6: to=<a@b>, relay=x, status=sent (ok)\n",
    b"Nov 29 14:29:02 vm postfix/smtp[1]: AB7: to=<a@b>, relay=x, status=deliverable (ok)\n",
    b"garbage postfix/smtp[1]: AB8: to=<a@b>, relay=x, status=sent (ok)\n",
    b"2026-11-29T14:29:02.5+01:00 vm postfix/lmtp[1]: AB9: to=<a@b>, status=bounced (5.2.2 full)\n",
    b"Nov 29 14:29:02 vm postfix/local[1]: AC1: to=<r\xe9@b>, relay=local, status=sent (\xff)\n",
    b"Nov 29 14:29:02 vm postfix/smtp[1]: connect to mx[1.2.3.4]:25: Connection refused\n",
    b"Nov 29 14:29:02 vm postfix/pickup[1]: AC2: client=odd\n",
]


@pytest.mark.parametrize("syslog_name", [None, "postfix", "postfix-out"])
def test_block_scan_agrees_with_line_by_line(syslog_name):
    """The fast block path and the table path see the same events and unmatched lines."""
    by_line = M.Tally(since=0)
    fl = M.LineFeeder(by_line, M.Clock(NOW), syslog_name)
    for line in TRICKY:
        fl.feed_line(line)
    by_block = M.Tally(since=0)
    M.LineFeeder(by_block, M.Clock(NOW), syslog_name).feed_block(b"".join(TRICKY))
    assert by_block.buckets == by_line.buckets
    assert by_block.lines == by_line.lines == len(TRICKY)
    # the block path trusts the common message starts (client=, from=<…) for every program
    assert by_line.unmatched - by_block.unmatched == (1 if syslog_name != "postfix-out" else 0)
    assert sum(b[0] for b in by_line.buckets.values()) == {None: 4, "postfix": 3,
                                                           "postfix-out": 1}[syslog_name]


def test_expired_counts_only_from_qmgr():
    lines = [status("postfix/smtp", "expired"),
             b"Nov 29 14:29:02 vm postfix/smtp[1]: AB3: from=<a@c>, status=expired, returned\n",
             b"Nov 29 14:29:02 vm postfix/qmgr[1]: AB3: from=<a@c>, status=expired, returned to "
             b"sender\n"]
    st = D.read_counts(lines, NOW, DAY)
    assert (st.expired, st.sent, st.bounced, st.deferred) == (1, 0, 0, 0)
    tally = M.Tally(since=0)
    M.LineFeeder(tally, M.Clock(NOW), None).feed_block(b"".join(lines))
    assert sum(b[2] for b in tally.buckets.values()) == 1
