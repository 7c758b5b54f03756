"""Real public Postfix logs (tests/fixtures/realworld-logs, sources in SOURCES.md), in every
timestamp style a Postfix host writes (tests/logstyles.py), counted by the parser and by the
independent counter (tests/logcount.py, no project code): the numbers must be the same, in the
whole file, in a window, and across a rotation with the position state in between."""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import time
from pathlib import Path

import pytest

import logcount
import logstyles
from postfix_queue_monitor import deliveries as D
from postfix_queue_monitor.errors import MonitorError
from postfix_queue_monitor.maillog import Clock, LineFeeder, Tally, minute

REAL = Path(__file__).resolve().parent.parent / "fixtures" / "realworld-logs"

#: AGPL-3.0-only test data is left out of the MIT sdist (MANIFEST.in); from git it is always here
if not (REAL / "lightmeter-mail.log.1.gz").exists():
    pytest.skip("the AGPL-3.0-only real logs are not in the sdist (MANIFEST.in): run these "
                "tests from a git checkout", allow_module_level=True)
ZONE = "Europe/Berlin"
#: file -> (year of its lines, sha256 of the uncompressed file, counts as SOURCES.md states them)
LOGS = {
    "infohtreasure-maillog.gz": (
        2022, "5829fb3903397feca7172f2f546a96b8d0341a3ccfcd64424d55e22ffb0078ff",
        {"sent": 12, "bounced": 1, "deferred": 26, "expired": 0}),
    "lightmeter-mail.log.1.gz": (
        2021, "b4d4ccd076489c84f7924adc30163f275e3427d844d920151d3f82d6cce94167",
        {"sent": 254, "bounced": 0, "deferred": 0, "expired": 0}),
    "lightmeter-mail.log.gz": (
        2021, "fe2afa7e8169fc3bb43f3d16dbc34902dcee40a7113dd17c8629476f70a48efb",
        {"sent": 118, "bounced": 1, "deferred": 0, "expired": 0}),
}
STYLES = sorted(logstyles.STYLES)


pytestmark = pytest.mark.usefixtures("berlin")   # tests/conftest.py


_CACHE: dict[str, list[str]] = {}


def source_lines(name: str) -> list[str]:
    if name not in _CACHE:
        with gzip.open(REAL / name, "rt", encoding="utf-8", errors="surrogateescape") as fh:
            _CACHE[name] = [line.rstrip("\n") for line in fh]
    return _CACHE[name]


def styled(name: str, style: str) -> tuple[list[str], list[float | None]]:
    """The log's lines in ``style`` and each line's time (None: not a syslog line)."""
    recs = list(logstyles.records(source_lines(name), LOGS[name][0], ZONE))
    lines = list(logstyles.render(recs, style))
    return lines, [None if isinstance(r, str) else r.epoch for r in recs]


def as_bytes(lines: list[str]) -> bytes:
    return "".join(line + "\n" for line in lines).encode("utf-8", "surrogateescape")


def feed(data: bytes, now: float, since: int, block: int = 1 << 20) -> Tally:
    """The reader's way: blocks of whole lines into the fast path."""
    tally = Tally(since=since)
    feeder = LineFeeder(tally, Clock(now), None)
    pos = 0
    while pos < len(data):
        end = data.rfind(b"\n", pos, pos + block) + 1 or len(data)
        feeder.feed_block(data[pos:end])
        pos = end
    return tally


def feed_lines(data: bytes, now: float, since: int) -> Tally:
    """The reference path: one line at a time through ``feed_line``."""
    tally = Tally(since=since)
    feeder = LineFeeder(tally, Clock(now), None)
    for line in data.splitlines(keepends=True):
        feeder.feed_line(line)
    return tally


def counts_of(tally: Tally, since: int) -> dict[str, int]:
    return counts(D.stats_of(tally, since, 0, "test"))


def counts(st: D.DeliveryStats) -> dict[str, int]:
    """A run's counts, keyed as tests/logcount.py keys its own."""
    return {kind: getattr(st, kind) for kind in logcount.KINDS}


@pytest.mark.parametrize("name", sorted(LOGS))
def test_fixture_is_the_published_file_and_the_counter_agrees_with_its_sources(name):
    with gzip.open(REAL / name, "rb") as fh:
        assert hashlib.sha256(fh.read()).hexdigest() == LOGS[name][1]
    assert logcount.count_file(str(REAL / name)) == LOGS[name][2]
    assert len(source_lines(name)) >= 2000              # thousands of lines each


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("name", sorted(LOGS))
def test_every_style_of_every_real_log_is_counted_exactly(name, style):
    lines, times = styled(name, style)
    expected = logcount.count_lines(lines)
    assert expected == LOGS[name][2]               # the style kept every status line
    stamps = [t for t in times if t is not None]
    now = max(stamps) + 3600
    since = minute(min(stamps)) - 60
    tally = feed(as_bytes(lines), now, since)
    assert counts_of(tally, since) == expected
    assert tally.odd[0] == 0, tally.odd            # every Postfix line's timestamp was read


@pytest.mark.parametrize("style", STYLES)
def test_the_reference_path_agrees_with_the_fast_path(style):
    name = "infohtreasure-maillog.gz"
    lines, times = styled(name, style)
    stamps = [t for t in times if t is not None]
    now, since = max(stamps) + 3600, minute(min(stamps)) - 60
    tally = feed_lines(as_bytes(lines), now, since)
    assert counts_of(tally, since) == logcount.count_lines(lines)
    assert tally.odd[0] == 0


@pytest.mark.parametrize("style", STYLES)
def test_window_per_style_counts_exactly_the_lines_of_its_minutes(style):
    """A one-hour window in the middle of a real log: the counter on the lines whose time (as
    the generator wrote it) falls in the window's minutes, the parser on the whole file."""
    name = "lightmeter-mail.log.1.gz"
    lines, times = styled(name, style)
    stamps = sorted(t for t in times if t is not None)
    now = stamps[len(stamps) // 2]
    since = minute(now - 3600)
    inside = [line for line, t in zip(lines, times) if t is not None and minute(t) >= since]
    expected = logcount.count_lines(inside)
    assert 0 < sum(expected.values()) < sum(LOGS[name][2].values())
    assert counts_of(feed(as_bytes(lines), now, since), since) == expected


@pytest.mark.parametrize("style", STYLES)
def test_reader_state_and_rotation_per_style(style, tmp_path):
    """First run, lines appended, the log renamed away with late lines written to it and a new
    one started: every line counted once (the window covers the whole log)."""
    name = "lightmeter-mail.log.1.gz"
    lines, times = styled(name, style)
    stamps = [t for t in times if t is not None]
    now = max(stamps) + 600
    window = now - min(stamps) + 300
    log, state = tmp_path / "mail.log", tmp_path / "state"
    a, b, c, d = (len(lines) * k // 4 for k in range(1, 5))
    log.write_bytes(as_bytes(lines[:a]))
    D.measure_deliveries(str(log), False, None, window, str(state), now, 10)
    with open(log, "ab") as fh:
        fh.write(as_bytes(lines[a:b]))
    D.measure_deliveries(str(log), False, None, window, str(state), now, 10)
    with open(log, "ab") as fh:
        fh.write(as_bytes(lines[b:c]))
    os.rename(log, tmp_path / "mail.log.1")        # rotated after lines the check has not read
    log.write_bytes(as_bytes(lines[c:d]))
    st = D.measure_deliveries(str(log), False, None, window, str(state), now, 10)
    expected = logcount.count_lines(lines)
    assert counts(st) == expected
    assert st.unreadable == 0
    assert any("renamed" in n for n in st.notes)


@pytest.mark.parametrize("style", ["classic", "rfc5424", "short-iso"])
def test_a_real_rotation_pair_is_counted_once(style, tmp_path):
    """lightmeter's mail.log.1 and the mail.log the server wrote after rotating it: the check
    reads most of the first, the file is renamed with lines it has not read yet, the second
    starts; every status line of both is counted once."""
    old, new = (styled(name, style)[0] for name in ("lightmeter-mail.log.1.gz",
                                                     "lightmeter-mail.log.gz"))
    both = [t for name in ("lightmeter-mail.log.1.gz", "lightmeter-mail.log.gz")
            for t in styled(name, style)[1] if t is not None]
    now = max(both) + 600
    window = now - min(both) + 300
    log, state = tmp_path / "mail.log", str(tmp_path / "state")
    cut = len(old) * 4 // 5
    log.write_bytes(as_bytes(old[:cut]))
    first = D.measure_deliveries(str(log), False, None, window, state, now - 300, 10)
    assert first.sent == logcount.count_lines(old[:cut])["sent"] > 0
    with open(log, "ab") as fh:
        fh.write(as_bytes(old[cut:]))
    os.rename(log, tmp_path / "mail.log.1")
    log.write_bytes(as_bytes(new))
    st = D.measure_deliveries(str(log), False, None, window, state, now, 10)
    expected = logcount.count_lines(old + new)
    assert expected == {k: LOGS["lightmeter-mail.log.1.gz"][2][k]
                        + LOGS["lightmeter-mail.log.gz"][2][k] for k in logcount.KINDS}
    assert counts(st) == expected
    assert st.unreadable == 0 and any("renamed" in n for n in st.notes)


@pytest.mark.parametrize("capture,style", [("fileformat", "rfc3339"), ("proto23", "rfc5424"),
                                           ("proto23-slash", "rfc5424-slash"),
                                           ("yearfirst", "year-first")])
def test_rsyslog_captures_are_what_the_generator_writes_and_are_counted_exactly(capture, style):
    """rsyslogd 8.2302 wrote lightmeter-mail.log.1 in these styles (SOURCES.md): the generator
    reproduces them byte for byte, and the parser counts the real captures exactly."""
    with gzip.open(REAL / "rsyslog-8.2302" / f"{capture}.log.gz", "rb") as fh:
        real = fh.read()
    recs = logstyles.records(source_lines(BASE), 2026, "Etc/GMT-1", "vm",
                             precise=False)
    assert as_bytes(list(logstyles.render(recs, style))) == real
    text = real.decode("utf-8", "surrogateescape").splitlines()
    now = time.mktime((2026, 12, 3, 12, 0, 0, 0, 0, -1))
    since = minute(time.mktime((2026, 1, 26, 0, 0, 0, 0, 0, -1)))
    tally = feed(real, now, since)
    assert counts_of(tally, since) == logcount.count_lines(text) == LOGS[BASE][2]
    assert tally.odd[0] == 0


# -- never a silent OK ----------------------------------------------------------------------------

#: the log the never-a-silent-OK cases rewrite (Jan 27-28 2021), and a time after its last line
BASE = "lightmeter-mail.log.1.gz"
AFTER = time.mktime((2021, 1, 28, 12, 0, 0, 0, 0, -1))
WINDOW = 2 * 86400
#: its status lines: 254 sent
STATUS = 254


def _odd_log(tmp_path: Path, transform) -> Path:
    lines = source_lines(BASE)
    log = tmp_path / "mail.log"
    log.write_bytes(as_bytes([transform(line) for line in lines]))
    return log


@pytest.mark.parametrize("label,transform,prefix,lost", [
    # glibc's de_AT locale: %b of January is "Jän"
    ("German month names", lambda s: ("Jän" + s[3:]) if s.startswith("Jan") else s,
     "Jän 27 06:", STATUS),
    # the status lines do not end where a status line ends: seen by the stamp check only
    ("docker json-file lines", lambda s: '{"log":"' + s + '\\n","stream":"stdout"}',
     '{"log":"Jan 27', STATUS),
    ("a day-first stamp", lambda s: "27/Jan/2021:" + s[7:], "27/Jan/2021:06:", STATUS),
])
def test_tagged_lines_in_a_format_not_understood_are_unknown_naming_it(tmp_path, label,
                                                                       transform, prefix, lost):
    log = _odd_log(tmp_path, transform)
    now = AFTER
    with pytest.raises(MonitorError) as exc:
        D.measure_deliveries(str(log), False, None, WINDOW, str(tmp_path / "s"), now, 10)
    msg = str(exc.value)
    assert "in a format this check cannot read" in msg and prefix in msg, msg
    assert f"({lost} delivery status)" in msg     # every status line
    # the next run reads nothing new and still says so (the odd lines are kept in the state)
    with pytest.raises(MonitorError, match="cannot read"):
        D.measure_deliveries(str(log), False, None, WINDOW, str(tmp_path / "s"), now + 60, 10)


def _counts(line: str) -> bool:
    """A status line or a qmgr expiry (what the window counts), by the independent counter."""
    return any(logcount.count_lines([line]).values())


def _quiet(lines: list[str]) -> list[str]:
    """The Postfix lines that count nothing (smtpd, cleanup, qmgr, pickup, bounce …)."""
    return [s for s in lines if " postfix/" in s and not _counts(s)]


#: a Postfix line of the classic log (not another program's)
_POSTFIX = re.compile(r"[A-Z][a-z]{2} [ \d]\d \S+ \S+ postfix/")
#: the commonest lines of a busy log, which the feeder's scan passes over in the regex engine
_SKIPPED = re.compile(r"[^ ]+ postfix/\w+\[\d+\]: (?:(?:dis)?connect from |[0-9A-F]+: "
                      r"(?:client=|message-id=|removed$|from=<.*\(queue active\)$))")


@pytest.mark.parametrize("label,transform,prefix", [
    ("German month names", lambda s: "Jän" + s[3:], "Jän 27 06:"),
    ("French month names", lambda s: "janv." + s[3:], "janv. 27 06:"),
    ("a day-first stamp", lambda s: "27/Jan/2021:" + s[7:], "27/Jan/2021:06:"),
    ("RFC 5424 nil timestamp",
     lambda s: "<22>1 - mail " + s.split(" ", 4)[4].replace("]: ", " - - ", 1)
     .replace("[", " ", 1), "<22>1 - mail postfix/"),
    ("Solaris tags and German months",
     lambda s: "Jän" + s[3:].replace("]: ", "]: [ID 197553 mail.info] ", 1), "Jän 27 06:"),
])
def test_a_log_whose_postfix_lines_count_nothing_and_are_not_understood_is_unknown(
        tmp_path, capsys, label, transform, prefix):
    """Only smtpd/cleanup/qmgr/pickup/bounce lines (the kinds the scan passes over in the
    regex engine), none of them in a style the Clock reads: UNKNOWN naming the problem and an
    example's start, not 'OK - too few deliveries to judge'; the next run too."""
    from postfix_queue_monitor.plugins import bounce
    lines = [transform(s) for s in _quiet(source_lines(BASE))]
    assert len(lines) > 2000 and logcount.count_lines(lines) == dict.fromkeys(logcount.KINDS, 0)
    log = tmp_path / "mail.log"
    log.write_bytes(as_bytes(lines))
    for now in (AFTER, AFTER + 60):        # the second run reads nothing new
        with pytest.raises(SystemExit) as exc:
            bounce.main(["--log-file", str(log), "--state-dir", str(tmp_path / "s"),
                         "--window", "2d"], clock=lambda t=now: t)
        out = capsys.readouterr().out
        assert exc.value.code == 3, out
        first = out.splitlines()[0]
        assert first.startswith(f"POSTFIX BOUNCE RATE UNKNOWN - {len(lines)} Postfix log line(s) "
                                f"(0 delivery status) are in a format this check cannot read"), out
        assert f"e.g. '{prefix}" in first, first


@pytest.mark.parametrize("fast", [True, False])
def test_the_fast_path_finds_every_line_the_reference_path_finds(fast):
    """Every Postfix line not understood, of every kind, is one odd line on both paths; the
    status lines among them are the lost ones."""
    lines = source_lines(BASE)
    odd = [("Jän" + s[3:]) if i % 3 == 0 else s for i, s in enumerate(lines)]
    now, since = AFTER, minute(AFTER - WINDOW)
    tally = (feed(as_bytes(odd), now, since, block=4096) if fast
             else feed_lines(as_bytes(odd), now, since))
    third = [s for s in lines[::3] if _POSTFIX.match(s)]
    assert tally.odd[:2] == [len(third), sum(map(_counts, third))]
    assert tally.odd[1] > 50
    assert counts_of(tally, since) == logcount.count_lines(
        [s for i, s in enumerate(lines) if i % 3])


def test_mixed_formats_are_unknown_when_status_lines_are_lost_and_a_note_when_not(tmp_path):
    """Two hosts in one log, one of them in German: its status lines are lost (UNKNOWN); when
    only its lines that count nothing are in German, the counts are whole (a -v note)."""
    lines = source_lines(BASE)
    german = [("Jän" + s[3:]) if i % 2 else s for i, s in enumerate(lines)]
    with pytest.raises(MonitorError, match=r"\d+ Postfix log line\(s\) \(\d+ delivery status\) "
                                           r"are in a format.* e\.g\. 'Jän 27 0"):
        D.measure_deliveries(str(_write(tmp_path / "a.log", german)), False, None, WINDOW,
                             str(tmp_path / "sa"), AFTER, 10)
    quiet = set(_quiet(lines))
    only_quiet = [("Jän" + s[3:]) if i % 2 and s in quiet else s for i, s in enumerate(lines)]
    st = D.measure_deliveries(str(_write(tmp_path / "b.log", only_quiet)), False, None,
                              WINDOW, str(tmp_path / "sb"), AFTER, 10)
    assert counts(st) == LOGS[BASE][2]
    assert st.unreadable == sum(1 for i, s in enumerate(lines) if i % 2 and s in quiet) > 500
    assert st.unreadable_status == 0 and st.format_problem() is None
    assert "Jän 27 0" in (st.format_note() or "")


def test_a_log_rotated_into_a_format_not_understood_mid_file(tmp_path):
    """The syslog's locale changes mid-file: what follows is in German. The runs before count;
    once the lines not understood are lines that count nothing only, or status lines beyond
    5 %, the check says so (and the Postfix lines that count nothing are enough when nothing
    is counted in the window)."""
    lines = source_lines(BASE)
    now = AFTER
    log, state = tmp_path / "mail.log", str(tmp_path / "s")
    skipped = [s for s in lines if _SKIPPED.search(s)]       # 1,108 of 5,282 lines
    assert len(skipped) > 1000
    half = len(skipped) // 2
    _write(log, skipped[:half])
    st = D.measure_deliveries(str(log), False, None, WINDOW, state, now, 10)
    assert (st.deliveries, st.unreadable) == (0, 0)        # a quiet host: nothing to judge
    with open(log, "ab") as fh:                             # the locale changes
        fh.write(as_bytes(["Jän" + s[3:] for s in skipped[half:]]))
    with pytest.raises(MonitorError, match=r"\(0 delivery status\) are in a format this check "
                                           r"cannot read.*e\.g\. 'Jän 2"):
        D.measure_deliveries(str(log), False, None, WINDOW, state, now + 60, 10)
    # with deliveries counted before: the German status lines are lost, beyond 5 %
    half = len(lines) // 2
    _write(log, lines[:half])
    state2 = str(tmp_path / "s2")
    assert D.measure_deliveries(str(log), False, None, WINDOW, state2, now, 10).unreadable == 0
    with open(log, "ab") as fh:
        fh.write(as_bytes(["Jän" + s[3:] for s in lines[half:]]))
    with pytest.raises(MonitorError, match=r"format this check cannot read.*e\.g\. 'Jän 2"):
        D.measure_deliveries(str(log), False, None, WINDOW, state2, now + 60, 10)


@pytest.mark.parametrize("stamp", ["Jan", "Jän"])
def test_postfix_tags_quoted_by_another_program_are_not_postfix_lines(tmp_path, stamp):
    """Dovecot (and the like) quoting a Postfix line in its own message: not a Postfix line,
    whatever its stamp; no UNKNOWN, nothing counted from it."""
    quoted = [s for s in source_lines(BASE) if " postfix/smtp[" in s][:500]
    dovecot = [f"{stamp} 27 07:{i % 60:02d}:00 mail dovecot: lmtp(4242): "
               f"msgid=<x{i}@example>: relayed: {s[16:]}" for i, s in enumerate(quoted)]
    assert logcount.count_lines(dovecot) != dict.fromkeys(logcount.KINDS, 0)  # grep is fooled
    now = AFTER
    for fast in (True, False):
        since = minute(now - WINDOW)
        tally = (feed if fast else feed_lines)(as_bytes(dovecot), now, since)
        assert (tally.events, tally.odd[0], tally.unmatched) == (0, 0, 0), fast
    st = D.measure_deliveries(str(_write(tmp_path / "d.log", dovecot)), False, None, WINDOW,
                              str(tmp_path / "s"), now, 10)
    assert (st.deliveries, st.unreadable, st.format_problem()) == (0, 0, None)


@pytest.mark.parametrize("style", STYLES)
def test_every_style_starts_as_the_feeder_expects(style):
    """READABLE_START (the feeder's cheap stamp check) matches every line of every style (so
    their stamps are not parsed twice), and only starts STAMP reads."""
    from postfix_queue_monitor.maillog.timestamps import READABLE_START
    start = re.compile(READABLE_START)
    lines, times = styled("lightmeter-mail.log.1.gz", style)
    clock = Clock(max(t for t in times if t is not None) + 3600)
    for line, t in zip(lines[::50], times[::50]):
        raw = line.encode("utf-8", "surrogateescape")
        assert (start.match(raw) is not None) == (t is not None), line
        if t is not None:
            assert clock.parse(raw) is not None, line
    for odd in (b"Okt 22 02:25:45 h", "déc. 15 07:46:27 h".encode(), b"22/Oct/2015:02:25:45 h",
                b"<22>1 - h postfix 1 - -", b'{"log":"Oct 22 02:25:45 h'):
        assert start.match(odd) is None and clock.parse(odd) is None, odd
    # a day without its padding ("Oct 2"), which STAMP reads: missing here, every Postfix line
    # of such a log was parsed twice in Python (the feeder 6x slower on days 1-9)
    for day in (b"Oct 2 02:25:45 h", b"Oct 2 2015 02:25:45 h", b"2015 Oct 2 02:25:45 h"):
        assert start.match(day) is not None and clock.parse(day) is not None, day
    # docker compose logs of a container writing classic lines (Postfix's maillog_file)
    compose = b"postfix-1  | Oct 22 02:25:45 h"
    assert start.match(compose) is not None and clock.parse(compose) is not None


def _write(path: Path, lines: list[str]) -> Path:
    path.write_bytes(as_bytes(lines))
    return path


def test_a_small_share_of_odd_lines_is_a_verbose_note_not_unknown(tmp_path):
    lines = source_lines(BASE)
    status = [i for i, s in enumerate(lines) if "status=sent" in s]
    odd = set(status[:5])                      # 5 of 254 status lines in a day-first stamp
    log = tmp_path / "mail.log"
    log.write_bytes(as_bytes([("27/Jan/2021:" + s[7:]) if i in odd else s
                              for i, s in enumerate(lines)]))
    st = D.measure_deliveries(str(log), False, None, WINDOW, str(tmp_path / "s"), AFTER, 10)
    assert (st.sent, st.unreadable, st.unreadable_status) == (STATUS - 5, 5, 5)
    assert st.format_problem() is None
    assert "27/Jan/2021:0" in (st.format_note() or "")


def test_solaris_message_ids_are_counted(tmp_path):
    """Solaris' syslog writes ``[ID 197553 mail.info]`` before the message: the same counts, and
    no line more left unmatched than without the tags."""
    plain = source_lines(BASE)
    lines = [s.replace("]: ", "]: [ID 197553 mail.info] ", 1) if " postfix/" in s else s
             for s in plain]
    assert sum("[ID 197553 mail.info] " in s for s in lines) > 2000
    since = minute(AFTER - WINDOW)
    tally, reference = feed(as_bytes(lines), AFTER, since), feed(as_bytes(plain), AFTER, since)
    assert counts_of(tally, since) == counts_of(reference, since) == LOGS[BASE][2]
    assert tally.unmatched == reference.unmatched


def test_bounce_check_is_unknown_on_a_log_in_a_format_not_understood(tmp_path, capsys):
    from postfix_queue_monitor.plugins import bounce
    log = _odd_log(tmp_path, lambda s: ("Jän" + s[3:]) if s.startswith("Jan") else s)
    with pytest.raises(SystemExit) as exc:
        bounce.main(["--log-file", str(log), "--state-dir", str(tmp_path / "s"),
                     "--window", "2d"], clock=lambda: AFTER)
    out = capsys.readouterr().out
    assert exc.value.code == 3, out
    assert out.startswith("POSTFIX BOUNCE RATE UNKNOWN") and "Jän 27 06:" in out, out


@pytest.mark.parametrize("sample", [
    "Oct 22 02:20:53 conch postfix/smtp[26922]: BBEA32439C: to=<j@s.example>, "
    "status=deferred (451 try later)",
    # a line that counts nothing is just as much a line not understood
    "Oct 22 02:20:53 conch postfix/smtpd[26923]: connect from unknown[192.0.2.7]",
])
def test_journal_output_not_understood_is_unknown(tmp_path, sample):
    """``--journal``: journalctl is asked for JSON; output that is not (a journalctl that
    ignores ``-o json``, say) is a Postfix line not understood, not a line skipped."""
    fake = tmp_path / "journalctl"
    fake.write_text("#!/bin/sh\n"
                    'case "$*" in *"-F SYSLOG_IDENTIFIER"*) '
                    "echo postfix/smtp; exit 0;; esac\n"
                    f"echo '{sample}'\n")
    fake.chmod(0o755)
    with pytest.raises(MonitorError, match=r"cannot read.*journalctl -o json: Oct 22 02:20:53"):
        D.measure_deliveries(None, True, None, 3600, str(tmp_path / "s"), time.time(), 10,
                             journalctl=str(fake))


# 2015-10-22T00:25:45Z, written the ways the styles write it (Europe/Berlin is +02:00 that day)
INSTANT = 1445473545.0


@pytest.mark.parametrize("text,expected", [
    (b"Oct 22 02:25:45 h postfix/smtp[1]: x", INSTANT),
    (b"Oct 22 02:25:45.250000 h", INSTANT + 0.25),
    (b"2015 Oct 22 02:25:45 h", INSTANT),
    (b"Oct 22 2015 02:25:45 h", INSTANT),
    (b"2015-10-22T02:25:45+02:00 h", INSTANT),
    (b"2015-10-22T02:25:45.5+0200 h", INSTANT + 0.5),
    (b"2015-10-22T00:25:45Z", INSTANT),
    (b"2015-10-22 02:25:45 h", INSTANT),                      # no offset: local time
    (b"Thu 2015-10-22 02:25:45 CEST h", INSTANT),
    (b"Thu 2015-10-22 00:25:45 UTC h", INSTANT),
    (b"Thu 2015-10-22 04:25:45 +04 h", INSTANT),               # journalctl in Asia/Dubai
    (b"1445473545.000000 h", INSTANT),
    (b"<22>1 2015-10-22T02:25:45.000000+02:00 h postfix 1 - -", INSTANT),
    (b"postfix-1  | 2015-10-22T02:25:45+02:00 INFO    postfix/smtp[1]:", INSTANT),
    (b"2015-10-22T00:25:45.000000000Z 2015-10-22T02:25:45+02:00 INFO    postfix/smtp[1]:",
     INSTANT),                                                 # docker logs --timestamps
    (b"\0\0\0Oct 22 02:25:45 h", INSTANT),                     # NUL padding after a crash
    (b"Okt 22 02:25:45 h", None),                              # not an English month
    (b"<22>1 - h postfix 1 - -", None),                        # RFC 5424 nil timestamp
    (b"22/Oct/2015:02:25:45 h", None),
    (b"2015-13-22T02:25:45Z", None),
])
def test_each_stamp_style_alone(text, expected):
    clock = Clock(INSTANT + 86400)
    assert clock.parse(text) == expected
    assert clock.minute_of(text) == (None if expected is None else minute(expected))


def test_classic_dst_change_and_the_year_before(monkeypatch):
    """short-full names the side of the DST change; classic December lines read in January
    belong to the year before."""
    clock = Clock(time.mktime((2016, 1, 2, 12, 0, 0, 0, 0, -1)))
    assert clock.parse(b"Dec 31 23:59:00 h") == time.mktime((2015, 12, 31, 23, 59, 0, 0, 0, -1))
    cest = clock.parse(b"Sun 2015-10-25 02:30:00 CEST h")
    cet = clock.parse(b"Sun 2015-10-25 02:30:00 CET h")
    assert cest is not None and cet is not None and cet - cest == 3600


def test_rfc5424_structured_data_and_nul_padding_are_read():
    now, since = INSTANT + 86400, minute(INSTANT - 3600)
    sd = r'[meta sequenceId="1" note="a \] b"][origin ip="192.0.2.1"]'
    lines = [f"<22>1 2015-10-22T02:25:45+02:00 h postfix/smtp 1 - {sd} A1B2C3: to=<a@b.example>,"
             f" relay=x, dsn=2.0.0, status=sent (250 ok)",
             "\0\0\0\0Oct 22 02:25:46 h postfix/smtp[2]: D4E5F6: to=<c@d.example>, relay=x, "
             "dsn=5.1.1, status=bounced (550 5.1.1 unknown user)"]
    expected = {"sent": 1, "bounced": 1, "deferred": 0, "expired": 0}
    assert logcount.count_lines(lines) == expected
    for fast in (True, False):
        tally = Tally(since=since)
        feeder = LineFeeder(tally, Clock(now), None)
        if fast:
            feeder.feed_block(as_bytes(lines))
        else:
            for line in as_bytes(lines).splitlines(keepends=True):
                feeder.feed_line(line)
        assert counts_of(tally, since) == expected, fast
        assert tally.odd[0] == 0 and tally.unmatched == 0, fast
